"""PopMusicNet Studio front-ends: the Qt window (`studio.app`) and the command line (`studio.cli`).

`studio.cli` never imports Qt; only opening the window does.
"""
