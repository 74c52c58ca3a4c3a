"""The LSTM-VAE (schuBERT & paGANini, section 2.4): a 3-layer LSTM encoder whose last hidden state
gives mu and log-variance of a 20-d latent; z is projected into the 3-layer LSTM decoder's initial
state and concatenated to every decoder input; sigmoid outputs are Bernoulli probabilities.

Exported as three graphs so the loop (and the Bernoulli sampling) runs in the engine
(ARCHITECTURE.md: recurrent models export a single step with explicit state):
  encoder: window (B, T, F) -> mu, logvar (B, Z)
  init:    z (B, Z) -> h, c (L, B, H)
  step:    x_prev (B, F), z (B, Z), h, c -> probs (B, F), h, c
"""

from __future__ import annotations

import torch
from torch import nn


class MorphVAE(nn.Module):
    def __init__(self, n_features: int, hidden: int = 128, layers: int = 3, latent: int = 20,
                 dropout: float = 0.0, input_dropout: float = 0.0) -> None:
        super().__init__()
        # Training only: blank whole previous frames at this rate so the decoder must lean on z
        # (Bowman et al. 2016's word dropout against posterior collapse).
        self.input_dropout = input_dropout
        self.n_features, self.hidden, self.layers, self.latent = n_features, hidden, layers, latent
        drop = dropout if layers > 1 else 0.0
        self.encoder = nn.LSTM(n_features, hidden, layers, batch_first=True, dropout=drop)
        self.to_mu = nn.Linear(hidden, latent)
        self.to_logvar = nn.Linear(hidden, latent)
        self.to_state = nn.Linear(latent, 2 * layers * hidden)
        self.decoder = nn.LSTM(n_features + latent, hidden, layers, batch_first=True, dropout=drop)
        self.out = nn.Linear(hidden, n_features)

    def config(self) -> dict[str, int]:
        return {"n_features": self.n_features, "hidden": self.hidden, "layers": self.layers,
                "latent": self.latent}

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _, (h, _) = self.encoder(x)
        last = h[-1]
        return self.to_mu(last), self.to_logvar(last).clamp(-10.0, 10.0)

    def init_state(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s = torch.tanh(self.to_state(z)).view(z.shape[0], 2, self.layers, self.hidden)
        return s[:, 0].transpose(0, 1).contiguous(), s[:, 1].transpose(0, 1).contiguous()

    def decode_logits(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Teacher-forced: logits for every step of `x` (B, T, F) given the previous true step."""
        prev = torch.cat([torch.zeros_like(x[:, :1]), x[:, :-1]], dim=1)
        if self.training and self.input_dropout > 0:
            keep = torch.rand(x.shape[0], x.shape[1], 1, device=x.device) >= self.input_dropout
            prev = prev * keep
        inp = torch.cat([prev, z.unsqueeze(1).expand(-1, x.shape[1], -1)], dim=-1)
        out, _ = self.decoder(inp, self.init_state(z))
        return self.out(out)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
        return self.decode_logits(x, z), mu, logvar

    def step(self, x_prev: torch.Tensor, z: torch.Tensor, h: torch.Tensor,
             c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        inp = torch.cat([x_prev, z], dim=-1).unsqueeze(1)
        out, (h2, c2) = self.decoder(inp, (h, c))
        return torch.sigmoid(self.out(out[:, 0])), h2, c2


class EncoderGraph(nn.Module):
    def __init__(self, vae: MorphVAE) -> None:
        super().__init__()
        self.vae = vae

    def forward(self, window: torch.Tensor):
        return self.vae.encode(window)


class InitGraph(nn.Module):
    def __init__(self, vae: MorphVAE) -> None:
        super().__init__()
        self.vae = vae

    def forward(self, z: torch.Tensor):
        return self.vae.init_state(z)


class StepGraph(nn.Module):
    def __init__(self, vae: MorphVAE) -> None:
        super().__init__()
        self.vae = vae

    def forward(self, x_prev, z, h, c):
        return self.vae.step(x_prev, z, h, c)


def export_graphs(vae: MorphVAE, out_dir, name: str, window_steps: int) -> dict[str, object]:
    """Export encoder/init/step graphs beside each other; check torch vs ORT parity on each.
    Returns {component: path} and the parity figures."""
    from pathlib import Path

    from engine.training.onnx_export import check_parity, export_onnx

    out_dir = Path(out_dir)
    vae = vae.cpu().eval()
    F, Z, L, H = vae.n_features, vae.latent, vae.layers, vae.hidden
    g = torch.Generator().manual_seed(0)
    win = (torch.rand(2, window_steps, F, generator=g) < 0.1).float()
    z = torch.randn(2, Z, generator=g)
    h, c = torch.randn(L, 2, H, generator=g) * 0.5, torch.randn(L, 2, H, generator=g) * 0.5
    x = (torch.rand(2, F, generator=g) < 0.1).float()
    specs = {
        "encoder": (EncoderGraph(vae), (win,), ["window"], ["mu", "logvar"],
                    {"window": {0: "batch", 1: "steps"}, "mu": {0: "batch"}, "logvar": {0: "batch"}}),
        "init": (InitGraph(vae), (z,), ["z"], ["h", "c"],
                 {"z": {0: "batch"}, "h": {1: "batch"}, "c": {1: "batch"}}),
        "step": (StepGraph(vae), (x, z, h, c), ["x_prev", "z", "h", "c"], ["probs", "h_out", "c_out"],
                 {"x_prev": {0: "batch"}, "z": {0: "batch"}, "h": {1: "batch"}, "c": {1: "batch"},
                  "probs": {0: "batch"}, "h_out": {1: "batch"}, "c_out": {1: "batch"}}),
    }
    files, parity = {}, {}
    for comp, (module, example, ins, outs, dyn) in specs.items():
        path = out_dir / f"{name}.{comp}.onnx"
        export_onnx(module, example, path, ins, outs, dyn)
        parity[comp] = check_parity(module, example, path, atol=1e-4)
        files[comp] = path
    return {"files": files, "parity": parity}
