"""The accompanist: a tiny training run end to end (export, parity, runtime), the session API,
and DDP with two CPU processes (slow)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.models.accompanist import Accompanist
from engine.models.card import ModelCard
from engine.models.line_decoding import decode_planes
from engine.music import Key, MeterChange, Note, Song, Track
from engine.training.accompanist.config import ModelConfig, TrainConfig

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(latent=8, vae_hidden=32, step_embed=8, rnn_hidden=16)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    pytest.importorskip("torch")  # the training extra; the runtime-only tests below run without
    from engine.training.accompanist.train import Trainer

    out = tmp_path_factory.mktemp("acc")
    tr = Trainer("toy:10", out, epochs=1, device="cpu", seed=3, name="acc-tiny",
                 model_cfg=ModelConfig(**TINY), train_cfg=TrainConfig(batch_bars=64, batch_seqs=4))
    card = tr.run()
    return tr, card


@pytest.mark.slow
def test_training_writes_card_checkpoint_and_graphs(trained):
    tr, card_path = trained
    card = ModelCard.read(card_path)
    assert card.kind == "accompanist"
    assert set(card.files) == {"enc_soprano", "enc_alto", "enc_tenor", "enc_bass", "dec_alto",
                               "dec_soprano",
                               "dec_tenor", "dec_bass", "melody_rnn", "rnn_alto", "rnn_tenor",
                               "rnn_bass", "roles_decode", "roles_encode", "roles_rnn"}
    card.verify()
    assert tr.ckpt_path.exists()
    assert card.representation["roles"] == ["alto", "tenor", "bass"]
    for dec in card.representation["decoding"].values():
        assert 0 < dec["thr_active"] < 1 and dec["max_voices"] >= 1


@pytest.mark.slow
def test_torch_and_onnx_runtime_agree_on_every_graph(trained):
    """Parity measured here, independently of the check the exporter ran."""
    import torch

    from engine.training.accompanist.model import (DecoderExport, EncoderExport, MelodyStep,
                                                   RoleStep)

    tr, card_path = trained
    card = ModelCard.read(card_path)
    cfg = tr.mcfg
    S, L, H, P = cfg.max_bar_steps, cfg.latent, cfg.rnn_hidden, cfg.n_pitches
    rng = np.random.default_rng(0)
    mask = np.ones((3, S), np.float32)
    mask[1, 12:] = 0  # a 3/4 bar
    vaes, rnns = tr.vaes.cpu().eval(), tr.rnns.cpu().eval()
    names = [t.name for t in tr.prepared.tracks]
    cases = {}
    for k, n in enumerate(names):
        planes = (rng.random((3, 2, S, P)) > 0.9).astype(np.float32)
        feeds = {"planes": planes, "mask": mask}
        if k:
            feeds["melody"] = (rng.random((3, 2, S, P)) > 0.9).astype(np.float32)
        cases[f"enc_{n}"] = (EncoderExport(vaes.vaes[k].encoder), feeds)
        z = rng.standard_normal((3, L)).astype(np.float32)
        if not k:
            cases[f"dec_{n}"] = (vaes.vaes[k].decoder, {"z": z, "mask": mask})
        if k:
            cases[f"dec_{n}"] = (DecoderExport(vaes.vaes[k].decoder),
                                 {"z": z, "mask": mask,
                                  "melody": (rng.random((3, 2, S, P)) > 0.9).astype(np.float32),
                                  "prev_last": (rng.random((3, P)) > 0.9).astype(np.float32)})
            cases[f"rnn_{n}"] = (RoleStep(rnns.roles[k - 1]),
                                 {"z_mel": rng.standard_normal((3, L)).astype(np.float32),
                                  "z_prev": rng.standard_normal((3, L)).astype(np.float32),
                                  "mask": mask,
                                  "h": rng.standard_normal((1, 3, H)).astype(np.float32)})
    cases["melody_rnn"] = (MelodyStep(rnns.melody),
                           {"z_prev": rng.standard_normal((3, L)).astype(np.float32),
                            "mask_prev": mask,
                            "h": rng.standard_normal((1, 3, H)).astype(np.float32)})
    assert set(cases) == set(card.files) - {"roles_decode", "roles_encode", "roles_rnn"}
    for comp, (module, feeds) in cases.items():
        with torch.no_grad():
            ref = module(*[torch.from_numpy(v) for v in feeds.values()])
        ref = ref if isinstance(ref, tuple) else (ref,)
        got = card.open(comp, providers="cpu").run(feeds)
        for r, g in zip(ref, got.values()):
            assert np.max(np.abs(r.numpy() - g)) < 1e-4, comp


def melody_34_with_pickup() -> Song:
    q = 480
    notes = [Note(0, q, 67)]  # pickup beat
    pitches = [72, 74, 76, 74, 72, 71, 72, 67, 69, 71, 72, 72]
    t = q
    for p in pitches:
        notes.append(Note(t, t + q, p))
        t += q
    return Song([Track("Melody", program=0, role="melody", notes=notes)], q,
                meters=[MeterChange(0, 1, 4), MeterChange(q, 3, 4)])


@pytest.mark.slow
def test_runtime_accompanies_a_34_melody_with_pickup(trained):
    _, card_path = trained
    model = Accompanist.load(str(card_path), providers="cpu")
    assert model.roles == ("alto", "tenor", "bass") and len(model.programs) == 3
    song = melody_34_with_pickup()
    out = model.accompany(song, temperature=0.0, seed=1)
    assert out.tracks[0].notes == song.tracks[0].notes
    assert [(m.tick, m.numerator, m.denominator) for m in out.meters] == [(0, 1, 4), (480, 3, 4)]
    assert [t.role for t in out.tracks[1:]] == ["accompaniment"] * 3
    assert all(n.end <= song.end + 480 for t in out.tracks[1:] for n in t.notes)
    # a seeded sample is reproducible
    a = model.accompany(song, temperature=1.0, seed=5)
    b = model.accompany(song, temperature=1.0, seed=5)
    assert [t.notes for t in a.tracks] == [t.notes for t in b.tracks]


@pytest.mark.slow
def test_session_streams_bars_with_and_without_the_melody(trained):
    _, card_path = trained
    model = Accompanist.load(str(card_path), providers="cpu")
    sess = model.session(seed=0)
    bar = [Note(0, 480, 72), Note(480, 960, 74), Note(960, 1920, 76)]
    out = sess.accompany_next(1920, 480, melody_notes=bar)
    assert len(out) == 3
    sess.observe(bar, 1920, 480)
    # live: the next bar predicted, with the previous bar still pending
    out = sess.accompany_next(1920, 480)
    out2 = sess.accompany_next(1920, 480, pending=bar[:2])
    assert sess.n_accompanied == 3 and sess.n_observed == 1
    sess.observe(bar, 1920, 480)
    sess.observe(bar, 1920, 480)
    assert sess.n_observed == 3 and not sess._pending
    for notes in out + out2:
        assert all(0 <= n.start < 1920 for n in notes)
    # a 4/2 bar is two units
    sess.observe([Note(0, 3840, 60)], 3840, 480)
    assert sess.n_observed == 5


@pytest.mark.slow
@pytest.mark.parametrize("temperature,voices", [(0.0, 1), (1.0, 1), (0.5, 2)])
def test_fused_roles_step_plays_exactly_what_the_per_role_graphs_play(trained, temperature,
                                                                     voices):
    """The fused graphs (rnn -> dec, and enc, for every role at once) against the per-role
    graphs, over a 3/4 song with a pickup, sampled and not."""
    _, card_path = trained
    fused = Accompanist.load(str(card_path), providers="cpu")
    plain = Accompanist.load(str(card_path), providers="cpu", graphs="per_role")
    assert fused.graphs.kind == "fused" and fused.graphs.rnn is not None
    assert plain.graphs.kind == "per_role"
    for m in (fused, plain):  # 1: Viterbi lines; 2: per-step decision
        for r in m.role_infos:
            r.max_voices = voices
    song = melody_34_with_pickup()
    a = fused.accompany(song, temperature=temperature, seed=5)
    b = plain.accompany(song, temperature=temperature, seed=5)
    assert sum(len(t.notes) for t in a.tracks[1:]) > 0
    assert [t.notes for t in a.tracks] == [t.notes for t in b.tracks]
    # streaming with a predicted melody, then the real one
    sf, sp = fused.session(seed=1), plain.session(seed=1)
    bar = [Note(0, 480, 67), Note(480, 960, 69), Note(960, 1920, 71)]
    for s in (sf, sp):
        s.observe(bar, 1920, 480)
    assert sf.accompany_next(1920, 480) == sp.accompany_next(1920, 480)
    for a_h, b_h in zip(sf._h, sp._h):
        assert np.allclose(a_h, b_h, atol=1e-5)
    # the real bar differs from the prediction: both replay the role RNNs on it
    before = [h.copy() for h in sf._h]
    for s in (sf, sp):
        s.observe([Note(0, 960, 72), Note(960, 1920, 64)], 1920, 480)
    assert not all(np.allclose(a, b) for a, b in zip(before, sf._h))
    for a_h, b_h in zip(sf._h, sp._h):
        assert np.allclose(a_h, b_h, atol=1e-5)
    assert sf.accompany_next(1920, 480) == sp.accompany_next(1920, 480)
    # two bars ahead (the second on a melody predicted from the first), then both observed
    assert sf.accompany_next(1920, 480) == sp.accompany_next(1920, 480)
    for s in (sf, sp):
        s.observe(bar, 1920, 480)
        s.observe([Note(0, 1920, 60)], 1920, 480)
    for a_h, b_h in zip(sf._h, sp._h):
        assert np.allclose(a_h, b_h, atol=1e-5)
    assert np.allclose(sf._mel_h, sp._mel_h, atol=1e-5)
    assert sf.accompany_next(1920, 480, melody_notes=bar) == \
        sp.accompany_next(1920, 480, melody_notes=bar)


@pytest.mark.slow
def test_both_graph_layouts_give_the_same_bar_for_the_same_inputs(trained):
    """engine.models.accompanist_graphs: the fused graphs and the per-role ones, called through
    the one interface on the same state, melody known and predicted, give the same logits,
    states and latents; so does the fused layout without roles_rnn (the per-role RNNs)."""
    from engine.models.accompanist_graphs import open_graphs

    _, card_path = trained
    card = ModelCard.read(card_path)
    fused = open_graphs(card, kind="fused", providers="cpu")
    plain = open_graphs(card, kind="per_role", providers="cpu")
    assert (fused.kind, plain.kind) == ("fused", "per_role")
    assert fused.uses_prev_last == plain.uses_prev_last
    rng = np.random.default_rng(0)
    R, L, H, S = len(plain.roles), plain.latent, plain.rnn_hidden, 16
    mask = np.zeros((1, S), np.float32)
    mask[0, :12] = 1  # a 3/4 bar
    z_prev = [rng.standard_normal((1, L)).astype(np.float32) for _ in range(R)]
    h = [rng.standard_normal((1, 1, H)).astype(np.float32) for _ in range(R)]
    P = [int(t["spec"]["n_pitches"]) for t in card.representation["tracks"]]
    prev_last = [(rng.random((1, P[i + 1])) < 0.05).astype(np.float32) for i in range(R)]
    noise = [rng.standard_normal((1, L)).astype(np.float32) * 0.3 for _ in range(R)]
    melody = (rng.random((1, 2, S, P[0])) < 0.04).astype(np.float32) * mask[0][None, :, None]
    z_pred = rng.standard_normal((1, L)).astype(np.float32)

    def close(a, b) -> bool:
        return all(np.allclose(x, y, atol=1e-5) for x, y in zip(a, b))

    for kw in (dict(melody=melody), dict(z_mel=z_pred)):  # known; predicted
        a = fused.decode_roles(mask, z_prev, h, prev_last, [None] * R, **kw)
        b = plain.decode_roles(mask, z_prev, h, prev_last, [None] * R, **kw)
        assert close([x for pair in a.logits for x in pair], [x for pair in b.logits for x in pair])
        assert close(a.h, b.h) and close([a.z_mel, a.melody], [b.z_mel, b.melody])
        noisy = fused.decode_roles(mask, z_prev, h, prev_last, noise, **kw)
        assert close(noisy.logits[0], plain.decode_roles(mask, z_prev, h, prev_last, noise,
                                                        **kw).logits[0])
        assert not close(noisy.logits[0], a.logits[0])  # the noise is heard
        planes = [(rng.random((2, S, p)) < 0.05) for p in P[1:]]
        mel_h = rng.standard_normal((1, 1, H)).astype(np.float32)
        ea = fused.encode_roles(planes, mask, a.melody, a.z_mel, mel_h)
        eb = plain.encode_roles(planes, mask, b.melody, b.z_mel, mel_h)
        assert close(ea.played, eb.played) and close([ea.mel_next, ea.mel_h],
                                                     [eb.mel_next, eb.mel_h])
        assert close(ea.mel_next, fused.step_melody(a.z_mel, mask, mel_h)[0])
        assert plain.encode_roles(planes, mask, b.melody, b.z_mel).mel_h is None
    assert close(fused.step_roles(z_pred, z_prev, mask, h), plain.step_roles(z_pred, z_prev,
                                                                              mask, h))
    oa = fused.observe_and_step_roles(melody, mask, h[0], z_prev, h, mask)
    ob = plain.observe_and_step_roles(melody, mask, h[0], z_prev, h, mask)
    assert close(oa[:3], ob[:3]) and close(oa[3], ob[3])
    assert close(oa[0], plain.encode_melody(melody, mask))
    fused.rnn = None  # the fused layout of a card without roles_rnn
    assert close(fused.step_roles(z_pred, z_prev, mask, h), plain.step_roles(z_pred, z_prev,
                                                                              mask, h))
    assert close(fused.observe_and_step_roles(melody, mask, h[0], z_prev, h, mask)[3], ob[3])


@pytest.mark.slow
def test_slim_card_plays_and_measures_what_the_full_card_does(trained, tmp_path):
    """`fuse --slim` drops the per-role graphs: same accompaniment, same NLL, from the fused
    graphs alone; the NLL through the fused graphs equals the per-role one."""
    import shutil

    from engine.evaluation.accompanist_graphs import model_nll_per_frame
    from engine.training.accompanist.fuse import add_fused

    tr, card_path = trained
    for f in card_path.parent.glob(card_path.stem + "*"):
        shutil.copy(f, tmp_path / f.name)
    slim_path = tmp_path / card_path.name
    add_fused(slim_path, slim=True)
    slim_card = ModelCard.read(slim_path)
    assert not any(c.startswith(("enc_alto", "dec_alto", "rnn_alto")) for c in slim_card.files)
    assert not (tmp_path / f"{slim_card.name}.rnn_alto.onnx").exists()
    full = Accompanist.load(str(card_path), providers="cpu")
    slim = Accompanist.load(str(slim_path), providers="cpu")
    song = melody_34_with_pickup()
    a = full.accompany(song, temperature=0.5, seed=2)
    b = slim.accompany(song, temperature=0.5, seed=2)
    assert [t.notes for t in a.tracks] == [t.notes for t in b.tracks]
    pieces = tr.prepared.split("train")[:3]
    ref = model_nll_per_frame(full, pieces, per_role=True)
    assert model_nll_per_frame(full, pieces, per_role=False) == pytest.approx(ref, rel=1e-5)
    assert model_nll_per_frame(slim, pieces) == pytest.approx(ref, rel=1e-5)


def test_decode_lines_holds_a_note_until_an_onset_says_otherwise():
    from engine.models.line_decoding import decode_lines

    S, P = 8, 5
    ac = np.full((2, S, P), -6.0)
    on = np.full((2, S, P), -6.0)
    # row 0: pitch 1 for 4 steps, then pitch 3 (struck); step 5 flickers to pitch 4 without an
    # onset: a per-step argmax would play it, the line keeps pitch 3
    ac[0, :4, 1] = 2.0
    on[0, 0, 1] = 2.0
    ac[0, 4:, 3] = 2.0
    on[0, 4, 3] = 2.0
    ac[0, 5, 4] = 2.5
    # row 1: held over the bar line (pitch 2), no onset anywhere; the last two steps are
    # outside the bar
    ac[1, :, 2] = 1.0
    planes = decode_lines(on, ac, np.array([0.5, 0.5]), np.array([0.5, 0.5]),
                          np.arange(S) < 6, held=np.array([-1, 2]))
    assert planes.shape == (2, 2, S, P)
    assert planes[0, 1, :4, 1].all() and planes[0, 1, 4:6, 3].all()
    assert not planes[0, 1, 5, 4] and not planes[0, 1, 6:].any()
    assert np.flatnonzero(planes[0, 0].any(axis=1)).tolist() == [0, 4]
    assert planes[1, 1, :6, 2].all() and not planes[1, 0].any() and not planes[1, 1, 6:].any()
    # without the held note the line must be struck: here the onset's cost (-6) outweighs the
    # gain of sounding (5 steps x 1.0), so the voice rests
    ac[1, 5, 2] = -6.0
    assert not decode_lines(on, ac, np.array([0.5, 0.5]), np.array([0.5, 0.5]),
                            np.arange(S) < 6, held=np.array([-1, -1]))[1].any()
    assert decode_lines(on, ac, np.array([0.5, 0.5]), np.array([0.5, 0.5]),
                        np.arange(S) < 6, held=np.array([-1, 2]))[1, 1, :5, 2].all()
    assert decode_planes(on[0], ac[0], 0.5, 0.5, max_voices=1)[1, 5, 4]  # the flicker


def test_decode_planes_keeps_the_likeliest_voice():
    ac = np.full((4, 6), -5.0)
    ac[:, 2] = 2.0
    ac[:, 3] = 1.0
    on = np.full((4, 6), -5.0)
    on[0, 2] = 3.0
    planes = decode_planes(on, ac, 0.5, 0.5, max_voices=1)
    assert planes[1].sum() == 4 and planes[1][:, 2].all()
    assert planes[0].sum() == 1 and planes[0][0, 2]
    assert decode_planes(on, ac, 0.5, 0.5, max_voices=2)[1].sum() == 8


@pytest.mark.slow
def test_ddp_two_cpu_processes(tmp_path):
    pytest.importorskip("torch")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
           "--standalone", "-m", "studio", "train", "accompanist",
           "--data", "toy:10", "--epochs", "1", "--device", "cpu", "--out", str(tmp_path),
           "--name", "acc-ddp", "--latent", "8", "--rnn-hidden", "16", "--batch-bars", "32"]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    lines = [json.loads(x) for x in res.stdout.splitlines() if x.startswith("{")]
    assert lines[0]["event"] == "data" and lines[0]["world_size"] == 2
    stages = {x["stage"] for x in lines if x["event"] == "epoch"}
    assert stages == {"vae", "melody_rnn", "acc_rnn"}
    # only rank 0 prints: one line per stage epoch
    assert sum(1 for x in lines if x["event"] == "epoch") == 3
    assert (tmp_path / "acc-ddp.json").exists()


@pytest.mark.slow
def test_training_on_a_folder_of_midi_files(tmp_path):
    """The user's own files: any track names become roles (here one, "bass"), 3/4 and 4/4."""
    pytest.importorskip("torch")
    from engine.midi_io import write_midi
    from engine.training.accompanist.data import toy_songs
    from engine.training.accompanist.train import train

    folder = tmp_path / "midi"
    folder.mkdir()
    for pid, _, song in toy_songs(24, seed=4):
        song.tracks = [song.tracks[0], song.tracks[3]]
        song.tracks[0].name, song.tracks[1].name = "Lead", "Bass"
        write_midi(song, folder / f"{pid}.mid")
    card = train(f"folder:{folder}", tmp_path / "out", epochs=1, device="cpu", name="acc-folder",
                 model_cfg=ModelConfig(**TINY), train_cfg=TrainConfig(batch_bars=64, batch_seqs=4))
    model = Accompanist.load(str(card), providers="cpu")
    assert model.roles == ("bass",)
    out = model.accompany(melody_34_with_pickup())
    assert [t.name for t in out.tracks] == ["Melody", "Bass"]


