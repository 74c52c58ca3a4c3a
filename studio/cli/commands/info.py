"""`popmusicnet info FILE.mid`: what is in a MIDI file, as the program reads it.

Tracks (name, GM program, role, notes, pitch range), meter(s) and tempo(s) with the bar where
they change, the estimated key (Krumhansl-Schmuckler profile method) and the length in bars and
seconds. `--json` prints the same as one JSON object.
"""

from __future__ import annotations

import argparse

NAME = "info"
HELP = "show the tracks, meter, tempo, key and length of a MIDI file"


def register(p: argparse.ArgumentParser) -> None:
    from studio.cli.reading import add_reading_options

    p.add_argument("file", help="MIDI file (.mid)")
    add_reading_options(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")


def describe(song, path) -> dict:
    """The facts `info` prints, as plain data (also used by tests and the studio)."""
    import pretty_midi

    from engine.music import estimate_key, pitch_name

    end = song.end
    bars = song.bars(end) if end > 0 else []
    starts = [b[0] for b in bars] or [0]

    def bar_of(tick: int) -> int:
        import bisect

        return max(bisect.bisect_right(starts, tick), 1)

    key = estimate_key(song)
    tracks = []
    for i, t in enumerate(song.tracks):
        rng = t.pitch_range()
        tracks.append({
            "index": i + 1, "name": t.name,
            "program": None if t.is_drum else t.program,
            "instrument": "drums" if t.is_drum else pretty_midi.program_to_instrument_name(
                t.program),
            "role": t.role, "notes": len(t.notes),
            "range": None if rng is None else [pitch_name(rng[0]), pitch_name(rng[1])],
            "volume": t.volume,
        })
    return {
        "file": str(path), "title": song.title, "ticks_per_beat": song.ticks_per_beat,
        "tracks": tracks,
        "meters": [{"meter": str(m), "tick": m.tick, "bar": bar_of(m.tick)} for m in song.meters],
        "tempos": [{"bpm": round(t.bpm, 3), "tick": t.tick, "bar": bar_of(t.tick)}
                   for t in song.tempos],
        "key": None if key is None else {"key": str(key), "confidence": round(key.confidence, 3),
                                         "method": "Krumhansl-Schmuckler (Krumhansl-Kessler "
                                                   "profiles, duration-weighted)"},
        "bars": len(bars), "seconds": round(song.duration_seconds, 3),
        "pickup_beats": song.pickup_ticks / song.ticks_per_beat if bars else 0.0,
        "notes": song.n_notes,
    }


def format_text(d: dict) -> str:
    lines = [f"{d['file']}" + (f": \"{d['title']}\"" if d["title"] else "")]
    lines.append(f"  length: {d['bars']} bars, {d['seconds']:.2f} s, {d['notes']} notes"
                 + (f", pickup of {d['pickup_beats']:g} beat(s)" if d["pickup_beats"] else "")
                 + f" ({d['ticks_per_beat']} ticks per beat)")
    lines.append("  meter: " + ", ".join(
        m["meter"] + ("" if m["tick"] == 0 else f" from bar {m['bar']}") for m in d["meters"]))
    lines.append("  tempo: " + ", ".join(
        f"{t['bpm']:g} BPM" + ("" if t["tick"] == 0 else f" from bar {t['bar']}")
        for t in d["tempos"]))
    k = d["key"]
    lines.append("  key: " + ("none (no pitched notes)" if k is None else
                              f"{k['key']} (r={k['confidence']:.2f}; {k['method']})"))
    lines.append(f"  tracks: {len(d['tracks'])}")
    if d["tracks"]:
        w = max(4, *(len(t["name"]) for t in d["tracks"]))
        lines.append(f"    {'#':>2}  {'name':<{w}}  {'program':<32}  {'role':<13}  "
                     f"{'notes':>5}  range")
        for t in d["tracks"]:
            prog = "drums" if t["program"] is None else f"{t['program']:3d} {t['instrument']}"
            rng = "-" if t["range"] is None else f"{t['range'][0]}-{t['range'][1]}"
            lines.append(f"    {t['index']:>2}  {t['name']:<{w}}  {prog:<32}  {t['role']:<13}  "
                         f"{t['notes']:>5}  {rng}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    import json

    from engine.midi_io import read_midi
    from studio.cli.reading import about, lenient

    song = read_midi(args.file, lenient=lenient(args))
    with about(args.file):
        d = describe(song, args.file)
    print(json.dumps(d, indent=1) if args.json else format_text(d))
    return 0
