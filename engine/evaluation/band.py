"""`popmusicnet eval band`: the band model's chords against the chorales' held-out harmony and
folk tunes it never saw; the band's shape (parts, meter, ending); the live path's time per bar.

1. Chord accuracy per beat on the test chorales (root + quality, over the beats that have a
   chord: engine.training.band.data), for the model (bidirectional GRU, argmax per beat; the
   same decided per harmonic span as the band plays it; the causal GRU that plays live) and the
   two baselines fitted on the train split (engine.training.band.baselines: the most frequent
   chord for the bar's melody pitch classes, and the HMM), with the model's gain over the HMM.
2. Key agreement: the key of the chords alone (as block chords, engine.evaluation.metrics
   .analyse_key) against the key of the whole melody (engine.music.melody_key, the last note
   favoured as the tonic), per test chorale: same tonic; beside it against analyse_key of the
   soprano alone, and Bach's own chords (the labels) scored both ways.
3. Folk melodies (engine.training.data.folk.folk_melodies, 120 tunes, notated keys): each
   accompanied offline; every output must have chords, bass and drums, keep the tune's meters,
   and end with the melody (its last note ends where the melody's does); the chords' tonic
   against the tune's notated key and the last chord against its tonic triad, for the model
   and the naive triad rule; per meter (4/4, 3/4, 6/8) and over all. On the tunes with human
   chord symbols (folk_chord_tunes), the chord root per half bar against them
   (engine.training.data.folk_triads.chord_root_agreement), beside the naive rule (I, IV, V,
   vi, ii triad covering most of the bar's melody).
4. Live: every test chorale and folk tune replayed through the live engine on a virtual clock
   (bar t planned one beat before it, from the bars before only), the per-bar planning time
   (accompany_next) measured, bars late and skipped counted.
Before these, the tonic prior and the final tonic bonus are chosen (`choose_key_decoding`) on
the valid chorales and on folk tunes no evaluation scores.
"""

from __future__ import annotations

import itertools
import json
import time
from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from engine.evaluation import metrics
from engine.music import Note, Song

KIND = "band"
HELP = "band model: chord accuracy vs the HMM and frequency baselines, keys, folk tunes, live"

TONIC_PRIORS = (0.0, 0.5, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0)  # tried on valid (nats a beat x key_fit)
FINAL_BONUSES = (0.0, 2.0, 5.0, 10.0)  # tried with them (nats for the tonic triad at the end)
# how far below the best valid span accuracy a key decoding may fall (shares); the tolerance
# the accompanist's decoding choice keeps from Bach's figures (engine.evaluation.accompanist)
HARMONY_TOLERANCE = 0.05
_SHAPES = {"maj": (0, 4, 7), "min": (0, 3, 7), "dom7": (0, 4, 7, 10), "dim": (0, 3, 6)}


def chord_notes(chords: Sequence[tuple[int, int, str]], end: int) -> list[Note]:
    """(tick, root, quality) as block chords under middle C, each held until the next."""
    out = []
    chords = sorted(chords)
    for i, (tick, root, quality) in enumerate(chords):
        stop = chords[i + 1][0] if i + 1 < len(chords) else end
        if stop > tick:
            out += [Note(tick, stop, 48 + (root + d) % 12) for d in _SHAPES.get(quality, (0,))]
    return out


def _beat_chords(pred: np.ndarray, beats, shift: int) -> list[tuple[int, int, str]]:
    from engine.models.band_chords import chord_label, transpose_index

    out = []
    for b, c in zip(beats, pred):
        lab = chord_label(transpose_index(int(c), -shift))
        if lab is not None:
            out.append((b.start, lab[0], lab[1]))
    return out


def _span_pred(chords: Sequence[tuple[int, int, str]], beats, shift: int) -> np.ndarray:
    """Each beat's class (normalised key) of the chord sounding over it, from the chord changes
    the band plays (model.chords)."""
    from engine.models.band_chords import chord_index

    pred = np.zeros(len(beats), np.int64)
    for i, b in enumerate(beats):
        cur = [c for c in chords if c[0] <= b.start]
        if cur:
            pred[i] = chord_index(cur[-1][1] + shift, cur[-1][2])
    return pred


def ends_on_tonic(chords: Sequence[tuple[int, int, str]], key) -> bool:
    """The last chord is the tonic triad of `key` (major or minor as the key)."""
    return bool(chords) and chords[-1][1] % 12 == key.tonic and \
        chords[-1][2] == ("min" if key.mode == "minor" else "maj")


