"""How often engine.music.melody_key finds the tonic, on data the evaluations do not score.

    python scripts/key_finder_check.py [--tunes 300]

Two sets: the folk tunes kept for choosing (engine.training.data.folk.folk_dev_tunes: a notated
key, drawn with another seed than the evaluation's, which are left out); and the
train and valid chorale sopranos, against the key of their whole four-part score
(engine.evaluation.metrics.analyse_key). Prints the tonic (and tonic + mode) hit rate of the
finder as it is, of the profiles alone, and of the finder with other FINAL_TONIC_BONUS values:
the figures behind the constant's comment in engine/music.py. Needs the training extras
(music21). Takes about a minute (parses the tunes).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

BONUSES = (0.0, 0.1, 0.2, 0.3)


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

    folk = [(t.melody, t.key) for t in folk_dev_tunes(args.tunes, args.seed)]
    songs, _ = load_source("corpus:bach")
    chorales = []
    for _, split, song in songs:
        if split in ("train", "valid"):
            melody, _ = melody_and_roles(song)
            whole = metrics.analyse_key([n for t in song.tracks for n in t.notes])
            if melody.notes and whole is not None:
                chorales.append((melody.notes, whole))

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
    return 0


if __name__ == "__main__":
    sys.exit(main())
