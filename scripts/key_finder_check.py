"""How often engine.music.melody_key finds the tonic, on data the evaluations do not score.

    python scripts/key_finder_check.py [--tunes 300]

Two sets: the folk tunes kept for choosing (engine.training.data.folk.folk_dev_tunes: a notated
key, drawn with another seed than the evaluation's, which are left out); and the
train and valid chorale sopranos, against the key of their whole four-part score
(engine.evaluation.metrics.analyse_key). Prints the tonic (and tonic + mode) hit rate of the
finder as it is, of the profiles alone, and of the finder with other FINAL_TONIC_BONUS values;
then the finder as a live session uses it (the melody heard bar by bar, the key re-estimated at
every bar over the first LOCKS bars, then kept; none before four pitch classes were heard): the
share of bars played in the right tonic, with other FIRST_TONIC_BONUS values and with the
Krumhansl-Kessler profiles. The figures behind those constants' comments in engine/music.py and
engine.models.accompanist_session.KEY_BARS. Needs the training extras (music21). Takes a few
minutes (parses the tunes).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

BONUSES = (0.0, 0.1, 0.2, 0.3)
FIRST_BONUSES = (0.0, 0.05, 0.1, 0.15, 0.2)
LOCKS = (8, 12, None)  # None: never locked


def main() -> int:
    import numpy as np

    from engine import music
    from engine.evaluation import metrics
    from engine.training.accompanist.data import melody_and_roles
    from engine.training.accompanist.sources import load_source
    from engine.training.data.folk import folk_dev_tunes

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tunes", type=int, default=300, help="folk tunes drawn (default 300)")
    ap.add_argument("--seed", type=int, default=7, help="their selection seed (default 7)")
    args = ap.parse_args()

    dev = folk_dev_tunes(args.tunes, args.seed)
    folk = [(t.melody, t.key) for t in dev]
    songs, _ = load_source("corpus:bach")
    chorales, live_chorales = [], []
    for _, split, song in songs:
        if split in ("train", "valid"):
            melody, _ = melody_and_roles(song)
            whole = metrics.analyse_key([n for t in song.tracks for n in t.notes])
            if melody.notes and whole is not None:
                chorales.append((melody.notes, whole))
                live_chorales.append((_bar_notes(song, melody.notes), whole))
    live_folk = [(_bar_notes(t.song, t.melody), t.key) for t in dev]

    def rates(rows, find):
        keys = [(find(notes), key) for notes, key in rows]
        tonic = np.mean([k is not None and k.tonic == ref.tonic for k, ref in keys])
        both = np.mean([k is not None and (k.tonic, k.mode) == (ref.tonic, ref.mode)
                        for k, ref in keys])
        return f"tonic {100 * tonic:5.1f}%  tonic + mode {100 * both:5.1f}%"

    finders = {"melody_key (as shipped)": music.melody_key,
               "profiles alone": lambda n: music.melody_key(n, final=False)}
    saved = music.FINAL_TONIC_BONUS
    print(f"{len(folk)} folk tunes, {len(chorales)} chorale sopranos")
    for name, find in finders.items():
        print(f"{name:28s} folk {rates(folk, find)}   chorales {rates(chorales, find)}")
    try:
        for bonus in BONUSES:
            music.FINAL_TONIC_BONUS = bonus
            label = f"last-note bonus {bonus:g}"
            print(f"{label:28s} folk {rates(folk, music.melody_key)}"
                  f"   chorales {rates(chorales, music.melody_key)}")
    finally:
        music.FINAL_TONIC_BONUS = saved

    def live(rows, first: float | None, lock: int | None) -> float:
        """Mean share of a melody's bars played in the right tonic."""
        shares = []
        for bars, ref in rows:
            hist, key, right, first_pitch, pcs = np.zeros(12), None, 0, None, set()
            for i, notes in enumerate(bars):
                right += key is not None and key.tonic == ref.tonic
                if lock is not None and i >= lock:
                    continue
                if first_pitch is None and notes:
                    first_pitch = min(notes, key=lambda n: (n.start, -n.pitch)).pitch
                hist += music.pitch_class_histogram(notes)
                pcs |= {n.pitch % 12 for n in notes}
                if len(pcs) >= 4:
                    key = (music.key_of_histogram(hist, "kk") if first is None else
                           music.heard_key(hist, first_pitch=first_pitch if first else None))
            shares.append(right / max(len(bars), 1))
        return 100 * float(np.mean(shares))

    saved = music.FIRST_TONIC_BONUS
    print("live: bars played in the right tonic (chorales / folk tunes)")
    try:
        for lock in LOCKS:
            locked = f"locked after {lock} bars" if lock else "never locked"
            for first in (None, *FIRST_BONUSES):
                if first is not None:
                    music.FIRST_TONIC_BONUS = first
                label = ("Krumhansl-Kessler profiles" if first is None else
                         f"first-note bonus {first:g}")
                print(f"  {locked:22s} {label:28s} {live(live_chorales, first, lock):5.1f}% / "
                      f"{live(live_folk, first, lock):5.1f}%", flush=True)
    finally:
        music.FIRST_TONIC_BONUS = saved
    return 0


def _bar_notes(song, notes):
    """The melody's notes per bar (each note in the bar it starts in), as a live session
    observes them."""
    notes = sorted(notes)
    end = max(n.end for n in notes)
    return [[n for n in notes if s <= n.start < e] for s, e, _ in song.bars(end)]


if __name__ == "__main__":
    sys.exit(main())
