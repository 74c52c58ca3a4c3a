"""The voice-leading pass of the accompanist's line decision (engine.models.voice_leading):
its parallels are the evaluation's parallels, it removes them without touching the melody,
and the bundled model's accompaniment of the demo melodies comes out without any."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.evaluation import metrics
from engine.models import viterbi, voice_leading
from engine.music import Note

ROOT = Path(__file__).resolve().parents[1]


def _notes(line: np.ndarray, step: int) -> list[Note]:
    """A line of pitches per step (-1 rest) as notes of `step` ticks a step."""
    out: list[Note] = []
    for s, p in enumerate(line.tolist()):
        if p < 0:
            continue
        if out and out[-1].pitch == p and out[-1].end == s * step:
            out[-1] = Note(out[-1].start, (s + 1) * step, p, 80)
        else:
            out.append(Note(s * step, (s + 1) * step, p, 80))
    return out


def test_first_parallel_finds_what_the_evaluation_counts():
    rng = np.random.default_rng(0)
    found = 0
    for _ in range(400):
        # four voices moving by steps and leaps (contrary octaves and fifths too), resting now
        # and then: parallels happen often
        moves = rng.choice([-12, -7, -5, -2, -1, 0, 0, 1, 2, 5, 7, 12], (4, 12))
        lines = 60 + np.cumsum(moves, axis=1) - 7 * np.arange(4)[:, None]
        lines[rng.random(lines.shape) < 0.1] = -1
        got = voice_leading.first_parallel(lines, np.full(4, -1), np.arange(12))
        counted = metrics.parallels([_notes(v, 10) for v in lines], 10, 0, 120)
        any_counted = counted["parallel_fifths"] + counted["parallel_octaves"] > 0
        assert (got is not None) == any_counted
        if got is not None:
            found += 1
            k, i, j = got
            before, after = lines[[i, j], k - 1], lines[[i, j], k]
            assert (before[0] - before[1]) % 12 == (after[0] - after[1]) % 12 in (0, 7)
    assert 50 < found < 350  # both cases were tried


def test_the_compiled_search_matches_python():
    kernel = viterbi.compiled(voice_leading._first_parallel, voice_leading._EXAMPLE)
    assert kernel is not None  # numba is a runtime dependency
    rng = np.random.default_rng(1)
    for _ in range(300):
        lines = rng.integers(-1, 30, (4, 16)) + 40
        lines[lines < 40] = -1
        prev, readings = rng.integers(-1, 70, 4), np.arange(0, 16, 2)
        a, b = np.empty(3, np.int64), np.empty(3, np.int64)
        kernel(lines, prev, readings, a)
        voice_leading._first_parallel(lines, prev, readings, b)
        assert a[0] == b[0] and (a[0] < 0 or a.tolist() == b.tolist())


def test_repair_breaks_parallel_fifths_and_keeps_the_melody():
    from engine.models.line_decoding import decode_lines

    S, P, low = 8, 24, 48
    # the melody climbs C D E F (72..77, a step each two steps); one voice wants to follow it
    # a fifth below (F G A Bb), holding each; the other voice has a strong second choice
    melody = np.repeat([72, 74, 76, 77], 2)
    emit = np.full((2, S, P), -8.0)
    gain = np.full((2, S, P), -8.0)
    for s, m in enumerate(melody):
        emit[0, s, m - 7 - low] = 3.0  # a fifth under the melody, all along
        emit[0, s, m - 12 - low] = 2.0  # an octave under it: also parallel
        emit[0, s, m - 8 - low] = 1.0  # a sixth-ish under it: the way out
        if s % 2 == 0:
            gain[0, s, [m - 7 - low, m - 12 - low, m - 8 - low]] = 1.0
    emit[1, :, 0], gain[1, 0, 0] = 2.0, 1.0  # a bass held on C3: no parallels
    held = np.array([-1, -1])
    half = np.full(2, 0.5)
    planes = decode_lines(gain, emit, half, half, np.ones(S, bool), held)
    lines = voice_leading.highest_line(planes[:, 1], np.full(2, low))
    voices = np.concatenate([melody[None], lines])
    assert voice_leading.first_parallel(voices, np.full(3, -1), np.arange(0, S, 2))

    def redecide(v, emit_v):
        return decode_lines(gain[v:v + 1], emit_v[None], half[:1], half[:1], np.ones(S, bool),
                            held[v:v + 1])[0]

    fixes = voice_leading.repair(planes, emit, gain, np.full(2, low), redecide,
                                 np.arange(0, S, 2), 2, np.full(3, -1), melody)
    assert 1 <= fixes <= voice_leading.MAX_FIXES
    after = voice_leading.highest_line(planes[:, 1], np.full(2, low))
    assert voice_leading.first_parallel(np.concatenate([melody[None], after]), np.full(3, -1),
                                        np.arange(0, S, 2)) is None
    assert (after[1] == low).all()  # the bass had none: untouched
    assert (after[0] >= 0).all()  # the voice still sounds throughout


def test_the_bundled_accompanist_writes_no_parallels_under_the_demo_melodies():
    from engine.midi_io import read_midi
    from engine.models.accompanist import Accompanist

    model = Accompanist.load(None, providers="cpu")
    for path in sorted((ROOT / "assets" / "demo").glob("*.mid")):
        song = read_midi(path)
        mi = song.tracks.index(song.melody_track())
        out = model.accompany(song, melody_track=mi, seed=0)  # the defaults
        melody = out.tracks[mi].notes
        parts = [t.notes for i, t in enumerate(out.tracks) if i != mi]
        assert len(parts) == 3 and all(parts)
        got = metrics.parallels([melody, *parts], song.ticks_per_beat // 2, 0,
                                max(n.end for n in melody))
        # without the pass: 4.2 fifths and 4.2 octaves per 100 moves on melody.mid
        assert got["parallel_fifths"] + got["parallel_octaves"] < 1.0, (path.name, got)