def choose_key_decoding(model, progress) -> tuple[float, float, dict]:
    """The tonic prior (engine.models.band_chords.key_priors) and the final tonic bonus, the
    rest of the card's decoding fixed: among the pairs whose chords as played agree with Bach's
    on the valid chorales' beats within HARMONY_TOLERANCE of the best pair (a strong pull to
    the tonic says the key by playing little else), the one with the best mean of three
    shares: the valid chorales whose chords have the melody's tonic and, on the folk tunes
    kept for choosing (engine.training.data.folk.folk_dev_tunes, never scored), those whose
    chords have the notated tonic and those whose last chord is the tonic triad of the key the
    band plays in (ties: the weaker). Sets both on `model`; returns (tonic prior, final bonus,
    every pair's valid figures)."""
    from engine.models.band_chords import song_beats
    from engine.music import melody_key
    from engine.training.band.data import load_chord_pieces
    from engine.training.band.train import accuracy
    from engine.training.data.chorales import load_chorales
    from engine.training.data.folk import folk_dev_tunes

    songs = {p.id: p.song for p in load_chorales() if p.split == "valid"}
    va = []
    for p in load_chord_pieces():
        if p.split == "valid":
            song = songs[p.id]
            mel = sorted(song.melody_track().notes)
            end = max(n.end for n in mel)
            va.append((p, song, mel, end, melody_key(mel), song_beats(song, end)))
    dev = [(t, sorted(t.melody), t.song.melody_track().end, melody_key(t.melody))
           for t in folk_dev_tunes()]
    tried = {}
    for strength, bonus in itertools.product(TONIC_PRIORS, FINAL_BONUSES):
        model.tonic_prior, model.final_bonus = strength, bonus
        right = total = 0
        tonic = []
        for p, song, mel, end, key, beats in va:
            chords = model.chords(song, mel)
            right += accuracy(_span_pred(chords, beats, key.tonic_shift()), p.y)[0]
            total += int((p.y > 0).sum())
            tonic.append(metrics.key_agreement(key, chord_notes(chords, end))["same_tonic"])
        folk, cadence = [], []
        for tune, mel, end, found in dev:
            chords = model.chords(tune.song, mel)
            folk.append(metrics.key_agreement(tune.key, chord_notes(chords, end))
                        ["same_tonic"])
            cadence.append(ends_on_tonic(chords, found))
        tried[(strength, bonus)] = (right / max(total, 1), float(np.mean(tonic)),
                                    float(np.mean(folk)), float(np.mean(cadence)))
        progress(stage="key decoding", tonic_prior=strength, final_bonus=bonus,
                 **dict(zip(("valid_span_accuracy", "valid_same_tonic", "folk_dev_same_tonic",
                             "folk_dev_ends_on_tonic"), tried[(strength, bonus)])))
    top = max(v[0] for v in tried.values())
    near = [k for k, v in tried.items() if v[0] >= top - HARMONY_TOLERANCE]
    best = max(near, key=lambda k: (round(float(np.mean(tried[k][1:])), 6), -k[0], -k[1]))
    model.tonic_prior, model.final_bonus = best
    return best[0], best[1], {f"{k[0]:g}/{k[1]:g}": [round(x, 4) for x in v]
                              for k, v in tried.items()}


