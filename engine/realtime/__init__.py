"""The realtime engine: play a MIDI keyboard, hear the melody at once and the accompaniment on the beat.

- `SongPlayer` (player.py): the studio's transport, a Song through the realtime synth.
- `LiveEngine` (engine.py): MIDI in -> melody thru -> accompaniment scheduled on the beat, recording;
  a facade over capture.py (the melody as played), planner.py (bars on the beat), accompaniment.py
  and voices.py (the model, its session and its channels), devices.py (MIDI ports, JACK monitor,
  thru), commands.py (what `LiveEngine.send` takes) and status.py (what readers see).
- clock.py (musical time from the sample clock), midi.py (rtmidi ports), jackmon.py (JACK xruns,
  shutdown, port connections).

The synth itself (FluidSynth in C, no Python in the audio path) is engine.synth.live.
"""

from __future__ import annotations

__all__ = ["SongPlayer", "LiveEngine", "LiveConfig"]


def __getattr__(name: str):  # lazy, so importing the package stays cheap
    if name == "SongPlayer":
        from engine.realtime.player import SongPlayer
        return SongPlayer
    if name in ("LiveEngine", "LiveConfig"):
        from engine.realtime import engine as _engine
        return getattr(_engine, name)
    raise AttributeError(name)
