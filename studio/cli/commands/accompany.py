"""`popmusicnet accompany IN.mid -o OUT.mid [--wav OUT.wav]`: add an accompaniment to a melody.

    popmusicnet accompany tune.mid -o tune-acc.mid --wav tune-acc.wav
    popmusicnet accompany song.mid -o out.mid --melody-track 2 --temperature 0.5 --seed 7
    popmusicnet accompany tune.mid --model band --style folk -o out.mid --wav out.wav

The output keeps every input track untouched (the melody's notes and times are the same) and adds
one track per accompaniment role of the model, in the song's own meter, pickup included.
"""

from __future__ import annotations

import argparse

NAME = "accompany"
HELP = "add a machine-learned accompaniment to a melody (MIDI in, MIDI and WAV out)"


def register(p: argparse.ArgumentParser) -> None:
    from studio.cli.reading import add_reading_options

    p.add_argument("file", help="input MIDI file with the melody")
    p.add_argument("-o", "--output", required=True, help="output MIDI file")
    p.add_argument("--wav", metavar="OUT.wav", help="also render the result to WAV")
    p.add_argument("--model", help="accompanist model name or card path (default: bundled); "
                                   "'band' for chords, bass and drums")
    p.add_argument("--style", choices=["auto", "folk", "pop", "waltz", "ballad"],
                   help="with --model band: the band's style (default auto: waltz in 3/4, folk "
                        "in 6/8, else pop)")
    p.add_argument("--melody-track", type=int, metavar="N",
                   help="the melody track, numbered from 1 as `popmusicnet info` lists them "
                        "(default: the track marked as melody, else the highest-pitched one)")
    p.add_argument("--temperature", type=float,
                   help="0 = the model's most likely accompaniment; higher = more varied")
    p.add_argument("--seed", type=int, help="random seed (with --temperature > 0)")
    p.add_argument("--key-prior", type=float, metavar="NATS",
                   help="how hard the voices are kept in the melody's key: 0 = as the model "
                        "says; default: the model card's (chosen on the valid split)")
    p.add_argument("--tonal-prior", type=float, metavar="NATS",
                   help="how hard the voices lean on the key's main degrees (tonic, dominant) "
                        "as the training voices do: 0 = not at all; default: the model card's")
    p.add_argument("--chord-prior", type=float, metavar="NATS",
                   help="how hard the voices follow the chords the band's chord model plans "
                        "for the melody: 0 = not at all; default: the model card's")
    p.add_argument("--key", help="the melody's key ('D major', 'F# minor', 'Am'); default: "
                                 "estimated from the whole melody (its last note favoured as "
                                 "the tonic)")
    p.add_argument("--soundfont", metavar="SF2", help="SoundFont for --wav")
    add_reading_options(p)


def run(args: argparse.Namespace) -> int:
    import contextlib
    import logging

    from engine.errors import UserInputError
    from engine.fileio import atomic_path, check_outputs, check_writable
    from engine.midi_io import read_midi, require_notes, write_midi
    from engine.models.accompanist import Accompanist
    from engine.music import parse_key
    from studio.cli.options import parsed
    from studio.cli.reading import about, lenient

    log = logging.getLogger(__name__)
    check_writable(args.output)
    if args.wav:
        check_writable(args.wav)
    check_outputs([args.output, args.wav], [args.file])
    if args.temperature is not None and args.temperature < 0:
        raise UserInputError(f"--temperature must be >= 0, got {args.temperature:g}")
    for name in ("key_prior", "tonal_prior", "chord_prior"):
        value = getattr(args, name)
        if value is not None and value < 0:
            raise UserInputError(f"--{name.replace('_', '-')} must be >= 0, got {value:g}")
    key = parsed("--key", parse_key, args.key)
    song = require_notes(read_midi(args.file, lenient=lenient(args)), args.file)
    from engine.models.band import BandAccompanist, is_band_model

    band = is_band_model(args.model)
    if args.style and not band:
        raise UserInputError("--style needs --model band (the choir has no styles)")
    model = (BandAccompanist.load(args.model, style=args.style) if band
             else Accompanist.load(args.model))
    melody_track = None
    if args.melody_track is not None:
        if not 1 <= args.melody_track <= len(song.tracks):
            raise UserInputError(f"--melody-track {args.melody_track}: {args.file} has tracks "
                                 f"1..{len(song.tracks)}")
        melody_track = args.melody_track - 1
    soundfont = None
    if args.wav:
        from engine.synth.soundfont import find_soundfont

        soundfont = find_soundfont(args.soundfont)  # a bad soundfont fails before the work
    with about(args.file):
        how = dict(melody_track=melody_track, temperature=args.temperature, seed=args.seed,
                   key_prior=args.key_prior, tonal_prior=args.tonal_prior,
                   chord_prior=args.chord_prior, key=key)
        # the chords (the band's, or the ones the voices follow) are printed below: decided
        # once, with the accompaniment
        out, chords = model.accompany_with_chords(song, **how)
        # MIDI and WAV together or neither: both go to temporary files, moved into place once
        # the WAV is rendered.
        with contextlib.ExitStack() as stack:
            mid_tmp = stack.enter_context(atomic_path(args.output))
            write_midi(out, mid_tmp)
            if args.wav:
                from export.audio import write_wav

                write_wav(out, stack.enter_context(atomic_path(args.wav, suffix=".wav")),
                          soundfont=soundfont, name=args.wav)
    added = out.tracks[len(song.tracks):]
    print(f"wrote {args.output}: {len(song.tracks)} input tracks + "
          + ", ".join(f"{t.name} ({len(t.notes)} notes)" for t in added)
          + f"; model {model.name} on {model.provider}")
    mel = out.tracks[melody_track] if melody_track is not None else out.melody_track()
    names = model.chord_names(out, mel.notes, chords=chords)
    if names:
        print(("chords: " if band else "chords the voices follow: ")
              + " | ".join(" ".join(bar) for bar in names))
    if args.wav:
        print(f"wrote {args.wav}")
    log.debug("done")
    return 0
