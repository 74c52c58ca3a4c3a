"""`popmusicnet generate --bars 8 -o OUT.mid`: new bars from the GAN bar generator.

    popmusicnet generate --bars 8 -o out.mid
    popmusicnet generate --bars 4 --variations 4 --temperature 1.5 --seed 7 -o idea.mid
        # writes idea-1.mid ... idea-4.mid (one file per variation, as Magenta Studio does)
    popmusicnet generate --style bach --bars 8 -o out.mid      # a style-conditioned model

Bars are drawn independently (the generator makes one bar at a time), in C major / A minor.
"""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "generate"
HELP = "generate new bars with the GAN bar generator"


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bars", type=int, default=8, help="bars per variation (default 8)")
    p.add_argument("--variations", type=int, default=1,
                   help="1..16; more than one writes OUT-1.mid, OUT-2.mid, ... (default 1)")
    p.add_argument("--temperature", type=float, default=1.0,
                   help="0..2: 0 = the generator's most typical bar, 2 = wild (default 1)")
    p.add_argument("--style", default=None, help="style of a style-conditioned model")
    p.add_argument("--seed", type=int, default=0, help="same seed, same music (default 0)")
    p.add_argument("--meter", default="4/4",
                   help="time signature of the bars: 4/4, 3/4, 6/8, 2/4... (default 4/4)")
    p.add_argument("--bpm", type=float, default=100.0, help="tempo of the file (default 100)")
    p.add_argument("--program", type=int, default=0, help="GM program (default 0, piano)")
    p.add_argument("--model", default=None, help="model name or card path (default: bundled)")
    p.add_argument("-o", "--output", required=True, help="output MIDI file")


def output_paths(output: str, variations: int) -> list[Path]:
    out = Path(output)
    if variations == 1:
        return [out]
    return [out.with_name(f"{out.stem}-{i + 1}{out.suffix}") for i in range(variations)]


def run(args: argparse.Namespace) -> int:
    from engine.errors import UserInputError
    from engine.fileio import check_writable
    from engine.models.gan import BarGenerator

    if not 1 <= args.bars <= 256:
        raise UserInputError(f"--bars must be in range 1..256, got {args.bars}")
    if not 1 <= args.variations <= 16:
        raise UserInputError(f"--variations must be in range 1..16, got {args.variations}")
    if not 0.0 <= args.temperature <= 2.0:
        raise UserInputError(f"--temperature must be in range 0..2, got {args.temperature:g}")
    if not 0 <= args.program <= 127:
        raise UserInputError(f"--program must be in range 0..127, got {args.program}")
    if not 20 <= args.bpm <= 400:
        raise UserInputError(f"--bpm must be in range 20..400, got {args.bpm:g}")
    from engine.realtime.clock import parse_meter
    from studio.cli.options import parsed

    meter = parsed("--meter", parse_meter, args.meter)
    paths = output_paths(args.output, args.variations)
    for p in paths:
        check_writable(p)
    gen = BarGenerator.load(args.model)
    from engine.midi_io import write_midi

    for i, path in enumerate(paths):
        song = gen.generate(args.bars, seed=args.seed + i, temperature=args.temperature,
                            style=args.style, bpm=args.bpm, program=args.program,
                            meter=meter)
        write_midi(song, path)
        print(f"wrote {path}: {args.bars} bars of {args.meter}, {song.n_notes} notes "
              f"(model {gen.name}, seed {args.seed + i})")
    return 0
