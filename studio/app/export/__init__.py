"""Export: MIDI, WAV (rendered with FluidSynth, with a progress bar) and stems."""
