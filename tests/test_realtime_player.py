"""SongPlayer on the offline synth (rendered by the test: deterministic) and the null backend."""

from __future__ import annotations

import time

import numpy as np
import pytest

from engine.music import Note, Song, Track
from engine.realtime.player import SongPlayer, assign_channels
from engine.synth.live import BLOCK, FluidSynthBackend, NullBackend


def _song() -> Song:
    return Song(tracks=[Track("melody", 0, notes=[Note(i * 480, i * 480 + 400, 60 + i)
                                                    for i in range(4)]),
                        Track("drums", 0, True, notes=[Note(960, 1000, 36)])])


def _onsets(audio: np.ndarray, thresh: float = 1e-4) -> np.ndarray:
    loud = np.abs(audio[:, 0]) > thresh
    return np.flatnonzero(loud[1:] & ~loud[:-1]) + 1


def _render_while(backend, player, seconds):
    out = []
    for _ in range(int(seconds * backend.sample_rate) // 128):
        out.append(backend.render(128))
        time.sleep(0.0005)  # let the feeder thread run, as the audio thread would
    return np.concatenate(out)


def test_channels_skip_drum_channel():
    song = Song(tracks=[Track(str(i)) for i in range(10)] + [Track("d", is_drum=True)])
    chans = assign_channels(song)
    assert chans[-1] == 9 and 9 not in chans[:-1] and chans[:9] == list(range(9))


def test_offline_playback_first_onset_and_end():
    from engine.synth.soundfont import bundled_soundfont

    backend = FluidSynthBackend(None, reverb=False, soundfont=bundled_soundfont())
    player = SongPlayer(backend)
    try:
        player.play(_song())
        audio = _render_while(backend, player, 2.6)
        first = _onsets(audio)[0]
        due = player._origin_frame
        # The first note is due at the origin frame; FluidSynth starts it on a 64-frame block.
        assert due <= first <= due + 2 * BLOCK
        assert not player.is_playing
        assert player.position_tick == pytest.approx(1840)
    finally:
        player.close()
        backend.close()


def test_null_backend_loop_and_stop():
    player = SongPlayer("null")
    assert isinstance(player.synth, NullBackend)
    player.play(_song(), start_tick=480, loop=(0, 960))
    time.sleep(1.3)
    assert player.is_playing
    pos = player.position_tick
    assert 0 <= pos < 960
    player.stop()
    assert not player.is_playing
    ons = [e for e in player.synth.events if e.kind == "on" and e.scheduled]
    # Starting at 480 in the loop 0..960: pitch 61 first, then 60 and 61 again on the next pass.
    assert [e.data1 for e in ons[:3]] == [61, 60, 61]
    player.note_on(64, 90)
    player.note_off(64)
    assert player.synth.events[-1].kind == "off"
    player.close()


def test_bad_loop_raises():
    player = SongPlayer("null")
    with pytest.raises(ValueError):
        player.play(_song(), loop=(960, 0))
    player.close()
