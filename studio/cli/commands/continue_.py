"""`popmusicnet continue IN.mid --bars 4 -o OUT.mid`: continue a song with the next-frame LSTM.

The model reads the song's last bar (all pitched tracks merged, key-normalised) and writes the
next bars into a new track "continuation" after the song's end; the original tracks are kept.
By default the notes are decoded as the model card says (thresholds chosen on the validation
split); `--temperature T` samples them instead.
"""

from __future__ import annotations

import argparse

NAME = "continue"
HELP = "continue a MIDI file for a few bars with the LSTM continuation model"


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", help="MIDI file to continue")
    p.add_argument("--bars", type=int, default=4, help="bars to add (default 4)")
    p.add_argument("--temperature", type=float, default=None,
                   help="0..2: sample the notes at this temperature (0 = every note more likely "
                        "than not, at least the expected number a step); default: the decoding "
                        "chosen on the validation split, from the model card")
    p.add_argument("--meter", default=None,
                   help="time signature of the new bars, e.g. 3/4 (default: the song's)")
    p.add_argument("--seed", type=int, default=0, help="same seed, same music (default 0)")
    p.add_argument("--model", default=None, help="model name or card path (default: bundled)")
    p.add_argument("-o", "--output", required=True, help="output MIDI file")
    from studio.cli.reading import add_reading_options

    add_reading_options(p)


def run(args: argparse.Namespace) -> int:
    from engine.errors import UserInputError
    from engine.fileio import check_outputs, check_writable
    from engine.midi_io import read_midi, write_midi
    from engine.models.continuation import Continuer
    from studio.cli.reading import about, lenient

    if not 1 <= args.bars <= 64:
        raise UserInputError(f"--bars must be in range 1..64, got {args.bars}")
    if args.temperature is not None and not 0.0 <= args.temperature <= 2.0:
        raise UserInputError(f"--temperature must be in range 0..2, got {args.temperature:g}")
    check_writable(args.output)
    check_outputs([args.output], [args.input])
    song = read_midi(args.input, lenient=lenient(args))
    model = Continuer.load(args.model)
    from engine.realtime.clock import parse_meter
    from studio.cli.options import parsed

    meter = parsed("--meter", parse_meter, args.meter)
    with about(args.input):
        out = model.continue_song(song, args.bars, seed=args.seed, temperature=args.temperature,
                                  meter=meter)
        write_midi(out, args.output)
    how = (model.decoding_text() if args.temperature is None
           else f"sampled at temperature {args.temperature:g}")
    print(f"wrote {args.output}: {args.bars} bars, {len(out.tracks[-1].notes)} new notes "
          f"(model {model.name}; {how})")
    return 0
