"""Next-frame LSTM (the Rajaraman slides): 2 LSTM layers of 256 cells, dropout 0.5, sigmoid
outputs with binary cross-entropy. Each step reads one frame and predicts the next.

Exported as one step with explicit state: x (B, n_inputs), h, c (2, B, 256) -> probs (B, F), h, c.
The input may be wider than the frame (`n_inputs`): the bar model also reads the frame one bar
before the one it predicts and that frame's position in the bar (engine.models.continuation.
model_inputs); these are input features, the network stays 2 x 256 LSTM + sigmoid outputs.
"""

from __future__ import annotations

import torch
from torch import nn


class FrameLSTM(nn.Module):
    def __init__(self, n_features: int, hidden: int = 256, layers: int = 2,
                 dropout: float = 0.5, n_inputs: int | None = None) -> None:
        super().__init__()
        self.n_features, self.hidden, self.layers = n_features, hidden, layers
        self.n_inputs = n_inputs or n_features
        self.lstm = nn.LSTM(self.n_inputs, hidden, layers, batch_first=True, dropout=dropout)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, n_features)

    def config(self) -> dict:
        return {"n_features": self.n_features, "n_inputs": self.n_inputs, "hidden": self.hidden,
                "layers": self.layers}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for frame t+1 from inputs 0..t: (B, T, n_inputs) -> (B, T, F)."""
        out, _ = self.lstm(x)
        return self.out(self.drop(out))

    def step(self, x, h, c):
        out, (h2, c2) = self.lstm(x.unsqueeze(1), (h, c))
        return torch.sigmoid(self.out(out[:, 0])), h2, c2


class StepGraph(nn.Module):
    def __init__(self, model: FrameLSTM) -> None:
        super().__init__()
        self.model = model

    def forward(self, x, h, c):
        return self.model.step(x, h, c)


def export_step(model: FrameLSTM, path) -> float:
    """Export the step graph; returns the torch vs ORT max abs difference."""
    from engine.training.onnx_export import check_parity, export_onnx

    model = model.cpu().eval()
    g = torch.Generator().manual_seed(0)
    ex = ((torch.rand(2, model.n_inputs, generator=g) < 0.1).float(),
          torch.randn(model.layers, 2, model.hidden, generator=g) * 0.5,
          torch.randn(model.layers, 2, model.hidden, generator=g) * 0.5)
    graph = StepGraph(model).eval()
    export_onnx(graph, ex, path, ["x", "h", "c"], ["probs", "h_out", "c_out"],
                {"x": {0: "batch"}, "h": {1: "batch"}, "c": {1: "batch"}, "probs": {0: "batch"},
                 "h_out": {1: "batch"}, "c_out": {1: "batch"}})
    return check_parity(graph, ex, path)
