"""`popmusicnet render FILE.mid -o OUT.wav`: render a MIDI file to WAV with FluidSynth.

    popmusicnet render song.mid -o song.wav --rate 44100 --bit-depth 24
    popmusicnet render song.mid --stems stems/          # one WAV per track
Outputs are checked before rendering and written atomically. Progress goes to stderr on a
terminal (or always with --progress).
"""

from __future__ import annotations

import argparse

NAME = "render"
HELP = "render a MIDI file to WAV (and/or per-track stems) with a SoundFont"


def register(p: argparse.ArgumentParser) -> None:
    from studio.cli.reading import add_reading_options

    from studio.cli.progress import add_progress_option

    p.add_argument("file", help="input MIDI file")
    p.add_argument("-o", "--output", help="output WAV file")
    p.add_argument("--stems", metavar="DIR", help="also write one WAV per track into DIR")
    p.add_argument("--soundfont", metavar="SF2",
                   help="SoundFont file (default: $POPMUSICNET_SOUNDFONT, config, system)")
    p.add_argument("--rate", type=int, default=48000, choices=(22050, 44100, 48000, 96000),
                   help="sample rate in Hz (default 48000)")
    p.add_argument("--bit-depth", default="16", choices=("16", "24", "float"),
                   help="WAV sample format (default 16)")
    p.add_argument("--timing-groups", type=int, default=2, metavar="N",
                   help="note-on precision: 1 = FluidSynth's 64-frame blocks (fastest), "
                        "2 = within 32 frames (default), 64 = sample-exact")
    p.add_argument("--peak", type=float, metavar="DBFS",
                   help="scale the whole file so that its peak is at DBFS (e.g. -1); default: "
                        "leave the level alone, scale down only if it would clip")
    add_reading_options(p)
    add_progress_option(p)


def run(args: argparse.Namespace) -> int:
    from engine.errors import UserInputError
    from engine.fileio import check_outputs, check_writable
    from engine.midi_io import read_midi, require_notes
    from engine.synth.soundfont import find_soundfont
    from export.audio import check_subtype
    from studio.cli.reading import about, lenient

    if not args.output and not args.stems:
        raise UserInputError("nothing to write: give -o OUT.wav and/or --stems DIR")
    if not 1 <= args.timing_groups <= 64:
        raise UserInputError(f"--timing-groups must be 1..64, got {args.timing_groups}")
    subtype = check_subtype(args.bit_depth)
    if args.output:
        check_writable(args.output)
    check_outputs([args.output, args.stems], [args.file])
    song = require_notes(read_midi(args.file, lenient=lenient(args)), args.file)
    soundfont = find_soundfont(args.soundfont)
    if args.peak is not None and not -60.0 <= args.peak <= 0.0:
        raise UserInputError(f"--peak must be between -60 and 0 dBFS, got {args.peak:g}")
    opts = dict(sample_rate=args.rate, subtype=subtype, soundfont=soundfont,
                timing_groups=args.timing_groups)
    if args.stems:
        from export.stems import prepare_folder

        prepare_folder(args.stems)
    with about(args.file):
        return _write(args, song, opts, subtype)


def _write(args, song, opts, subtype) -> int:
    """The mix and the stems, all or nothing: the mix is moved into place only after every
    stem has been written."""
    import contextlib
    from pathlib import Path

    from engine.fileio import atomic_path
    from studio.cli.progress import Progress

    done = []
    with contextlib.ExitStack() as stack:
        if args.output:
            from export.audio import write_wav

            tmp = stack.enter_context(atomic_path(args.output, suffix=".wav"))
            res = write_wav(song, tmp, progress=Progress("rendering", args.progress),
                            peak_dbfs=args.peak, name=args.output, **opts)
            done.append(f"wrote {args.output} ({len(res.audio) / res.sample_rate:.2f} s, "
                        f"{res.sample_rate} Hz, {subtype}; {res.describe()}; "
                        f"{song.duration_seconds / max(res.seconds, 1e-9):.0f}x realtime; "
                        f"soundfont {res.soundfont.name})")
            del res
        if args.stems:
            from export.stems import write_stems

            paths = write_stems(song, args.stems, progress=Progress("stems", args.progress),
                                **opts)
            done.append(f"wrote {len(paths)} stem(s) to {Path(args.stems)}/: "
                        + ", ".join(p.name for p in paths))
    print("\n".join(done))
    return 0
