"""`popmusicnet train morph`: options and entry (found by studio/cli/commands/train.py)."""

from engine.training.kinds import epochs_and_minutes_kind

KIND = "morph"
HELP = "train the LSTM-VAE style morph model (encoder/decoder ONNX + style centroids)"

register, run = epochs_and_minutes_kind("engine.training.morph.train")
