"""Writing music out: MIDI files (`export.midi`), WAV renders (`export.audio`) and per-track
stems (`export.stems`). Imports the engine only; every write is atomic (engine.fileio)."""