def chorale_checks(model, progress) -> dict:
    from engine.models.band_chords import decode_beats, song_beats
    from engine.music import melody_key
    from engine.training.band.baselines import FrequencyBaseline, HmmBaseline
    from engine.training.band.data import load_chord_pieces
    from engine.training.band.train import accuracy
    from engine.training.data.chorales import load_chorales

    pieces = load_chord_pieces()
    tr = [p for p in pieces if p.split == "train"]
    te = [p for p in pieces if p.split == "test"]
    songs = {p.id: p.song for p in load_chorales() if p.split == "test"}
    freq, hmm = FrequencyBaseline().fit(tr), HmmBaseline().fit(tr)
    right = defaultdict(int)
    total = 0
    same_tonic, same_tonic_alone = defaultdict(list), defaultdict(list)
    for p in te:
        song = songs[p.id]
        mel = sorted(song.melody_track().notes)
        end = max(n.end for n in mel)
        lp = model.beat_logp(p.x)
        lp_c = model.causal_sequence(p.x)
        lp_n = lp.copy()
        lp_n[:, 0] = -1e9
        preds = {"model": lp[:, 1:].argmax(1) + 1,
                 "model_bigrams": np.array(decode_beats(lp_n, model.log_bigrams,
                                                        model.bigram_weight)),
                 "model_causal": lp_c[:, 1:].argmax(1) + 1,
                 "frequency": freq.predict(p.x), "hmm": hmm.predict(p.x)}
        beats = song_beats(song, end)
        shift = melody_key(mel).tonic_shift()
        preds["model_spans"] = _span_pred(model.chords(song, mel), beats, shift)  # as played
        preds["bach"] = p.y  # the chordified score itself: the reference
        total += int((p.y > 0).sum())
        key, key_alone = melody_key(mel), metrics.analyse_key(mel)
        for who, pr in preds.items():
            right[who] += accuracy(pr, p.y)[0]
            acc_notes = chord_notes(_beat_chords(pr, beats, shift), end)
            same_tonic[who].append(metrics.key_agreement(key, acc_notes)["same_tonic"])
            same_tonic_alone[who].append(metrics.key_agreement(key_alone, acc_notes)
                                         ["same_tonic"])
    progress(stage="chorales", pieces=len(te), beats=total)
    return {"pieces": len(te), "beats": total,
            "accuracy": {k: v / total for k, v in right.items()},
            "same_tonic": {k: float(np.mean(v)) for k, v in same_tonic.items()},
            "same_tonic_soprano_alone": {k: float(np.mean(v))
                                         for k, v in same_tonic_alone.items()}}


def band_shape(song: Song, out: Song, melody: Sequence[Note]) -> dict[str, bool]:
    added = out.tracks[len(song.tracks):]
    by = {t.name: t for t in added}
    mel_end = max(n.end for n in melody)
    ends = [max((n.end for n in t.notes), default=0) for t in added]
    drums = by.get("Drums")
    return {
        "has_parts": all(by.get(k) is not None and by[k].notes for k in ("Chords", "Bass",
                                                                         "Drums")),
        "drums_on_10": bool(drums is not None and drums.is_drum),
        "meter_kept": [(m.tick, m.numerator, m.denominator) for m in out.meters]
        == [(m.tick, m.numerator, m.denominator) for m in song.meters],
        "ends_with_melody": max(ends, default=0) == mel_end,
    }


def folk_checks(model, progress) -> dict:
    from engine.music import melody_key
    from engine.training.data.folk import folk_chord_tunes, folk_melodies
    from engine.training.data.folk_triads import chord_root_agreement, naive_triad_chords

    rows = defaultdict(lambda: defaultdict(list))
    for tune in folk_melodies():
        song = tune.song
        mel = song.melody_track()
        out = model.accompany(song, melody_track=song.tracks.index(mel))
        shape = band_shape(song, out, mel.notes)
        chords = model.chords(song, mel.notes)
        end = mel.end
        naive = naive_triad_chords(song, per="bar", key=tune.key)
        found = melody_key(mel.notes)  # the key the band plays in (the tonic prior pulls to it)
        meter = tune.meter if tune.meter in ("4/4", "3/4", "6/8") else "other"
        for group in (meter, "all"):
            r = rows[group]
            for k, v in shape.items():
                r[k].append(float(v))
            r["same_tonic"].append(metrics.key_agreement(tune.key, chord_notes(chords, end))
                                   ["same_tonic"])
            r["key_finder_same_tonic"].append(float(found.tonic == tune.key.tonic))
            r["ends_on_tonic"].append(float(ends_on_tonic(chords, tune.key)))
            r["naive_ends_on_tonic"].append(float(ends_on_tonic(naive, tune.key)))
            r["naive_same_tonic"].append(metrics.key_agreement(tune.key, chord_notes(naive, end))
                                         ["same_tonic"])
    progress(stage="folk", tunes=len(rows["all"]["same_tonic"]))
    out = {g: {k: float(np.mean(v)) for k, v in r.items()} | {"tunes": len(r["same_tonic"])}
           for g, r in rows.items()}
    agree = defaultdict(lambda: [0, 0])
    for tune in folk_chord_tunes():
        song = tune.song
        mel = song.melody_track()
        for who, ch in (("model", model.chords(song, mel.notes)),
                        ("naive", naive_triad_chords(song, per="bar", key=tune.key))):
            a, n = chord_root_agreement(ch, tune.chords, song, per="half")
            agree[who][0] += a
            agree[who][1] += n
    out["human_chords"] = {who: {"agree": a, "half_bars": n, "share": a / max(n, 1)}
                           for who, (a, n) in agree.items()}
    return out


