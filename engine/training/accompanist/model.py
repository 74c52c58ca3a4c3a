"""PyTorch modules of the VAE-RNN: a bar VAE per track, a melody RNN, an RNN per accompaniment role.

Shapes: planes (B, 2, S, P) float (0 onset, 1 active), mask (B, S) float (the bar's valid steps:
its meter and, for a pickup, its alignment), latents (B, L).

The encoder embeds each step's 2P onset/active values to a small vector, then an MLP over the
whole bar (with the mask) gives mu/logvar. The decoder maps (z, mask) through an MLP to per-step
features and a shared step head to onset/active logits; padding steps get a logit of -30 so
they decode to silence whatever the latent. Sharing the step head keeps the graphs small (the
per-bar cost is what the live engine pays).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from engine.training.accompanist.config import ModelConfig

PAD_LOGIT = -30.0


class BarEncoder(nn.Module):
    """(planes, mask[, melody planes]) -> (mu, logvar). An accompaniment encoder also sees the
    melody bar (a conditional VAE): its latent then holds what the melody does not already say
    (rhythm, voicing, register), which the RNNs can predict; the harmony is left to the decoder,
    which hears the melody too."""

    def __init__(self, cfg: ModelConfig, cond_pitches: int = 0) -> None:
        super().__init__()
        S, P, E, H = cfg.max_bar_steps, cfg.n_pitches, cfg.step_embed, cfg.vae_hidden
        self.step = nn.Linear(2 * P + 2 * cond_pitches, E)
        self.mlp = nn.Sequential(nn.Linear(S * E + S, H), nn.ReLU(), nn.Linear(H, H), nn.ReLU())
        self.mu = nn.Linear(H, cfg.latent)
        self.logvar = nn.Linear(H, cfg.latent)

    def forward(self, planes: torch.Tensor, mask: torch.Tensor,
                melody: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        B = planes.shape[0]
        if melody is not None:
            planes = torch.cat([planes, melody], dim=3)
        x = planes.permute(0, 2, 1, 3).reshape(B, planes.shape[2], -1)  # (B, S, 2P [+ 2Pm])
        h = F.relu(self.step(x)).reshape(B, -1)
        h = self.mlp(torch.cat([h, mask], dim=1))
        return self.mu(h), self.logvar(h).clamp(-8.0, 8.0)


class BarDecoder(nn.Module):
    """(z, mask[, melody planes]) -> onset/active logits.

    An accompaniment decoder also sees the melody bar, step by step (a conditional VAE): the
    latent then carries the voice's rhythm and voicing, and the step head places pitches against
    the melody notes sounding at that very step, which is what keeps the result consonant. The
    melody's own decoder has no condition."""

    def __init__(self, cfg: ModelConfig, cond_pitches: int = 0) -> None:
        super().__init__()
        S, P, E, H = cfg.max_bar_steps, cfg.n_pitches, cfg.step_embed, cfg.vae_hidden
        self.S, self.P, self.E = S, P, E
        C = cfg.cond_embed
        # with bar_context the MLP also reads the mean melody features of the whole bar
        self.bar_context = bool(cond_pitches and cfg.bar_context)
        n_mlp = cfg.latent + S + (C if self.bar_context else 0)
        self.mlp = nn.Sequential(nn.Linear(n_mlp, H), nn.ReLU(), nn.Linear(H, S * E), nn.ReLU())
        # the melody around each step (two steps either side: passing tone or chord tone?)
        self.cond = nn.Conv1d(2 * cond_pitches, C, kernel_size=5, padding=2) \
            if cond_pitches else None
        # an accompaniment voice also hears its own previous bar's last step: a held note
        # continues over the bar line, a line moves on by step
        self.prev = nn.Linear(P, C) if cond_pitches else None
        n_in = E + S + (2 * C if cond_pitches else 0)
        self.head = nn.Sequential(nn.Linear(n_in, cfg.head_hidden), nn.ReLU(),
                                  nn.Linear(cfg.head_hidden, 2 * P))
        self.register_buffer("pos", torch.eye(S), persistent=False)

    def forward(self, z: torch.Tensor, mask: torch.Tensor, melody: torch.Tensor | None = None,
                prev_last: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        B = z.shape[0]
        mlp_in = [z, mask]
        if self.cond is not None:
            m = melody.permute(0, 1, 3, 2).reshape(B, -1, self.S)  # (B, 2Pm, S)
            cond = F.relu(self.cond(m))  # (B, C, S)
            if self.bar_context:
                n = mask.sum(dim=1, keepdim=True).clamp_min(1.0)
                mlp_in.append((cond * mask[:, None, :]).sum(dim=2) / n)
        h = self.mlp(torch.cat(mlp_in, dim=1)).reshape(B, self.S, self.E)
        parts = [h, self.pos.unsqueeze(0).expand(B, -1, -1)]
        if self.cond is not None:
            parts.append(cond.permute(0, 2, 1))
            if prev_last is None:
                prev_last = z.new_zeros(B, self.P)
            parts.append(F.relu(self.prev(prev_last)).unsqueeze(1).expand(-1, self.S, -1))
        logits = self.head(torch.cat(parts, dim=2))
        logits = logits.reshape(B, self.S, 2, self.P).permute(0, 2, 1, 3)  # (B, 2, S, P)
        pad = (1.0 - mask)[:, None, :, None] * PAD_LOGIT
        logits = logits * mask[:, None, :, None] + pad
        return logits[:, 0], logits[:, 1]


class BarVAE(nn.Module):
    def __init__(self, cfg: ModelConfig, cond_pitches: int = 0) -> None:
        super().__init__()
        self.encoder = BarEncoder(cfg, cond_pitches)
        self.decoder = BarDecoder(cfg, cond_pitches)

    def forward(self, planes, mask, melody=None):
        mu, logvar = self.encoder(planes, mask, melody)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
        on, ac = self.decoder(z, mask, melody)
        return on, ac, mu, logvar


class VAESet(nn.Module):
    """One BarVAE per track (melody first), trained together on the same bars."""

    def __init__(self, cfg: ModelConfig, n_tracks: int) -> None:
        super().__init__()
        self.vaes = nn.ModuleList(BarVAE(cfg, cfg.n_pitches if k else 0)
                                  for k in range(n_tracks))

    def forward(self, bars: torch.Tensor, mask: torch.Tensor):
        """bars (B, K, 2, S, P) -> list per track of (onset_logits, active_logits, mu, logvar);
        track 0 is the melody, the others' decoders see it."""
        mel = bars[:, 0]
        return [vae(bars[:, k], mask, mel if k else None) for k, vae in enumerate(self.vaes)]


def bar_bce(on_logits, ac_logits, planes, mask) -> torch.Tensor:
    """Bernoulli NLL of a bar's onset+active planes, summed over valid cells: (B,)."""
    m = mask[:, :, None]
    l_on = F.binary_cross_entropy_with_logits(on_logits, planes[:, 0], reduction="none")
    l_ac = F.binary_cross_entropy_with_logits(ac_logits, planes[:, 1], reduction="none")
    return ((l_on + l_ac) * m).sum(dim=(1, 2))


def kl_free_bits(mu, logvar, free_bits: float) -> tuple[torch.Tensor, torch.Tensor]:
    """KL(q||N(0,1)) per sample summed over dims, with a batch-level floor of `free_bits` nats per
    dim (the floor keeps every latent dim carrying information the RNNs can use)."""
    kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)  # (B, L)
    per_dim = kl.mean(dim=0)
    return torch.clamp(per_dim, min=free_bits).sum(), kl.sum(dim=1).mean()


