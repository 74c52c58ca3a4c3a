"""The preferences dialog: audio backend, buffer, soundfont, MIDI input and output."""