def live_replay(model, song: Song, melody: Sequence[Note]) -> dict:
    """The live engine on a virtual clock (engine.evaluation.accompanist_checks.replay_live):
    per-bar planning times, late and skipped bars, and the planned parts."""
    from engine.evaluation.accompanist_checks import replay_live

    cpu: list[float] = []

    class _Timed:  # the model and its sessions, each bar's planning timed in thread CPU time
        def __init__(self, inner):
            self.inner = inner

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def session(self, **kw):
            return _Timed(self.inner.session(**kw))

        def accompany_next(self, *a, **kw):
            t0 = time.thread_time()
            out = self.inner.accompany_next(*a, **kw)
            cpu.append((time.thread_time() - t0) * 1000.0)
            return out

    st, rec, _ = replay_live(_Timed(model), song, melody)
    return {"ms": list(st.inference_ms), "cpu_ms": cpu, "late": st.late, "skipped": st.skipped,
            "parts": [len(t.notes) for t in rec.tracks[1:]]}


def live_checks(model, progress, n_tunes: int = 40) -> dict:
    from engine.training.data.chorales import load_chorales
    from engine.training.data.folk import folk_melodies

    songs = [p.song for p in load_chorales() if p.split == "test"][:n_tunes] + \
        [t.song for t in folk_melodies()][:n_tunes]
    ms, cpu, late, skipped, bars, with_all = [], [], 0, 0, 0, 0
    for song in songs:
        mel = song.melody_track()
        r = live_replay(model, song, sorted(mel.notes))
        ms += r["ms"]
        cpu += r["cpu_ms"]
        late += r["late"]
        skipped += r["skipped"]
        bars += len(r["ms"])
        with_all += all(n > 0 for n in r["parts"][:3])
    progress(stage="live", tunes=len(songs), bars=bars)
    a = np.array(ms)
    return {"tunes": len(songs), "bars": bars, "late": late, "skipped": skipped,
            "p50_ms": float(np.percentile(a, 50)), "p99_ms": float(np.percentile(a, 99)),
            "max_ms": float(a.max()), "cpu_p50_ms": float(np.percentile(cpu, 50)),
            "cpu_p99_ms": float(np.percentile(cpu, 99)), "tunes_with_all_parts": with_all}


def evaluate(model_name: str | None, progress, live_tunes: int = 40,
             tonic_prior: float | None = None) -> dict:
    from engine.models.band import BandAccompanist

    model = BandAccompanist.load(model_name, providers="cpu")
    t0 = time.perf_counter()
    tried = None
    if tonic_prior is None:
        tonic_prior, model.final_bonus, tried = choose_key_decoding(model, progress)
    model.tonic_prior = tonic_prior
    res = {"model": model.name, "decoding": {"change_penalty": model.change_penalty,
                                             "final_bonus": model.final_bonus,
                                             "diatonic_prior": model.diatonic_prior,
                                             "tonic_prior": model.tonic_prior,
                                             "bigram_weight": model.bigram_weight},
           "key_decoding_tried": tried}
    res["chorales"] = chorale_checks(model, progress)
    res["folk"] = folk_checks(model, progress)
    res["live"] = live_checks(model, progress, live_tunes)
    res["seconds"] = round(time.perf_counter() - t0, 1)
    acc = res["chorales"]["accuracy"]
    res["gain_over_hmm"] = acc["model"] / acc["hmm"] - 1
    res["gain_over_hmm_bigrams"] = acc["model_bigrams"] / acc["hmm"] - 1
    res["gain_over_hmm_spans"] = acc["model_spans"] / acc["hmm"] - 1
    return res


