"""The track list: name, GM instrument, mute, solo, volume and role of every track."""
