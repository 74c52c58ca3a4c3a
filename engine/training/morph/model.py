"""The melody LSTM-VAE: a bidirectional LSTM encoder reads a window of melody tokens
(`engine.models.melody_tokens`) and gives mu and log-variance of the latent; the LSTM decoder
starts from a state projected from z and sees z again at every step beside the previous token
(so the latent cannot be forgotten over the window); a softmax over the tokens at each step.

Against posterior collapse (Bowman et al. 2016; Kingma et al. 2016; Roberts et al. 2018):
free bits (no KL penalty below a budget of nats), word dropout (a share of the decoder's
previous tokens replaced by an UNKNOWN token in training, so the decoder must read z).

Exported as two graphs:
  encoder: tokens (B, T) int64 -> mu, logvar (B, Z)
  decode:  z (B, Z), noise (B, T, V) -> tokens (B, T) int64: the whole window decoded in one
           run, the loop unrolled over the fixed T steps; at each step the token is
           argmax(logits + noise), so zero noise is the greedy decode and noise of
           temperature * Gumbel draws is sampling at that temperature (the Gumbel-max trick).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class MelodyVAE(nn.Module):
    def __init__(self, vocab: int, hidden: int = 256, latent: int = 64, embed: int = 64,
                 enc_hidden: int | None = None, word_dropout: float = 0.0) -> None:
        super().__init__()
        self.vocab, self.hidden, self.latent, self.embed_size = vocab, hidden, latent, embed
        self.enc_hidden = enc_hidden or hidden
        self.word_dropout = word_dropout
        self.start, self.unknown = vocab, vocab + 1
        self.embed = nn.Embedding(vocab + 2, embed)
        self.encoder = nn.LSTM(embed, self.enc_hidden, batch_first=True, bidirectional=True)
        self.to_mu = nn.Linear(2 * self.enc_hidden, latent)
        self.to_logvar = nn.Linear(2 * self.enc_hidden, latent)
        self.to_state = nn.Linear(latent, 2 * hidden)
        self.decoder = nn.LSTM(embed + latent, hidden, batch_first=True)
        self.out = nn.Linear(hidden, vocab)

    def config(self) -> dict[str, int]:
        return {"vocab": self.vocab, "hidden": self.hidden, "latent": self.latent,
                "embed": self.embed_size, "enc_hidden": self.enc_hidden}

    def encode(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _, (h, _) = self.encoder(self.embed(tokens))
        last = torch.cat([h[0], h[1]], dim=-1)  # forward's end, backward's start
        return self.to_mu(last), self.to_logvar(last).clamp(-10.0, 10.0)

    def init_state(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h, c = torch.tanh(self.to_state(z)).chunk(2, dim=-1)
        return h, c

    def decode_logits(self, tokens: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Teacher-forced: logits (B, T, V) for every step given the true previous tokens."""
        prev = torch.cat([torch.full_like(tokens[:, :1], self.start), tokens[:, :-1]], dim=1)
        if self.training and self.word_dropout > 0:
            drop = torch.rand(prev.shape, device=prev.device) < self.word_dropout
            drop[:, 0] = False
            prev = prev.masked_fill(drop, self.unknown)
        inp = torch.cat([self.embed(prev), z.unsqueeze(1).expand(-1, tokens.shape[1], -1)],
                        dim=-1)
        h, c = self.init_state(z)
        out, _ = self.decoder(inp, (h.unsqueeze(0).contiguous(), c.unsqueeze(0).contiguous()))
        return self.out(out)

    def forward(self, tokens: torch.Tensor):
        mu, logvar = self.encode(tokens)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
        return self.decode_logits(tokens, z), mu, logvar

    def decode(self, z: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Free-running decode of noise.shape[1] steps: token = argmax(logits + noise).
        The LSTM cell is written out with the decoder's own weights (one MatMul per gate
        block) so the unrolled ONNX graph shares one copy of them."""
        w_ih, w_hh = self.decoder.weight_ih_l0, self.decoder.weight_hh_l0
        bias = self.decoder.bias_ih_l0 + self.decoder.bias_hh_l0
        w_x, w_z = w_ih[:, :self.embed_size], w_ih[:, self.embed_size:]
        h, c = self.init_state(z)
        zpart = F.linear(z, w_z, bias)  # the same at every step
        tok = torch.full((z.shape[0],), self.start, dtype=torch.long, device=z.device)
        out = []
        for t in range(noise.shape[1]):
            gates = F.linear(self.embed(tok), w_x) + zpart + F.linear(h, w_hh)
            i, f, g, o = gates.chunk(4, dim=-1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            tok = torch.argmax(self.out(h) + noise[:, t], dim=-1)
            out.append(tok)
        return torch.stack(out, dim=1)


class EncoderGraph(nn.Module):
    def __init__(self, vae: MelodyVAE) -> None:
        super().__init__()
        self.vae = vae

    def forward(self, tokens: torch.Tensor):
        return self.vae.encode(tokens)


class DecodeGraph(nn.Module):
    def __init__(self, vae: MelodyVAE) -> None:
        super().__init__()
        self.vae = vae

    def forward(self, z: torch.Tensor, noise: torch.Tensor):
        return self.vae.decode(z, noise)


def export_graphs(vae: MelodyVAE, out_dir, name: str, window_steps: int) -> dict[str, object]:
    """Export the encoder and decode graphs; check torch against ONNX Runtime on each (the
    decode graph's tokens must agree exactly). Returns {component: path} and parity figures."""
    from pathlib import Path

    import numpy as np

    from engine.models.runtime import OnnxModel
    from engine.training.onnx_export import check_parity, export_onnx

    out_dir = Path(out_dir)
    vae = vae.cpu().eval()
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, vae.vocab, (3, window_steps), generator=g)
    z = torch.randn(3, vae.latent, generator=g)
    gumbel = -torch.log(-torch.log(torch.rand(3, window_steps, vae.vocab, generator=g)
                                   .clamp(1e-9, 1 - 1e-9)))
    noise = gumbel * torch.tensor([0.0, 1.0, 0.5]).view(3, 1, 1)
    files, parity = {}, {}
    enc_path = out_dir / f"{name}.encoder.onnx"
    export_onnx(EncoderGraph(vae), (tokens,), enc_path, ["tokens"], ["mu", "logvar"],
                {"tokens": {0: "batch"}, "mu": {0: "batch"}, "logvar": {0: "batch"}})
    parity["encoder"] = check_parity(EncoderGraph(vae), (tokens,), enc_path, atol=1e-4)
    files["encoder"] = enc_path
    dec_path = out_dir / f"{name}.decode.onnx"
    module = DecodeGraph(vae)
    export_onnx(module, (z, noise), dec_path, ["z", "noise"], ["tokens"],
                {"z": {0: "batch"}, "noise": {0: "batch"}, "tokens": {0: "batch"}})
    with torch.no_grad():
        want = module(z, noise).numpy()
    got = OnnxModel(dec_path, providers="cpu").run({"z": z.numpy(),
                                                   "noise": noise.numpy()})["tokens"]
    parity["decode"] = float(np.mean(got != want))  # share of tokens that differ
    if parity["decode"] > 0.02:
        raise RuntimeError(f"decode graph disagrees with torch on {parity['decode']:.1%} of "
                           "tokens")
    files["decode"] = dec_path
    return {"files": files, "parity": parity}
