"""The studio: a Qt desktop editor over the engine (PySide6 Widgets).

One package per feature (Frescobaldi's layout): `pianoroll/`, `tracks/`, `transport/`,
`project/`, `preferences/` and one package per engine panel (`accompany/`, `morph/`, `generate/`,
`classify/`, `train/`, `export/`). Notes live in `engine.music.Song`, wrapped by
`document.SongDocument`; every edit is a QUndoCommand from `commands.py` calling a document
method. Panels talk to the engine only through `services.py`, and heavy work runs in `workers.py`.
"""
