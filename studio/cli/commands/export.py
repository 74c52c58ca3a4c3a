"""`popmusicnet export FILE.mid -o OUT.mid`: write a normalised MIDI file.

Normalised: type 1, a conductor track with tempo and meter maps, one track per part on its own
channel (drums on 10) with name, role marker, program, volume and pan, 480 ticks per beat when
that moves nothing (see export.midi). For audio, use `popmusicnet render`.
"""

from __future__ import annotations

import argparse

NAME = "export"
HELP = "write a normalised MIDI file (type 1, clean tempo/meter maps, one track per part)"


def register(p: argparse.ArgumentParser) -> None:
    from studio.cli.reading import add_reading_options

    p.add_argument("file", help="input MIDI file")
    p.add_argument("-o", "--output", required=True, help="output MIDI file (.mid)")
    add_reading_options(p)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from engine.errors import UserInputError
    from engine.fileio import check_outputs, check_writable
    from engine.midi_io import read_midi
    from export.midi import export_midi
    from studio.cli.reading import about, lenient

    out = Path(args.output)
    if out.suffix.lower() in (".wav", ".flac", ".ogg", ".mp3"):
        raise UserInputError(f"{out}: export writes MIDI; use `popmusicnet render` for audio")
    check_writable(out)
    check_outputs([out], [args.file])
    song = read_midi(args.file, lenient=lenient(args))
    with about(args.file):
        export_midi(song, out)
    print(f"wrote {out} ({len(song.tracks)} tracks, {song.n_notes} notes)")
    return 0
