"""The band arranger's patterns: a table, read by engine.models.band_arranger (no code paths per
style).

Times are in quarter notes from the bar start ("at"), lengths in quarter notes ("len"); a bar
of 6/8 is three quarters long, its two beats at 0 and 1.5. Velocities are before the arranger's
breathing (accents by position, a swell over four-bar phrases).

- DRUMS[name]: (at, GM drum note, velocity) on channel 10. 36 kick, 37 side stick, 38 snare,
  42 closed hi-hat, 44 pedal hi-hat, 46 open hi-hat, 49 crash, 51 ride.
- BASS[name]: (at, len, degree, velocity); degree "root", "fifth", "third", "octave" of the chord
  sounding at `at`, or "approach": a step into the next chord's root (used only where the chord
  changes next, else the root).
- COMP[name]: (at, len, velocity): the whole voiced chord (piano or guitar).
- STYLES[style]: GM programs of the comping instrument and the bass, the pattern names per meter
  ("N/D"; a meter missing falls back to "generic": one hit per quarter), a velocity scale and a
  strum (ticks between the strings of a guitar chord, 0 for a piano).
- PICKUP: the drums under a pickup bar (each quarter of it; the band comes in on the first full
  bar). ENDING: the last bar, held to the melody's end.
"""

from __future__ import annotations

DRUMS: dict[str, list[tuple[float, int, int]]] = {
    # 4/4
    "rock44": [(0, 36, 100), (0, 42, 80), (0.5, 42, 60), (1, 38, 95), (1, 42, 75), (1.5, 42, 60),
               (2, 36, 90), (2.5, 36, 70), (2, 42, 78), (2.5, 42, 60), (3, 38, 95),
               (3, 42, 75), (3.5, 42, 62)],
    "folk44": [(0, 36, 90), (0, 42, 70), (1, 37, 70), (1, 42, 60), (2, 36, 80), (2, 42, 66),
               (3, 37, 72), (3, 42, 60), (3.5, 44, 45)],
    "ballad44": [(0, 36, 80), (0, 51, 60), (1, 51, 50), (2, 37, 65), (2, 51, 55), (3, 51, 50),
                 (3.5, 51, 40)],
    # 3/4
    "waltz34": [(0, 36, 95), (0, 51, 65), (1, 42, 60), (1, 38, 55), (2, 42, 60), (2, 38, 55)],
    "folk34": [(0, 36, 88), (0, 42, 66), (1, 37, 62), (1, 42, 55), (2, 37, 62), (2, 42, 55)],
    "ballad34": [(0, 36, 78), (0, 51, 58), (1, 51, 45), (2, 51, 48)],
    # 6/8 (two dotted-quarter beats of three eighths)
    "jig68": [(0, 36, 95), (0, 42, 72), (0.5, 42, 50), (1, 42, 58), (1.5, 38, 85),
              (1.5, 42, 68), (2, 42, 50), (2.5, 42, 56)],
    "ballad68": [(0, 36, 80), (0, 51, 60), (1, 51, 45), (1.5, 37, 62), (1.5, 51, 52),
                 (2.5, 51, 44)],
    # 2/4
    "march24": [(0, 36, 95), (0, 42, 70), (0.5, 42, 55), (1, 38, 88), (1, 42, 66),
                (1.5, 42, 55)],
    "folk24": [(0, 36, 88), (0, 42, 66), (1, 37, 68), (1, 42, 58)],
    # any other meter: one hit per quarter (the arranger repeats "generic" over the bar)
    "generic": [(0, 36, 90), (0, 42, 66)],
}

