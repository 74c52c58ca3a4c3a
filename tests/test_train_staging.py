"""Training outputs are staged (engine.fileio.staged_folder): built in a temporary folder beside
`--out` and installed all or nothing, so a failure, Ctrl-C or SIGTERM leaves nothing half-built.
Reproducers are built here: a folder of melody-only MIDI files, a kind that fails midway."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from engine.errors import UserInputError
from engine.fileio import final_name, staged_folder
from engine.midi_io import write_midi
from engine.music import ROLE_MELODY, Note, Song, Track
from studio.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]


def _listing(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


def test_staged_folder_installs_all_into_a_new_folder(tmp_path):
    out = tmp_path / "a" / "b" / "models"
    with staged_folder(out) as stage:
        assert stage.parent == out.parent and stage.is_dir() and not out.exists()
        (stage / "m.onnx").write_bytes(b"graph")
        (stage / "m.json").write_text("{}")
        assert final_name(stage / "m.json") == str(out / "m.json")
        assert final_name(tmp_path / "elsewhere") == str(tmp_path / "elsewhere")
    assert _listing(out) == ["m.json", "m.onnx"]
    assert _listing(out.parent) == ["models", "models/m.json", "models/m.onnx"]
    assert final_name(stage / "m.json") == str(stage / "m.json")  # only while staging


def test_staged_folder_replaces_same_names_and_keeps_the_rest(tmp_path):
    out = tmp_path / "models"
    out.mkdir()
    (out / "other.json").write_text("kept")
    (out / "m.json").write_text("old")
    with staged_folder(out) as stage:
        (stage / "m.json").write_text("new")
    assert (out / "m.json").read_text() == "new" and (out / "other.json").read_text() == "kept"
    assert _listing(tmp_path) == ["models", "models/m.json", "models/other.json"]


@pytest.mark.parametrize("exc", [UserInputError("bad data"), KeyboardInterrupt(),
                                 RuntimeError("a bug")])
def test_staged_folder_leaves_nothing_on_failure(tmp_path, exc):
    out = tmp_path / "new" / "models"
    with pytest.raises(type(exc)):
        with staged_folder(out) as stage:
            (stage / "m.onnx").write_bytes(b"half")
            out.mkdir()  # as a checkpoint writer would, before its first file is complete
            raise exc
    assert _listing(tmp_path) == []  # the empty folder and the parents made are gone too
    existing = tmp_path / "kept"
    existing.mkdir()
    (existing / "m.json").write_text("old")
    with pytest.raises(type(exc)):
        with staged_folder(existing) as stage:
            (stage / "m.json").write_text("half")
            raise exc
    assert _listing(tmp_path) == ["kept", "kept/m.json"]
    assert (existing / "m.json").read_text() == "old"


def test_sigterm_while_staging_leaves_nothing(tmp_path):
    out = tmp_path / "new" / "models"
    code = ("import os, signal, sys, time; from engine.fileio import staged_folder\n"
            f"with staged_folder({str(out)!r}) as stage:\n"
            "    (stage / 'm.onnx').write_bytes(b'half')\n"
            "    os.kill(os.getpid(), signal.SIGTERM)\n"
            "    time.sleep(30)\n"
            "print('not reached')\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=60)
    assert res.returncode == 128 + signal.SIGTERM, res.stderr
    assert "not reached" not in res.stdout
    assert _listing(tmp_path) == []


def test_every_training_kind_has_an_out_folder_the_dispatcher_stages():
    parser = build_parser()
    train = next(a for a in parser._subparsers._group_actions[0].choices.items()
                 if a[0] == "train")[1]
    kinds = train._subparsers._group_actions[0].choices
    assert {"accompanist", "band", "gan", "morph", "continuation"} <= set(kinds)
    for name, kp in kinds.items():
        assert any("--out" in a.option_strings for a in kp._actions), name


def _fake_kind(behaviour: str):
    def run(args):
        out = Path(args.out)
        (out / "model.onnx").write_bytes(b"graph")
        (out / "model.json").write_text("{}")
        if behaviour == "fail":
            raise UserInputError("no usable data")
        return 0
    return run


@pytest.mark.parametrize("given", [str, Path])
def test_dispatcher_installs_on_success_and_nothing_on_failure(tmp_path, given):
    from studio.cli.commands import train

    out = tmp_path / "sub" / "out"
    args = argparse.Namespace(out=given(out), _train=_fake_kind("fail"))
    with pytest.raises(UserInputError):
        train.run(args)
    assert _listing(tmp_path) == [] and args.out == given(out)
    args = argparse.Namespace(out=given(out), _train=_fake_kind("succeed"))
    assert train.run(args) == 0
    assert _listing(tmp_path) == ["sub", "sub/out", "sub/out/model.json", "sub/out/model.onnx"]
    assert args.out == given(out) and args.final_out == out


def _melody_only_folder(root: Path, n: int = 3) -> Path:
    root.mkdir(parents=True)
    for k in range(n):
        notes = [Note(i * 480, i * 480 + 480, 60 + (i * (k + 1)) % 12, 80) for i in range(16)]
        write_midi(Song(tracks=[Track("Lead", 73, role=ROLE_MELODY, notes=notes)]),
                   root / f"tune{k}.mid")
    return root


def test_training_on_melody_only_files_is_a_one_line_error(tmp_path, capsys):
    folder = _melody_only_folder(tmp_path / "tunes")
    out = tmp_path / "models" / "acc"
    code = main(["train", "accompanist", "--data", f"folder:{folder}", "--epochs", "1",
                 "--out", str(out)])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2
    assert len(err) == 1, err
    assert str(folder) in err[0] and "nothing to accompany" in err[0]
    assert "only a melody track" in err[0]
    assert _listing(tmp_path) == ["tunes", "tunes/tune0.mid", "tunes/tune1.mid",
                                  "tunes/tune2.mid"]  # no --out, no staged folder


@pytest.mark.slow
def test_sigterm_during_training_then_resume(tmp_path):
    """A training stopped by SIGTERM installs no model (only its resumable checkpoint stays in
    --out); --resume then finishes and installs the model."""
    out = tmp_path / "acc"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "studio", "train", "accompanist", "--data", "toy:10",
           "--device", "cpu", "--out", str(out), "--name", "acc-term", "--latent", "8",
           "--rnn-hidden", "16", "--batch-bars", "32", "--threads", "1"]
    proc = subprocess.Popen([*cmd, "--epochs", "50"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    try:
        for line in proc.stdout:
            if line.startswith("{") and json.loads(line)["event"] == "epoch":
                break
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM
    assert _listing(tmp_path) in ([], ["acc", "acc/acc-term.ckpt"])

    res = subprocess.run([*cmd, "--epochs", "1", "--resume"], capture_output=True, text=True,
                         cwd=ROOT, env=env, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    files = _listing(tmp_path)
    assert "acc/acc-term.json" in files and "acc/acc-term.ckpt" in files
    assert all(f == "acc" or f.startswith("acc/") for f in files), files  # nothing staged left
    done = [json.loads(x) for x in res.stdout.splitlines() if x.startswith("{")][-1]
    assert done["event"] == "done" and done["card"] == str(out / "acc-term.json")


def test_staged_folder_through_a_symbolic_link(tmp_path):
    real = tmp_path / "a" / "real"
    real.mkdir(parents=True)
    (tmp_path / "link").symlink_to(real)
    with staged_folder(tmp_path / "link") as stage:
        assert stage.parent == real.parent  # beside the target
        (stage / "m.json").write_text("{}")
        assert final_name(stage / "m.json") == str(tmp_path / "link" / "m.json")
    assert (real / "m.json").exists() and (tmp_path / "link").is_symlink()
    assert _listing(tmp_path) == ["a", "a/real", "a/real/m.json", "link"]
    with pytest.raises(UserInputError, match="not a folder"):
        with staged_folder(real / "m.json"):
            pass
