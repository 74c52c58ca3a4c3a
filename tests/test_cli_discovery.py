"""How the CLI finds eval kinds and benchmarks: a broken module is an error, not a missing kind;
`eval all` and `bench all` run everything and report the worst status."""

from __future__ import annotations

import types

import pytest

import engine.evaluation
from studio.cli.commands import bench, eval as eval_cmd


def test_an_eval_kind_that_fails_to_import_stops_discovery(tmp_path, monkeypatch):
    (tmp_path / "zz_broken.py").write_text("import popmusicnet_no_such_module\nKIND = 'broken'\n")
    monkeypatch.setattr(engine.evaluation, "__path__", [*engine.evaluation.__path__,
                                                        str(tmp_path)])
    with pytest.raises(ImportError, match="popmusicnet_no_such_module"):
        list(eval_cmd._kind_modules())


def _kind(name, rc, ran):
    def run(args):
        ran.append(name)
        return rc

    return types.SimpleNamespace(KIND=name, NAME=name, HELP=name, register=lambda p: None,
                                 run_cli=run, run=run)


def test_eval_all_runs_every_kind_and_returns_the_worst_status(monkeypatch):
    ran: list[str] = []
    kinds = [_kind("a", 0, ran), _kind("b", 2, ran), _kind("c", 1, ran)]
    monkeypatch.setattr(eval_cmd, "_kind_modules", lambda: iter(kinds))
    assert eval_cmd._run_all() == 2
    assert ran == ["a", "b", "c"]


def test_bench_all_runs_every_benchmark_and_returns_the_worst_status(monkeypatch):
    ran: list[str] = []
    benches = [_kind("a", 1, ran), _kind("b", 0, ran)]
    monkeypatch.setattr(bench, "benchmark_modules", lambda: iter(benches))
    assert bench.run_all(types.SimpleNamespace(verbose=0)) == 1
    assert ran == ["a", "b"]


def test_every_eval_kind_and_benchmark_is_found():
    kinds = {m.KIND for m in eval_cmd._kind_modules()}
    assert {"accompanist", "band", "classifiers", "continuation", "gan", "morph"} <= kinds
    assert {m.NAME for m in bench.benchmark_modules()} >= {"accompanist", "live", "render",
                                                           "studio"}


def test_a_training_kind_that_fails_to_import_stops_discovery(tmp_path, monkeypatch):
    import engine.training
    from studio.cli.commands import train

    kind = tmp_path / "zz_broken"
    kind.mkdir()
    (kind / "__init__.py").write_text("")
    (kind / "cli.py").write_text("import popmusicnet_no_such_module\nKIND = 'broken'\n")
    monkeypatch.setattr(engine.training, "__path__", [*engine.training.__path__, str(tmp_path)])
    with pytest.raises(ImportError, match="popmusicnet_no_such_module"):
        list(train.kind_modules())


def test_every_training_kind_is_found():
    from studio.cli.commands import train

    kinds = {m.KIND for m in train.kind_modules()}
    assert {"accompanist", "band", "classifier", "continuation", "gan", "morph"} <= kinds
