"""Model cards, the ONNX Runtime facade, export parity, and the training plumbing."""

import io
import json

import numpy as np
import pytest

from engine.errors import ModelError
from engine.models.card import ModelCard
from engine.models.runtime import OnnxModel, list_cards, load_card

torch = pytest.importorskip("torch")
from engine.training.common import EarlyStopping, ProgressLog, load_checkpoint, save_checkpoint  # noqa: E402
from engine.training.onnx_export import check_parity, export_onnx, write_card  # noqa: E402


class Step(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.cell = torch.nn.LSTMCell(4, 8)
        self.out = torch.nn.Linear(8, 3)

    def forward(self, x, h, c):
        h, c = self.cell(x, (h, c))
        return self.out(h), h, c


@pytest.fixture
def exported(tmp_path):
    torch.manual_seed(0)
    m = Step()
    ex = (torch.randn(1, 4), torch.zeros(1, 8), torch.zeros(1, 8))
    p = export_onnx(m, ex, tmp_path / "tiny.step.onnx", ["x", "h", "c"], ["y", "h_out", "c_out"])
    return m, ex, p


def test_export_parity_and_card_round_trip(exported, tmp_path, monkeypatch):
    m, ex, p = exported
    assert check_parity(m, ex, p) < 1e-5
    card_path = write_card(tmp_path, "tiny", "test-kind", {"step": p}, {"latent": 8},
                           {"command": "none"}, {"f1": 0.5})
    monkeypatch.setenv("POPMUSICNET_MODELS", str(tmp_path))
    card = load_card("tiny", kind="test-kind")
    assert card.metrics == {"f1": 0.5} and card.path == card_path
    card.verify()
    model = card.open("step")
    out = model.run({"x": np.ones((1, 4), np.float32), "h": np.zeros((1, 8), np.float32),
                     "c": np.zeros((1, 8), np.float32)})
    assert out["y"].shape == (1, 3) and model.provider == "CPUExecutionProvider"
    assert [c.name for c in list_cards("test-kind")] == ["tiny"]


def test_corrupt_model_and_card_errors(exported, tmp_path, monkeypatch):
    _, _, p = exported
    card_path = write_card(tmp_path, "tiny", "test-kind", {"step": p}, {}, {}, {})
    p.write_bytes(p.read_bytes()[:100])
    with pytest.raises(ModelError, match="sha256"):
        ModelCard.read(card_path).verify()
    with pytest.raises(ModelError, match="not a loadable ONNX model"):
        OnnxModel(p)
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ModelError, match="not a readable model card"):
        ModelCard.read(tmp_path / "bad.json")
    monkeypatch.setenv("POPMUSICNET_MODELS", str(tmp_path))
    with pytest.raises(ModelError, match="no test-kind model named 'nope'"):
        load_card("nope", kind="test-kind")


def test_progress_lines_are_json():
    buf = io.StringIO()
    log = ProgressLog(buf)
    log.emit("step", stage="vae", step=3, losses={"kl": torch.tensor(0.5)})
    rec = json.loads(buf.getvalue())
    assert rec["stage"] == "vae" and rec["losses"]["kl"] == 0.5 and "seconds" in rec


def test_checkpoint_round_trip_and_early_stopping(tmp_path):
    m = Step()
    save_checkpoint(tmp_path / "c.ckpt", model=m.state_dict(), epoch=3)
    state = load_checkpoint(tmp_path / "c.ckpt")
    assert state["epoch"] == 3 and set(state["model"]) == set(m.state_dict())
    es = EarlyStopping(patience=2)
    assert es.step(1.0) and not es.step(1.5) and not es.should_stop
    es.step(1.2)
    assert es.should_stop


def test_auto_provider_is_quiet_and_reports_what_runs(exported, capfd):
    from engine.models.runtime import cuda_usable

    _, _, p = exported
    model = OnnxModel(p, providers="auto")
    err = capfd.readouterr().err
    assert "libonnxruntime_providers_cuda" not in err
    if cuda_usable():  # "auto" takes the GPU whenever ONNX Runtime can use it
        assert model.provider == "CUDAExecutionProvider"
    else:
        assert model.provider == "CPUExecutionProvider" and cuda_usable.reason
