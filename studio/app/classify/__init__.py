"""Classify: the selected track (or a dropped WAV file) -> class probabilities as a bar chart."""
