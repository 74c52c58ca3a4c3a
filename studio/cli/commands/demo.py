"""`popmusicnet demo [-o out/]`: the headless main job (`make run` without a display).

Accompanies the bundled demo melody (assets/demo/melody.mid, made by scripts/make_demo.py) with
the bundled accompanist, writes the result to OUT/demo.mid and renders it to OUT/demo.wav
(normalised to a -1 dBFS peak), and prints where they are. `--no-accompany` renders the melody
alone.
"""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "demo"
HELP = "accompany the bundled demo melody and write out/demo.mid and out/demo.wav"

DEMO_MIDI = Path(__file__).resolve().parents[3] / "assets" / "demo" / "melody.mid"


def register(p: argparse.ArgumentParser) -> None:
    from studio.cli.progress import add_progress_option

    p.add_argument("-o", "--output-dir", default="out", help="output folder (default out/)")
    p.add_argument("--input", default=str(DEMO_MIDI), help="the song (default: bundled demo)")
    p.add_argument("--model", help="accompanist model name or card path (default: bundled)")
    p.add_argument("--no-accompany", action="store_true", help="render the melody alone")
    p.add_argument("--seed", type=int, default=0, help="random seed of the accompaniment")
    p.add_argument("--soundfont", metavar="SF2", help="SoundFont file")
    p.add_argument("--rate", type=int, default=48000, choices=(44100, 48000),
                   help="sample rate in Hz (default 48000)")
    add_progress_option(p)


def run(args: argparse.Namespace) -> int:
    from engine.errors import OutputError
    from engine.midi_io import read_midi, require_notes
    from export.audio import write_wav
    from export.midi import export_midi
    from studio.cli.progress import Progress

    out = Path(args.output_dir)
    if out.exists() and not out.is_dir():
        raise OutputError(out, "exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(out, f"cannot create folder ({exc.strerror or exc})") from None
    song = require_notes(read_midi(args.input), args.input)
    model_note = ""
    if not args.no_accompany:
        from engine.models.accompanist import Accompanist

        model = Accompanist.load(args.model)
        melody_tracks = len(song.tracks)
        song = model.accompany(song, seed=args.seed)
        added = song.tracks[melody_tracks:]
        model_note = (f", accompanied by {model.name} on {model.provider}: "
                      + ", ".join(f"{t.name} {len(t.notes)} notes" for t in added))
    wav, mid = out / "demo.wav", out / "demo.mid"
    res = write_wav(song, wav, sample_rate=args.rate, soundfont=args.soundfont,
                    progress=Progress("rendering", args.progress), peak_dbfs=-1.0)
    export_midi(song, mid)
    title = f" \"{song.title}\"" if song.title else ""
    print(f"demo{title}: {song.n_notes} notes, {song.duration_seconds:.1f} s{model_note}")
    print(f"wrote {wav.resolve()} ({res.describe()}; soundfont {res.soundfont.name})")
    print(f"wrote {mid.resolve()}")
    return 0