BASS: dict[str, list[tuple[float, float, str, int]]] = {
    "rock44": [(0, 1.5, "root", 95), (1.5, 0.5, "root", 70), (2, 1, "fifth", 85),
               (3, 1, "approach", 80)],
    "folk44": [(0, 2, "root", 92), (2, 1.5, "fifth", 82), (3.5, 0.5, "approach", 72)],
    "ballad44": [(0, 3, "root", 85), (3, 1, "approach", 70)],
    "waltz34": [(0, 1, "root", 95)],
    "folk34": [(0, 2, "root", 90), (2, 1, "fifth", 75)],
    "ballad34": [(0, 2.5, "root", 82), (2.5, 0.5, "approach", 64)],
    "jig68": [(0, 1, "root", 95), (1.5, 1, "fifth", 82), (2.5, 0.5, "approach", 70)],
    "ballad68": [(0, 2.5, "root", 84), (2.5, 0.5, "approach", 66)],
    "march24": [(0, 0.75, "root", 95), (1, 0.75, "fifth", 82)],
    "folk24": [(0, 1, "root", 90), (1, 0.75, "fifth", 78), (1.75, 0.25, "approach", 66)],
    "generic": [(0, 1, "root", 88)],
}

COMP: dict[str, list[tuple[float, float, int]]] = {
    "rock44": [(0, 1.5, 82), (1.5, 1, 70), (2.5, 1.5, 76)],
    "folk44": [(0, 1, 80), (1, 0.5, 62), (1.5, 0.5, 58), (2, 1, 74), (3, 0.5, 62),
               (3.5, 0.5, 58)],
    "ballad44": [(0, 4, 70)],
    "waltz34": [(1, 0.75, 70), (2, 0.75, 66)],
    "folk34": [(0, 1, 78), (1, 1, 62), (2, 1, 62)],
    "ballad34": [(0, 3, 68)],
    "jig68": [(0, 1, 80), (1, 0.5, 58), (1.5, 1, 72), (2.5, 0.5, 56)],
    "ballad68": [(0, 1.5, 70), (1.5, 1.5, 62)],
    "march24": [(0.5, 0.4, 70), (1.5, 0.4, 66)],
    "folk24": [(0, 1, 78), (1, 0.5, 62), (1.5, 0.5, 58)],
    "generic": [(0, 1, 72)],
}

STYLES: dict[str, dict] = {
    "pop": {"comp_program": 0, "bass_program": 33, "scale": 1.0, "strum": 0,
            "meters": {"4/4": "rock44", "3/4": "waltz34", "6/8": "jig68", "2/4": "march24",
                       "2/2": "rock44"}},
    "folk": {"comp_program": 25, "bass_program": 32, "scale": 0.92, "strum": 12,
             "meters": {"4/4": "folk44", "3/4": "folk34", "6/8": "jig68", "2/4": "folk24",
                        "2/2": "folk44"}},
    "waltz": {"comp_program": 0, "bass_program": 32, "scale": 0.9, "strum": 0,
              "meters": {"4/4": "folk44", "3/4": "waltz34", "6/8": "jig68", "2/4": "folk24",
                         "2/2": "folk44"}},
    "ballad": {"comp_program": 4, "bass_program": 32, "scale": 0.8, "strum": 0,
               "meters": {"4/4": "ballad44", "3/4": "ballad34", "6/8": "ballad68",
                          "2/4": "folk24", "2/2": "ballad44"}},
}
#: --style auto: by the song's meter (else "pop").
AUTO_STYLE = {"3/4": "waltz", "6/8": "folk", "9/8": "folk", "12/8": "folk"}

PICKUP = {"note": 42, "velocity": 50, "rise": 10}  # a hi-hat per quarter, each louder
ENDING = {"drums": [(36, 100), (49, 96)], "comp_velocity": 78, "bass_velocity": 90}
#: Chord tones (semitones above the root) per quality.
QUALITY_TONES = {"maj": (0, 4, 7), "min": (0, 3, 7), "dom7": (0, 4, 7, 10), "dim": (0, 3, 6)}
COMP_RANGE = (52, 74)  # E3..D5: the voiced chord's notes
BASS_RANGE = (33, 52)  # A1..E3