def last_active(planes: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, 2, S, P) planes, (B, S) masks -> (B, P): the active plane at each bar's last valid
    step (what still sounds at the bar line)."""
    S = mask.shape[1]
    idx = (mask * torch.arange(1, S + 1, device=mask.device)).argmax(dim=1)  # (B,)
    return planes[torch.arange(planes.shape[0], device=planes.device), 1, idx]


def previous_last(planes: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, T, 2, S, P), (B, T, S) -> (B, T, P): bar t gets the last step of bar t-1 (zeros at 0)."""
    B, T = mask.shape[:2]
    last = last_active(planes.reshape(B * T, *planes.shape[2:]), mask.reshape(B * T, -1))
    last = last.reshape(B, T, -1)
    return torch.cat([torch.zeros_like(last[:, :1]), last[:, :-1]], dim=1)


class LatentRNN(nn.Module):
    """A GRU over bars: input features -> next latent. Exported as a single step with state."""

    def __init__(self, in_dim: int, cfg: ModelConfig) -> None:
        super().__init__()
        self.gru = nn.GRU(in_dim, cfg.rnn_hidden, batch_first=True)
        self.head = nn.Sequential(nn.Linear(cfg.rnn_hidden + in_dim, cfg.rnn_hidden), nn.Tanh(),
                                  nn.Linear(cfg.rnn_hidden, cfg.latent))

    def forward(self, x: torch.Tensor, h0: torch.Tensor | None = None):
        """x (B, T, in) -> (z_pred (B, T, L), h (1, B, H))."""
        out, h = self.gru(x, h0)
        return self.head(torch.cat([out, x], dim=2)), h


class RNNSet(nn.Module):
    """The melody RNN and one accompaniment RNN per role.

    melody: input [z_mel(t-1), mask(t-1)] -> z_mel(t) (history only, as the report's piano RNN).
    role r: input [z_mel(t), z_r(t-1), mask(t)] -> z_r(t): the melody up to t (the report's
    set-up) plus the role's own previous bar, so the voice stays continuous.
    """

    def __init__(self, cfg: ModelConfig, n_roles: int) -> None:
        super().__init__()
        L, S = cfg.latent, cfg.max_bar_steps
        self.melody = LatentRNN(L + S, cfg)
        self.roles = nn.ModuleList(LatentRNN(2 * L + S, cfg) for _ in range(n_roles))


# -- single-step wrappers for export ------------------------------------------------------------
class EncoderExport(nn.Module):
    def __init__(self, enc: BarEncoder) -> None:
        super().__init__()
        self.enc = enc

    def forward(self, planes, mask, melody=None):
        return self.enc(planes, mask, melody)[0]


class DecoderExport(nn.Module):
    def __init__(self, dec: BarDecoder) -> None:
        super().__init__()
        self.dec = dec

    def forward(self, z, mask, melody, prev_last):
        return self.dec(z, mask, melody, prev_last)


class MelodyStep(nn.Module):
    def __init__(self, rnn: LatentRNN) -> None:
        super().__init__()
        self.rnn = rnn

    def forward(self, z_prev, mask_prev, h):
        z, h_out = self.rnn(torch.cat([z_prev, mask_prev], dim=1).unsqueeze(1), h)
        return z[:, 0], h_out


class RoleStep(nn.Module):
    def __init__(self, rnn: LatentRNN) -> None:
        super().__init__()
        self.rnn = rnn

    def forward(self, z_mel, z_prev, mask, h):
        z, h_out = self.rnn(torch.cat([z_mel, z_prev, mask], dim=1).unsqueeze(1), h)
        return z[:, 0], h_out
