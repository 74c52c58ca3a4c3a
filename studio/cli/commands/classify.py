"""`popmusicnet classify FILE.mid|FILE.wav`: the style of a file, a track or a recording.

A MIDI file is classified whole: the pianoroll of every pitched track merged (texture included);
`--track N` classifies one track alone (numbered from 1, as `info` prints them). A
WAV/FLAC/OGG file is classified from its log spectrogram. The answer is the mean of the class
probabilities of the model's windows (32 beats of music, 10 s of audio). The output says what
was judged (the whole file and its tracks, one track, or the recording) and the verdict: the top
style, or "unsure" when its probability is below the threshold the model's card chose on
validation pieces.
"""

from __future__ import annotations

import argparse

NAME = "classify"
HELP = "guess the style of a MIDI file or track, or of an audio file (Bach chorale, folk ...)"


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", nargs="?", help="MIDI file (.mid) or audio file (.wav, .flac, .ogg)")
    p.add_argument("--track", type=int, default=None, metavar="N",
                   help="classify this MIDI track alone, numbered from 1 (default: the whole "
                        "file, every track merged)")
    p.add_argument("--top", type=int, default=3, metavar="K",
                   help="how many labels to print (default 3)")
    p.add_argument("--model", default=None, metavar="NAME",
                   help="classifier model name or card path (default: classifier-midi-cnn for "
                        "MIDI, classifier-audio-cnn for audio); see `--list`")
    p.add_argument("--list", action="store_true", help="list the installed classifier models")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--provider", choices=("auto", "cpu", "cuda"), default="cpu",
                   help="ONNX Runtime provider (default cpu: the models are tiny)")


def run(args: argparse.Namespace) -> int:
    import json

    from engine.errors import UserInputError
    from engine.models.classifier import KIND_AUDIO, KIND_MIDI, judge_file

    if args.list:
        from engine.models.runtime import list_cards

        for kind in (KIND_MIDI, KIND_AUDIO):
            for card in list_cards(kind):
                bacc = card.metrics.get("test", {}).get("balanced_accuracy")
                extra = f"  test balanced accuracy {bacc:.1%}" if bacc is not None else ""
                print(f"{card.name}  ({kind}){extra}")
        return 0
    if not args.file:
        raise UserInputError("give a MIDI or audio file to classify (or --list)")
    if args.top < 1:
        raise UserInputError(f"--top must be at least 1, got {args.top}")
    if args.track is not None and args.track < 1:
        raise UserInputError(f"--track counts from 1, got {args.track}")
    track = None if args.track is None else args.track - 1
    j = judge_file(args.file, track=track, model=args.model, providers=args.provider)
    top = j.ranked[:args.top]
    if args.json:
        print(json.dumps({"file": args.file, "model": j.model, "provider": j.provider,
                          "input": j.input, "judged": j.judged, "verdict": j.verdict,
                          "unsure_below": j.unsure_below,
                          "labels": [{"label": lab, "probability": round(p, 4)}
                                     for lab, p in top]}))
        return 0
    width = max(len(lab) for lab, _ in top)
    print(f"{args.file}: judged {j.judged}  (model {j.model})")
    best, p_best = j.ranked[0]
    if j.unsure:
        print(f"  unsure: the most likely style, {best} at {p_best:.1%}, is below this "
              f"model's {j.unsure_below:.0%} threshold")
    else:
        print(f"  style: {best}")
    for lab, p in top:
        print(f"  {lab:<{width}}  {p:6.1%}")
    return 0
