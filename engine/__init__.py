"""PopMusicNet engine: music model, MIDI I/O, synth, models, realtime (no Qt)."""

__version__ = "0.1.0"
