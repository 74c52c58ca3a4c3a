"""Project files (JSON with the song embedded as a base64 Standard MIDI File), autosave and
crash recovery."""
