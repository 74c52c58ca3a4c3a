"""`popmusicnet morph A.mid B.mid --alpha 0.3 -o OUT.mid`: morph one clip's melody into another's
(or one style into another) with the melody LSTM-VAE: encode, spherical interpolation, decode.
`--alpha 0` gives A's melody back (B's at 1).

    popmusicnet morph A.mid B.mid --alpha 0.3 -o out.mid     # one window (2 bars) at alpha 0.3
    popmusicnet morph A.mid B.mid --steps 8 -o bridge.mid    # 8 windows from A to B, one after another
    popmusicnet morph --style-a bach --style-b folk --steps 8 -o out.mid   # between style centroids
"""

from __future__ import annotations

import argparse

NAME = "morph"
HELP = "morph one MIDI clip (or style) into another with the LSTM-VAE"


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("a", nargs="?", help="clip A (MIDI file); or use --style-a")
    p.add_argument("b", nargs="?", help="clip B (MIDI file); or use --style-b")
    p.add_argument("--style-a", help="start from a style centroid instead of clip A")
    p.add_argument("--style-b", help="end at a style centroid instead of clip B")
    p.add_argument("--alpha", type=float, default=0.5, help="0 = A, 1 = B (default 0.5)")
    p.add_argument("--steps", type=int, default=1,
                   help="write a transition: this many windows from A (alpha 0) to B (alpha 1)")
    p.add_argument("--window-a", type=int, default=0,
                   help="which window of A to encode (0 = its first bars with notes)")
    p.add_argument("--window-b", type=int, default=0, help="which window of B to encode")
    p.add_argument("--temperature", type=float, default=0.0,
                   help="sampling temperature 0..2 (0 = the most likely melody, the default; "
                        "1 = sampled)")
    p.add_argument("--seed", type=int, default=0, help="same seed, same music (default 0)")
    p.add_argument("--model", default=None, help="model name or card path (default: bundled)")
    p.add_argument("--list-styles", action="store_true", help="print the model's styles and exit")
    p.add_argument("-o", "--output", help="output MIDI file")
    from studio.cli.reading import add_reading_options

    add_reading_options(p)


def run(args: argparse.Namespace) -> int:
    from engine.errors import UserInputError
    from engine.fileio import check_outputs, check_writable
    from engine.models.morph import Morpher

    morpher = Morpher.load(args.model)
    if args.list_styles:
        print("\n".join(morpher.styles))
        return 0
    if not args.output:
        raise UserInputError("-o/--output is required")
    if not 0.0 <= args.alpha <= 1.0:
        raise UserInputError(f"--alpha must be in range 0..1, got {args.alpha:g}")
    if not 1 <= args.steps <= 64:
        raise UserInputError(f"--steps must be in range 1..64, got {args.steps}")
    if not 0.0 <= args.temperature <= 2.0:
        raise UserInputError(f"--temperature must be in range 0..2, got {args.temperature:g}")
    check_writable(args.output)
    check_outputs([args.output], [args.a, args.b])
    a = _source(morpher, args.a, args.style_a, args.window_a, "A", args)
    b = _source(morpher, args.b, args.style_b, args.window_b, "B", args)
    song = morpher.morph(a, b, args.alpha, seed=args.seed, steps=args.steps,
                         temperature=args.temperature)
    from engine.midi_io import write_midi

    write_midi(song, args.output)
    bars = morpher.n_bars * args.steps
    print(f"wrote {args.output}: {bars} bars, {song.n_notes} notes "
          f"({'transition' if args.steps > 1 else f'alpha {args.alpha:g}'}, model {morpher.name})")
    return 0


def _source(morpher, path, style, window, which, args):
    from engine.errors import UserInputError

    if path and style:
        raise UserInputError(f"give clip {which} or --style-{which.lower()}, not both")
    if style:
        return style
    if not path:
        raise UserInputError(f"clip {which} is missing (a MIDI file, or --style-{which.lower()})")
    from engine.midi_io import read_midi, require_notes
    from studio.cli.reading import lenient

    return require_notes(read_midi(path, lenient=lenient(args)), path), window