def report_markdown(res: dict, command: str) -> str:
    from engine.evaluation.report import provenance

    ch, fo, li = res["chorales"], res["folk"], res["live"]
    acc, st = ch["accuracy"], ch["same_tonic"]
    names = {"model": "BiGRU, argmax per beat",
             "model_bigrams": f"BiGRU, per beat with chord bigrams (weight "
                              f"{res['decoding']['bigram_weight']:g})", "model_spans": "BiGRU, per harmonic span "
             "(as the band plays)", "model_causal": "causal GRU (live: before the beat is heard)",
             "hmm": "HMM (Viterbi)", "bach": "Bach's own chords (the labels)", "frequency": "most frequent chord for the bar's pitch classes"}
    lines = [f"## Band accompanist ({res['model']})", "", provenance(), "",
             f"Command: `{command}` ({res['seconds']:.0f} s). Decoding chosen on the valid "
             f"chorales: change penalty {res['decoding']['change_penalty']:g} nats, final tonic "
             f"bonus {res['decoding']['final_bonus']:g}, diatonic prior "
             f"{res['decoding']['diatonic_prior']:g}; tonic prior "
             f"{res['decoding']['tonic_prior']:g} nats a beat x the chord's key fit"
             + (" (the tonic prior and the final bonus chosen by this command: among those "
                f"within {100 * HARMONY_TOLERANCE:g} points of the best valid span accuracy, "
                "the best mean "
                "of the valid chorales in the melody's tonic and, on the folk tunes kept for "
                "choosing (engine.training.data.folk.folk_dev_tunes, never scored), those in the "
                "notated tonic and those whose last chord is the tonic triad; "
                "tonic prior/final bonus: [valid span accuracy, valid same tonic, folk same "
                "tonic, folk ending on the tonic] "
                + ", ".join(f"{k}: {v}" for k, v in res["key_decoding_tried"].items()) + ")"
                if res.get("key_decoding_tried") else " (given)") + ".", "",
             f"Held-out chorales ({ch['pieces']} test pieces, {ch['beats']} beats with a chord): "
             "chord accuracy per beat (root + quality) and the chords' key against the "
             "melody's (same tonic, share of pieces; the melody's key: engine.music.melody_key, "
             "and analyse_key of the soprano alone).", "",
             "| chords by | accuracy | same tonic as the melody | same tonic, soprano alone |",
             "|---|---|---|---|"]
    sa = ch["same_tonic_soprano_alone"]
    for k in ("model", "model_bigrams", "model_spans", "model_causal", "hmm", "frequency",
              "bach"):
        lines.append(f"| {names[k]} | {acc[k]:.1%} | {st[k]:.1%} | {sa[k]:.1%} |")
    lines += ["", f"BiGRU over the HMM: {res['gain_over_hmm']:+.1%} relative per beat "
                  f"(target +25%), {res['gain_over_hmm_bigrams']:+.1%} with chord bigrams; per "
                  f"harmonic span {res['gain_over_hmm_spans']:+.1%} (Bach changes chord on most "
                  "beats; the band holds one a half bar or bar).", "",
              "Folk melodies out of the corpus (offline, the band as it is played; same tonic: "
              "the chords' key against the notated key):", "",
              "| meter | tunes | chords, bass, drums | meter kept | ends with the melody | "
              "same tonic | last chord the tonic triad | key finder's tonic | naive rule same "
              "tonic | naive rule last chord the tonic triad |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for g in ("4/4", "3/4", "6/8", "other", "all"):
        if g in fo:
            r = fo[g]
            lines.append(f"| {g} | {r['tunes']} | {r['has_parts']:.0%} | {r['meter_kept']:.0%} | "
                         f"{r['ends_with_melody']:.0%} | {r['same_tonic']:.1%} | "
                         f"{r['ends_on_tonic']:.1%} | {r['key_finder_same_tonic']:.1%} | "
                         f"{r['naive_same_tonic']:.1%} | {r['naive_ends_on_tonic']:.1%} |")
    hc = fo["human_chords"]
    lines += ["", "The key finder's tonic: engine.music.melody_key of the tune against its notated "
                  "key. The band's chords are decoded in that key and the tonic prior pulls "
                  "toward its tonic, so where the key finder misses the notated tonic the band "
                  "mostly does too. The naive rule is given the notated key. The last chord "
                  "the tonic triad: of the notated key (major or minor as it is).", "",
              "Tunes with human chord symbols: chord root per half bar against them: model "
                  f"{hc['model']['agree']}/{hc['model']['half_bars']} "
                  f"({hc['model']['share']:.1%}), naive triad rule "
                  f"{hc['naive']['agree']}/{hc['naive']['half_bars']} "
                  f"({hc['naive']['share']:.1%}); target 70%.", "",
              f"Live (virtual clock, {li['tunes']} tunes, {li['bars']} bars): planning per bar "
              f"p50 {li['p50_ms']:.2f} ms, p99 {li['p99_ms']:.2f} ms, max {li['max_ms']:.2f} ms; "
              f"late {li['late']}, skipped {li['skipped']}; in thread CPU time p50 "
              f"{li['cpu_p50_ms']:.2f} ms, p99 {li['cpu_p99_ms']:.2f} ms (the wall times include "
              "waits for the machine's other work); tunes with all three parts "
              f"{li['tunes_with_all_parts']}/{li['tunes']}."]
    return "\n".join(lines)


def register(p) -> None:
    p.add_argument("--model", help="band model name or card path (default: the bundled one)")
    p.add_argument("--live-tunes", type=int, default=40,
                   help="test chorales and folk tunes (each) replayed live (default 40)")
    p.add_argument("--tonic-prior", type=float, default=None,
                   help="tonic prior strength, nats a beat (default: chosen on the valid split)")
    p.add_argument("--update-card", action="store_true",
                   help="store the measured metrics and the tonic prior in the model card")
    p.add_argument("--no-report", action="store_true", help="do not touch docs/RESULTS.md")


def run_cli(args) -> int:
    import shlex
    import sys

    from engine.errors import UserInputError
    from engine.evaluation.report import update_section

    if args.live_tunes < 1:
        raise UserInputError(f"--live-tunes must be at least 1, got {args.live_tunes}")

    def progress(**kw):
        print(json.dumps({"event": "eval", **kw}), flush=True)

    if args.tonic_prior is not None and args.tonic_prior < 0:
        raise UserInputError(f"--tonic-prior must be at least 0, got {args.tonic_prior:g}")
    res = evaluate(args.model, progress, args.live_tunes, args.tonic_prior)
    print(json.dumps({"event": "result", **res}))
    command = ("popmusicnet eval band " + " ".join(shlex.quote(a) for a in sys.argv[3:])).strip()
    md = report_markdown(res, command)
    print(md)
    if not args.no_report:
        print(f"wrote {update_section('band', md)}")
    if args.update_card:
        from engine.models.band import BandAccompanist

        card = BandAccompanist.load(args.model, providers="cpu").card
        ch, fo = res["chorales"], res["folk"]
        card.metrics = {**card.metrics,
                        "test_beat_accuracy": round(ch["accuracy"]["model"], 4),
                        "test_beat_accuracy_hmm": round(ch["accuracy"]["hmm"], 4),
                        "test_beat_accuracy_frequency": round(ch["accuracy"]["frequency"], 4),
                        "test_beat_accuracy_causal": round(ch["accuracy"]["model_causal"], 4),
                        "test_same_tonic": round(ch["same_tonic"]["model_spans"], 4),
                        "folk_same_tonic": round(fo["all"]["same_tonic"], 4),
                        "folk_root_agreement": round(fo["human_chords"]["model"]["share"], 4),
                        "folk_key_finder_same_tonic": round(fo["all"]["key_finder_same_tonic"],
                                                            4),
                        "live_p99_ms": round(res["live"]["p99_ms"], 3),
                        "live_cpu_p99_ms": round(res["live"]["cpu_p99_ms"], 3),
                        "measured_by": command}
        card.representation["decoding"]["tonic_prior"] = res["decoding"]["tonic_prior"]
        card.representation["decoding"]["final_bonus"] = res["decoding"]["final_bonus"]
        if res["key_decoding_tried"]:
            dec = res["decoding"]
            chosen = res["key_decoding_tried"][f"{dec['tonic_prior']:g}/{dec['final_bonus']:g}"]
            card.metrics.update({"valid_span_accuracy": chosen[0], "valid_same_tonic": chosen[1],
                                 "folk_dev_same_tonic": chosen[2],
                                 "folk_dev_ends_on_tonic": chosen[3]})
            card.training.pop("tonic_prior_chosen_on_valid", None)
            card.training["key_decoding_chosen_on_valid"] = {
                "command": command,
                "tonic prior/final bonus: [valid span accuracy, valid same tonic, folk dev "
                "same tonic, folk dev ending on the tonic]": res["key_decoding_tried"]}
        card.write(card.path)
        print(f"updated {card.path}")
    return 0
