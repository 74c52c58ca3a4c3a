"""Round trips of the bar encoding shared by training and runtime."""

import numpy as np
import pytest

from engine.music import MeterChange, Note, Song, Track
from engine.representation import (ACTIVE, ONSET, BarSpec, bar_grid, bar_units, decode_bar,
                                   decode_notes, encode_bar, encode_notes, encode_song,
                                   split_bar_steps)

TPB = 480
Q = TPB  # a quarter note
S16 = TPB // 4


def song_of(notes, meters=((0, 4, 4),)):
    return Song([Track("m", notes=list(notes))], ticks_per_beat=TPB,
                meters=[MeterChange(t, n, d) for t, n, d in meters])


@pytest.mark.parametrize("meter,steps", [((4, 4), 16), ((3, 4), 12), ((6, 8), 12), ((2, 4), 8),
                                         ((7, 8), 14)])
def test_bar_lengths_follow_the_meter(meter, steps):
    song = song_of([Note(0, 8 * Q, 60)], [(0, *meter)])
    grid = bar_grid(song, BarSpec())
    assert set(grid.length.tolist()) == {steps}
    assert (grid.offset == 0).all()
    assert grid.start[1] - grid.start[0] == steps * S16


def test_long_meters_split_into_whole_beats():
    assert split_bar_steps(32, 4, 16) == [16, 16]
    assert split_bar_steps(20, 4, 16) == [12, 8]
    assert split_bar_steps(24, 4, 16) == [12, 12]
    assert all(u <= 16 for u in split_bar_steps(18, 4, 16))
    song = song_of([Note(0, 2 * 8 * Q, 60)], [(0, 4, 2)])
    grid = bar_grid(song, BarSpec())
    assert grid.length.tolist() == [16, 16, 16, 16]
    assert bar_units(8 * Q, TPB, BarSpec()) == [(0, 16), (4 * Q, 16)]


def test_round_trip_4_4_with_ties_across_bar_lines():
    notes = [Note(0, Q, 60), Note(Q, 2 * Q, 60), Note(2 * Q, 6 * Q, 64),  # crosses the bar line
             Note(3 * Q, 3 * Q + S16, 67), Note(6 * Q, 8 * Q, 72)]
    song = song_of(notes)
    spec = BarSpec(low_pitch=48, n_pitches=36)
    bars, grid = encode_song(song, spec)
    assert bars.shape == (2, 1, 2, 16, 36)
    # the held E continues into bar 2 without an onset
    assert bars[1, 0, ACTIVE, 0, 64 - 48] and not bars[1, 0, ONSET, 0, 64 - 48]
    assert decode_notes(bars[:, 0], grid, spec) == sorted(notes)


def test_round_trip_3_4_with_pickup_is_right_aligned():
    # one-beat pickup written as its own 1/4 meter, then 3/4
    notes = [Note(0, Q, 67), Note(Q, 2 * Q, 72), Note(2 * Q, 4 * Q, 71), Note(4 * Q, 7 * Q, 72)]
    song = song_of(notes, [(0, 1, 4), (Q, 3, 4)])
    spec = BarSpec()
    bars, grid = encode_song(song, spec)
    assert grid.length.tolist() == [12, 12, 12]
    assert grid.offset.tolist() == [8, 0, 0]
    assert grid.start.tolist() == [0, Q, 4 * Q]
    # the pickup note sits on the last beat of the padded bar
    assert bars[0, 0, ONSET, 8, 67 - spec.low_pitch]
    assert not bars[0, 0, :, :8].any()
    assert decode_notes(bars[:, 0], grid, spec) == notes


def test_pitches_outside_the_window_fold_by_octaves():
    spec = BarSpec(low_pitch=48, n_pitches=24)
    song = song_of([Note(0, Q, 30), Note(Q, 2 * Q, 100)])
    bars, grid = encode_song(song, spec)
    pitches = sorted(n.pitch for n in decode_notes(bars[:, 0], grid, spec))
    assert pitches == [54, 64]  # 30 + 24, 100 - 36: same pitch classes
    assert all(p % 12 == q % 12 for p, q in zip(pitches, [30, 100]))


def test_stream_bar_round_trip_cuts_overrun():
    spec = BarSpec()
    notes = [Note(0, Q, 60), Note(2 * Q, 5 * Q, 62)]  # overruns a 3/4 bar
    planes = encode_bar(notes, 3 * Q, TPB, spec)
    assert planes.shape == (2, 16, spec.n_pitches)
    assert not planes[:, 12:].any()
    back = decode_bar(planes, 12, TPB, spec)
    assert back == [Note(0, Q, 60), Note(2 * Q, 3 * Q, 62)]
    assert decode_bar(planes, 12, TPB, spec, transpose=-5) == [Note(0, Q, 55),
                                                                Note(2 * Q, 3 * Q, 57)]


def test_decode_bar_transpose_folds_into_midi_range():
    spec = BarSpec(low_pitch=100, n_pitches=24)
    planes = encode_bar([Note(0, Q, 101), Note(Q, 2 * Q, 122)], 4 * Q, TPB, spec)
    got = decode_bar(planes, 16, TPB, spec, transpose=6)
    assert got == [Note(0, Q, 107), Note(Q, 2 * Q, 116)]  # 128 folds down an octave


def test_mask_and_encode_notes_agree():
    spec = BarSpec()
    song = song_of([Note(0, Q, 60)], [(0, 1, 4), (Q, 4, 4)])
    grid = bar_grid(song, spec, end=9 * Q)
    m = grid.masks(spec.max_bar_steps)
    assert m[0].tolist() == [0] * 12 + [1] * 4
    assert m[1].sum() == 16
    enc = encode_notes(song.tracks[0].notes, grid, spec)
    assert not (enc.any(axis=(1, 3)) & (m == 0)).any()
    assert np.array_equal(enc[0, ONSET, 12, 60 - spec.low_pitch], True)
