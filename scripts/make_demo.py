"""Write the bundled demo melodies (our own transcriptions of public-domain tunes) to assets/demo/.

    .venv/bin/python scripts/make_demo.py

- melody.mid: "Ode to Joy" (Beethoven, Symphony No. 9, 1824; public domain), 16 bars of 4/4 in
  D major at 100 BPM, one flute track marked as the melody. The headless demo renders it.
- waltz.mid: "Greensleeves" (English folk tune, 16th century; public domain), 3/4 in A minor at
  96 BPM with a one-beat pickup written as a 1/4 first bar: a small test piece for meters and
  pickups.
Both are written through engine.midi_io.write_midi, so they also exercise our writer.
"""

from __future__ import annotations

import sys
from pathlib import Path

from engine.midi_io import write_midi
from engine.music import ROLE_MELODY, MeterChange, Note, Song, TempoChange, Track

ROOT = Path(__file__).resolve().parents[1]

TPB = 480
NAMES = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}


def pitch(name: str) -> int:
    """'F#4' -> 66."""
    step, rest = name[0], name[1:]
    acc = 0
    while rest and rest[0] in "#b":
        acc += 1 if rest[0] == "#" else -1
        rest = rest[1:]
    return 12 * (int(rest) + 1) + NAMES[step] + acc


def notes_from(tune: str, start: int = 0, velocity: int = 88) -> list[Note]:
    """Notes from 'PITCH:BEATS' tokens ('|' bar lines are ignored, 'r' is a rest)."""
    out, tick = [], start
    for tok in tune.split():
        if tok == "|":
            continue
        name, beats = tok.split(":")
        ticks = round(float(beats) * TPB)
        if name != "r":
            # a little articulation: 90 % of the written length, accents on long notes
            out.append(Note(tick, tick + ticks * 9 // 10, pitch(name),
                            min(velocity + (6 if ticks >= TPB * 2 else 0), 127)))
        tick += ticks
    return out


ODE_TO_JOY = """
F#4:1 F#4:1 G4:1 A4:1 | A4:1 G4:1 F#4:1 E4:1 | D4:1 D4:1 E4:1 F#4:1 | F#4:1.5 E4:0.5 E4:2 |
F#4:1 F#4:1 G4:1 A4:1 | A4:1 G4:1 F#4:1 E4:1 | D4:1 D4:1 E4:1 F#4:1 | E4:1.5 D4:0.5 D4:2 |
E4:1 E4:1 F#4:1 D4:1 | E4:1 F#4:0.5 G4:0.5 F#4:1 D4:1 | E4:1 F#4:0.5 G4:0.5 F#4:1 E4:1 |
D4:1 E4:1 A3:2 |
F#4:1 F#4:1 G4:1 A4:1 | A4:1 G4:1 F#4:1 E4:1 | D4:1 D4:1 E4:1 F#4:1 | E4:1.5 D4:0.5 D4:2 |
"""

GREENSLEEVES = """
A4:1 |
C5:2 D5:1 | E5:1.5 F5:0.5 E5:1 | D5:2 B4:1 | G4:1.5 A4:0.5 B4:1 |
C5:2 A4:1 | A4:1.5 G#4:0.5 A4:1 | B4:2 G#4:1 | E4:2 A4:1 |
C5:2 D5:1 | E5:1.5 F5:0.5 E5:1 | D5:2 B4:1 | G4:1.5 A4:0.5 B4:1 |
C5:1.5 B4:0.5 A4:1 | G#4:1.5 F#4:0.5 G#4:1 | A4:3 |
"""


def ode_to_joy() -> Song:
    melody = Track("Melody", program=73, role=ROLE_MELODY, notes=notes_from(ODE_TO_JOY))
    return Song(tracks=[melody], ticks_per_beat=TPB, tempos=[TempoChange(0, 100.0)],
                meters=[MeterChange(0, 4, 4)], title="Ode to Joy (Beethoven)")


def greensleeves() -> Song:
    melody = Track("Melody", program=0, role=ROLE_MELODY, notes=notes_from(GREENSLEEVES))
    return Song(tracks=[melody], ticks_per_beat=TPB, tempos=[TempoChange(0, 96.0)],
                meters=[MeterChange(0, 1, 4), MeterChange(TPB, 3, 4)],
                title="Greensleeves (traditional)")


def main() -> int:
    out = ROOT / "assets" / "demo"
    out.mkdir(parents=True, exist_ok=True)
    for name, song in (("melody.mid", ode_to_joy()), ("waltz.mid", greensleeves())):
        path = write_midi(song, out / name)
        print(f"wrote {path.relative_to(ROOT)}: {song.title}, {len(song.bars())} bars, "
              f"{song.n_notes} notes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
