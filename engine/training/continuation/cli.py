"""`popmusicnet train continuation`: options and entry (found by studio/cli/commands/train.py)."""

from engine.training.kinds import epochs_and_minutes_kind

KIND = "continuation"
HELP = "train the next-frame LSTM continuation model (or the JSB-like benchmark with --task jsb)"

register, run = epochs_and_minutes_kind("engine.training.continuation.train")
