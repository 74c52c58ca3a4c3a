"""The two generators of Liu & Huo and their bi-LSTM discriminator, at sizes that train on a CPU.

CNNGenerator (their CNN-LSTM GAN, after DCGAN): dense -> reshape -> two (upsample + transposed
conv) subunits, batch norm after the first, leaky ReLU after each -> a last transposed conv ->
one bar (steps x pitches) of logits.
BiLSTMGenerator (their baseline): the noise repeated at every step -> LSTM -> bi-LSTM -> dense.
Discriminator (both): LSTM -> bi-LSTM -> dense (leaky ReLU) -> dense -> one logit, with spectral
normalisation on the dense layers as the stabiliser (Miyato et al. 2018), hinge loss in train.py.
An optional one-hot style is concatenated to the noise (generators) and to every step (D).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


class CNNGenerator(nn.Module):
    def __init__(self, noise: int = 100, n_styles: int = 0, steps: int = 16, pitches: int = 52,
                 channels: int = 64) -> None:
        super().__init__()
        if steps % 4 or pitches % 4:
            raise ValueError("steps and pitches must be multiples of 4")
        self.noise, self.n_styles, self.steps, self.pitches = noise, n_styles, steps, pitches
        self.c, self.h, self.w = channels, steps // 4, pitches // 4
        self.dense = nn.Linear(noise + n_styles, channels * self.h * self.w)
        self.bn0 = nn.BatchNorm1d(channels * self.h * self.w)
        self.unit1 = nn.Sequential(nn.Upsample(scale_factor=2), nn.ConvTranspose2d(
            channels, channels, 3, padding=1), nn.BatchNorm2d(channels), nn.LeakyReLU(0.2))
        self.unit2 = nn.Sequential(nn.Upsample(scale_factor=2), nn.ConvTranspose2d(
            channels, channels // 2, 3, padding=1), nn.LeakyReLU(0.2))
        # last layer: wide in time (a held note spans steps), narrow in pitch
        self.last = nn.ConvTranspose2d(channels // 2, 1, (5, 3), padding=(2, 1))

    def config(self) -> dict:
        return {"arch": "cnn", "noise": self.noise, "n_styles": self.n_styles,
                "steps": self.steps, "pitches": self.pitches, "channels": self.c}

    def forward(self, z: torch.Tensor, style: torch.Tensor | None = None) -> torch.Tensor:
        x = torch.cat([z, style], dim=1) if self.n_styles else z
        x = torch.relu(self.bn0(self.dense(x))).view(-1, self.c, self.h, self.w)
        x = self.unit2(self.unit1(x))
        return self.last(x)[:, 0]  # (B, steps, pitches) logits


class BiLSTMGenerator(nn.Module):
    def __init__(self, noise: int = 100, n_styles: int = 0, steps: int = 16, pitches: int = 52,
                 hidden: int = 128) -> None:
        super().__init__()
        self.noise, self.n_styles, self.steps, self.pitches = noise, n_styles, steps, pitches
        self.hidden = hidden
        self.lstm1 = nn.LSTM(noise + n_styles, hidden, batch_first=True)
        self.lstm2 = nn.LSTM(hidden, hidden, batch_first=True, bidirectional=True)
        self.drop = nn.Dropout(0.2)
        self.dense = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.LeakyReLU(0.2),
                                   nn.Linear(hidden, pitches))

    def config(self) -> dict:
        return {"arch": "bilstm", "noise": self.noise, "n_styles": self.n_styles,
                "steps": self.steps, "pitches": self.pitches, "hidden": self.hidden}

    def forward(self, z: torch.Tensor, style: torch.Tensor | None = None) -> torch.Tensor:
        x = torch.cat([z, style], dim=1) if self.n_styles else z
        x = x.unsqueeze(1).expand(-1, self.steps, -1)
        x, _ = self.lstm1(x)
        x, _ = self.lstm2(self.drop(x))
        return self.dense(self.drop(x))


class Discriminator(nn.Module):
    def __init__(self, n_styles: int = 0, pitches: int = 52, hidden: int = 128) -> None:
        super().__init__()
        self.n_styles = n_styles
        self.lstm1 = nn.LSTM(pitches + n_styles, hidden, batch_first=True)
        self.lstm2 = nn.LSTM(hidden, hidden, batch_first=True, bidirectional=True)
        self.head = nn.Sequential(spectral_norm(nn.Linear(4 * hidden, hidden)), nn.LeakyReLU(0.2),
                                  spectral_norm(nn.Linear(hidden, 1)))

    def forward(self, bars: torch.Tensor, style: torch.Tensor | None = None) -> torch.Tensor:
        x = bars
        if self.n_styles:
            x = torch.cat([x, style.unsqueeze(1).expand(-1, x.shape[1], -1)], dim=-1)
        x, _ = self.lstm1(x)
        x, _ = self.lstm2(x)
        feats = torch.cat([x.mean(dim=1), x.max(dim=1).values], dim=-1)
        return self.head(feats)[:, 0]


class GeneratorGraph(nn.Module):
    """What ships: noise (+ style) -> probabilities."""

    def __init__(self, gen: nn.Module) -> None:
        super().__init__()
        self.gen = gen

    def forward(self, z, style=None):
        return torch.sigmoid(self.gen(z, style))