def unlikely_bar(model):
    """Per role (onset, active) logits of one bar with every cell very unlikely, and its mask:
    tests write the few cells they need."""
    S = model.max_bar_steps
    logits = [(np.full((S, r.spec.n_pitches), -8.0, np.float32),
               np.full((S, r.spec.n_pitches), -8.0, np.float32)) for r in model.role_infos]
    return logits, np.ones((1, S), np.float32)


@pytest.mark.slow
def test_key_prior_moves_a_voice_from_a_black_key_to_the_scale(trained):
    _, card_path = trained
    model = Accompanist.load(str(card_path), providers="cpu")
    logits, mask = unlikely_bar(model)
    for r, (on, ac) in zip(model.role_infos, logits):
        off = r.off_key(frozenset((0, 2, 4, 5, 7, 9, 11))).astype(bool)
        black = int(np.flatnonzero(off)[len(np.flatnonzero(off)) // 2])
        on[0, black] = on[0, black + 1] = 4.0
        ac[:, black], ac[:, black + 1] = 3.0, 2.0  # a black key, a white key just under it
        assert (r.spec.low_pitch + black) % 12 in (1, 3, 6, 8, 10)
        assert (r.spec.low_pitch + black + 1) % 12 not in (1, 3, 6, 8, 10)

    def played(prior):
        sess = model.session(key=Key(0, "major"), key_prior=prior)
        return [int(np.flatnonzero(p[1, 0])[0]) for p in sess._decide(logits, mask)]

    blacks = played(0.0)
    assert played(2.0) == [b + 1 for b in blacks]  # 3 - 2 < 2: the scale note wins
    assert played(0.5) == blacks  # a strong chromatic note still passes a weak prior
    with pytest.raises(Exception, match="key prior"):
        model.session(key_prior=-1.0)


@pytest.mark.slow
def test_key_prior_waits_for_a_live_session_to_know_the_key(trained):
    _, card_path = trained
    model = Accompanist.load(str(card_path), providers="cpu")
    bar = [Note(0, 480, 64), Note(480, 960, 66), Note(960, 1440, 68), Note(1440, 1920, 69)]
    got = []
    for prior in (0.0, 50.0):
        sess = model.session(temperature=1.0, seed=4, key_prior=prior)
        first = sess.accompany_next(1920, 480, melody_notes=bar)
        sess.observe(bar, 1920, 480)
        got.append((first, sess.priors.key_known))
    # the first bar is played before any key estimate: the prior cannot apply yet
    assert got[0][0] == got[1][0]
    assert got[1][1]  # four pitch classes heard: from now on it does


@pytest.mark.slow
def test_onset_prior_asks_a_new_note_to_be_surer(trained):
    _, card_path = trained
    model = Accompanist.load(str(card_path), providers="cpu")
    logits, mask = unlikely_bar(model)
    for on, ac in logits:
        ac[:8, 10], ac[8:, 12] = 3.0, 3.0  # a line that moves at step 8...
        on[0, 10], on[8, 12] = 4.0, 0.0  # ...with a doubtful onset there
        on[4, 10] = 0.5  # and a doubtful re-strike of the held note

    def onsets(prior):
        sess = model.session(key=Key(0, "major"), onset_prior=prior)
        return [np.flatnonzero(p[0].any(axis=1)).tolist() for p in sess._decide(logits, mask)]

    assert all(o == [0, 4, 8] or o == [0, 8] for o in onsets(0.0))
    # surer onsets only: the re-strike goes; the move stays (a held note cannot change pitch)
    assert onsets(3.0) == [[0, 8]] * len(model.roles)


def test_decode_lines_does_not_stutter_on_one_pitch():
    from engine.models.line_decoding import decode_lines

    S, P = 8, 4
    ac = np.full((1, S, P), -6.0)
    on = np.full((1, S, P), -6.0)
    ac[0, :, 2] = 2.0
    on[0, :, 2] = 1.0  # every step would like a new onset of the same pitch
    on[0, 6, 1], ac[0, 6:, 1] = 3.0, 4.0  # and the line moves at step 6, after one step
    planes = decode_lines(on, ac, np.array([0.5]), np.array([0.5]), np.ones(S, bool))
    onsets = np.flatnonzero(planes[0, 0].any(axis=1)).tolist()
    lengths = np.diff(onsets + [S])
    assert planes[0, 1].sum(axis=1).tolist() == [1] * S  # one line, sounding throughout
    assert onsets[0] == 0 and 6 in onsets and planes[0, 1, 6:, 1].all()
    # re-strikes of pitch 2 happen, but never after a note one step long
    assert all(n >= 2 for n, o in zip(lengths, onsets) if o + n < 6)


def test_compiled_line_decision_matches_the_numpy_loop():
    from engine.models import viterbi
    from engine.models.line_decoding import decode_lines

    assert viterbi.kernel() is not None  # numba is a runtime dependency
    rng = np.random.default_rng(0)
    B, S, P = 3, 16, 12
    for _ in range(300):
        on, ac = (rng.normal(-2, 3, (B, S, P)).astype(np.float32) for _ in range(2))
        args = (on, ac, rng.uniform(0.2, 0.8, B), rng.uniform(0.2, 0.8, B),
                np.arange(S) < rng.integers(6, S + 1), rng.integers(-1, P, B))
        assert np.array_equal(decode_lines(*args), decode_lines(*args, compiled=False))


@pytest.mark.slow
def test_a_model_trained_now_normalises_the_tonic_to_c(trained):
    _, card_path = trained
    model = Accompanist.load(str(card_path), providers="cpu")
    assert model.tonic_normalised
    assert model.normalising_shift(Key(9, "minor")) == 3  # A minor -> C minor, not A minor
    assert model.normalising_shift(Key(7, "major")) == 5  # G -> C: up a fourth (in -6..+5)
    sess = model.session(key=Key(9, "minor"), key_prior=2.0, tonal_prior=0.0)
    # C minor's scale (with its raised leading tone) is in key, E natural is not
    low = model.role_infos[0].spec.low_pitch
    pen = sess.priors.key_pen[0]
    assert pen[(60 - low)] == 0 and pen[(63 - low)] == 0 and pen[(71 - low)] == 0
    assert pen[(64 - low)] == 2.0


@pytest.mark.slow
def test_the_tonal_prior_leans_on_the_training_voices_degrees(trained):
    from engine.models.accompanist_priors import TONAL_CLIP

    _, card_path = trained
    model = Accompanist.load(str(card_path), providers="cpu")
    shares = np.array([0.3, 0.0, 0.1, 0.0, 0.1, 0.05, 0.0, 0.3, 0.0, 0.1, 0.0, 0.05])
    model.tonal_profile = {"major": shares, "minor": shares}
    sess = model.session(key=Key(2, "major"), key_prior=0.0, tonal_prior=1.5)  # D -> C
    low = model.role_infos[0].spec.low_pitch
    pen = sess.priors.key_pen[0]
    assert pen[60 - low] == 0 and pen[67 - low] == 0  # tonic and dominant: the commonest
    assert pen[62 - low] == pytest.approx(1.5 * np.log(3), rel=1e-5)  # a third as common
    assert pen[61 - low] == pytest.approx(1.5 * TONAL_CLIP)  # never sounded: clipped
    # off (0): no penalty; a card without a profile: none either
    assert not model.session(key=Key(2, "major"), key_prior=0.0,
                             tonal_prior=0.0).priors.key_pen[0].any()
    model.tonal_profile = {}
    assert not model.session(key=Key(2, "major"), key_prior=0.0,
                             tonal_prior=1.5).priors.key_pen[0].any()


def test_melody_key_counts_the_last_note():
    from engine.music import melody_key

    # a tune that leans on G and D and then ends on C: the final note tips it to C major
    tune = [Note(i * 480, (i + 1) * 480, p) for i, p in
            enumerate([67, 67, 62, 71, 69, 72, 67, 65, 62, 67, 62, 60])]
    assert melody_key(tune, final=False).tonic == 7
    assert melody_key(tune).tonic == 0
    assert melody_key([]) is None


@pytest.mark.slow
def test_the_ceiling_keeps_every_voice_under_the_melody(trained):
    _, card_path = trained
    model = Accompanist.load(str(card_path), providers="cpu")
    logits, mask = unlikely_bar(model)
    mel_low = model.mel_spec.low_pitch
    for r, (on, ac) in zip(model.role_infos, logits):
        high = 70 - r.spec.low_pitch  # every voice wants to sing G#4/A4, above a melody on E4
        on[0, high] = 4.0
        ac[:, high] = 3.0
        on[0, high - 10] = 1.0
        ac[:, high - 10] = 1.0
    sess = model.session(key=Key(0, "major"), key_prior=0.0)
    melody = np.zeros((2, model.max_bar_steps, model.mel_spec.n_pitches), bool)
    melody[:, :, 64 - mel_low] = True  # E4 held through the bar
    free = sess._decide(logits, mask)
    under = sess._decide(logits, mask, sess._ceiling(melody, mask))
    for r, f, u in zip(model.role_infos, free, under):
        assert r.spec.low_pitch + np.flatnonzero(f[1].any(axis=0)).max() == 70
        assert r.spec.low_pitch + np.flatnonzero(u[1].any(axis=0)).max() <= 64


@pytest.mark.slow
def test_the_cadence_puts_the_tonic_in_the_bass_under_the_last_note(trained):
    _, card_path = trained
    model = Accompanist.load(str(card_path), providers="cpu")
    logits, mask = unlikely_bar(model)
    for r, (on, ac) in zip(model.role_infos, logits):
        d = 55 + 12 * ((r.spec.low_pitch - 55) // 12 + 1) - r.spec.low_pitch  # a G in range
        on[0, d] = 4.0
        ac[:, d] = 3.0  # every voice holds G, the dominant, through the bar
        c = d + 5  # and C, the tonic, is weaker
        on[0, c] = on[8, c] = 2.0
        ac[:, c] = 1.0
    sess = model.session(key=Key(0, "major"), key_prior=0.0)
    plain = sess._decide(logits, mask)
    final = sess._decide(logits, mask, cadence=8)  # the melody's last note from step 8
    bass = [i for i, r in enumerate(model.role_infos) if r is sess.priors.lowest][0]
    low = model.role_infos[bass].spec.low_pitch
    assert (low + np.flatnonzero(plain[bass][1, 15])[0]) % 12 == 7
    assert (low + np.flatnonzero(final[bass][1, 15])[0]) % 12 == 0
    assert (low + np.flatnonzero(final[bass][1, 0])[0]) % 12 == 7  # before the cadence: as it was


@pytest.mark.slow
def test_live_replay_accompanies_a_pickup_tune_bar_by_bar_on_a_virtual_clock(trained):
    from engine.evaluation.accompanist_checks import live_accompany

    _, card_path = trained
    model = Accompanist.load(str(card_path), providers="cpu")
    song = melody_34_with_pickup()
    mel = song.tracks[0].notes
    parts = live_accompany(model, song, mel, temperature=0.0)
    assert len(parts) == len(model.roles)
    notes = [n for p in parts for n in p]
    assert notes, "a live session accompanies"
    assert all(0 <= n.start < n.end <= mel[-1].end for n in notes)
    # planned one bar at a time on the tune's 3/4 bars (the pickup's bar is a bar of rest
    # before the first downbeat at tick 480): no note crosses a bar line
    for n in notes:
        assert (n.start - 480) // 1440 == (n.end - 1 - 480) // 1440


def test_chord_plans_follow_the_chords_step_by_step_through_a_pickup():
    from engine.models.accompanist import chord_plans
    from engine.representation import BarSpec, bar_grid

    song = melody_34_with_pickup()
    spec = BarSpec(low_pitch=48, n_pitches=36, steps_per_beat=4, max_bar_steps=16)
    grid = bar_grid(song, spec, end=song.end)
    # G major from the pickup, C major from the second beat of the first full bar
    chords = [(0, 7, "maj"), (960, 0, "maj")]
    plans = chord_plans(grid, chords, 5, 16)  # G major -> C: up a fourth
    assert len(plans) == len(grid)
    pickup, first = plans[0], plans[1]
    # the pickup's beat sits at the end of its unit (steps 8-11 of a 3/4 bar): G, moved to C
    assert pickup.root[8] == 0 and set(np.flatnonzero(pickup.tones[8])) == {0, 4, 7}
    # the first full bar: G for its first beat (steps 0-3), then C (moved to F)
    assert list(first.root[:8]) == [0] * 4 + [5] * 4
    assert set(np.flatnonzero(first.tones[5])) == {5, 9, 0}
    # before the first chord, nothing is planned: every pitch class passes
    assert chord_plans(grid, [(1440, 0, "min")], 0, 16)[0].tones.all()
    assert (chord_plans(grid, [(1440, 0, "min")], 0, 16)[0].root == -1).all()


@pytest.mark.slow
def test_the_chord_prior_moves_the_voices_onto_the_planned_chord(trained):
    from engine.models.accompanist_priors import ChordPlan

    _, card_path = trained
    model = Accompanist.load(str(card_path), providers="cpu")
    logits, mask = unlikely_bar(model)
    for r, (on, ac) in zip(model.role_infos, logits):
        d = 50 + 12 * ((r.spec.low_pitch - 50) // 12 + 1) - r.spec.low_pitch  # a D in range
        on[0, d] = 4.0
        ac[:, d] = 3.0  # every voice wants D, outside the planned C major
        on[0, d + 2] = 2.0
        ac[:, d + 2] = 2.0  # E, the chord's third, weaker
        on[0, d - 2] = 2.0
        ac[:, d - 2] = 2.0  # C, its root, as weak
    plan = ChordPlan.of_steps([(0, "maj")] * model.max_bar_steps, 0)

    def played(prior):
        sess = model.session(key=Key(0, "major"), key_prior=0.0, chord_prior=prior)
        return [{(r.spec.low_pitch + p) % 12 for p in np.flatnonzero(planes[1].any(axis=0))}
                for r, planes in zip(model.role_infos, sess._decide(logits, mask, chord=plan))]

    assert all(pcs == {2} for pcs in played(0.0))  # no prior: D
    steered = played(2.0)
    assert all(pcs <= {0, 4} and pcs for pcs in steered)  # onto the chord
    assert steered[-1] == {0}  # the bass on its root
    # no chord planned at a step: the voices are left alone
    free = ChordPlan.of_steps([None] * model.max_bar_steps, 0)
    sess = model.session(key=Key(0, "major"), key_prior=0.0, chord_prior=2.0)
    assert [np.array_equal(a, b) for a, b in zip(
        sess._decide(logits, mask, chord=free), sess._decide(logits, mask))] == [True] * 3
    with pytest.raises(Exception, match="chord prior"):
        model.session(chord_prior=-1.0)


@pytest.mark.slow
def test_accompany_and_live_follow_the_band_chord_model_with_a_strong_chord_prior(trained):
    from engine.models.band_chords import chord_label
    from engine.models.band_patterns import QUALITY_TONES

    _, card_path = trained
    model = Accompanist.load(str(card_path), providers="cpu")
    band = model.chord_model()
    assert band is not None, "the bundled band model plans the chords"
    song = melody_34_with_pickup()
    mel = song.tracks[0].notes
    out = model.accompany(song, temperature=0.0, chord_prior=30.0, key=Key(0, "major"))
    chords = band.chords(song, mel, key=Key(0, "major"))
    voices = [n for t in out.tracks[1:] for n in t.notes]
    assert len(voices) >= 8
    last = max(n.start for n in voices)
    for n in voices:
        if n.start == last:
            continue  # the cadence settles the last chord on the tonic triad
        _, root, quality = [c for c in chords if c[0] <= n.start][-1]
        assert (n.pitch - root) % 12 in QUALITY_TONES[quality], (n, chords)
    # live: each bar follows the chord chosen for it before it is heard
    sess = model.session(temperature=0.0, key=Key(0, "major"), chord_prior=30.0)
    bar = [Note(0, 480, 72), Note(480, 960, 76), Note(960, 1440, 79)]
    chosen = []
    choose = sess._follower().next_chord
    sess._follower().next_chord = lambda *a, **k: chosen.append(choose(*a, **k)) or chosen[-1]
    sung = 0
    for _ in range(4):
        parts = sess.accompany_next(1440, 480, pending=bar)
        sess.observe(bar, 1440, 480, meter=(3, 4))
        root, quality = chord_label(chosen[-1])
        for n in (n for p in parts for n in p):
            assert (n.pitch - root) % 12 in QUALITY_TONES[quality], (n, root, quality)
            sung += 1
    assert len(chosen) == 4 and sung
    # without a band model the voices go without the chord prior (and say so in the log)
    model._chords = False
    plain = model.accompany(song, temperature=0.0, chord_prior=30.0, key=Key(0, "major"))
    assert [t.notes for t in plain.tracks] == [
        t.notes for t in model.accompany(song, temperature=0.0, chord_prior=0.0,
                                         key=Key(0, "major")).tracks]


@pytest.mark.slow
def test_live_sessions_take_the_cards_live_priors_and_accompany_the_offline_ones(trained):
    _, card_path = trained
    card = ModelCard.read(card_path)
    card.representation.update(default_tonal_prior=1.0, default_chord_prior=2.0,
                               default_live_priors={"tonal_prior": 0.5, "chord_prior": 0.0})
    model = Accompanist(card, providers="cpu")
    live = model.session()
    assert (live.priors.tonal_prior, live.priors.chord_prior) == (0.5, 0.0)
    assert live.priors.key_prior == model.default_key_prior  # not named live: the offline one
    assert model.session(tonal_prior=0.25).priors.tonal_prior == 0.25  # asked for: as asked
    seen = []
    real = model.session
    model.session = lambda **kw: seen.append(kw) or real(**kw)
    model.accompany(melody_34_with_pickup(), temperature=0.0)
    assert (seen[0]["tonal_prior"], seen[0]["chord_prior"]) == (1.0, 2.0)
