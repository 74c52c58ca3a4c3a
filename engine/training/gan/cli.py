"""`popmusicnet train gan`: options and entry (found by studio/cli/commands/train.py)."""

from engine.training.kinds import epochs_and_minutes_kind

KIND = "gan"
HELP = "train a bar GAN (CNN or Bi-LSTM generator vs a bi-LSTM discriminator)"

register, run = epochs_and_minutes_kind("engine.training.gan.train")
