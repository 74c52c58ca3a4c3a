"""The import rules of docs/ARCHITECTURE.md, checked on the source (AST), not by convention."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def _sources(*packages: str):
    for pkg in packages:
        yield from sorted((ROOT / pkg).rglob("*.py"))


def test_engine_and_export_never_import_qt_or_studio():
    bad = {str(p.relative_to(ROOT)): sorted(_imports(p) & {"PySide6", "studio"})
           for p in _sources("engine", "export")}
    assert {k: v for k, v in bad.items() if v} == {}


def test_export_does_not_import_studio_and_engine_does_not_import_export():
    bad = [str(p.relative_to(ROOT)) for p in _sources("engine") if "export" in _imports(p)]
    assert bad == []


def test_only_training_imports_torch():
    bad = [str(p.relative_to(ROOT)) for p in _sources("engine", "export", "studio")
           if "torch" in _imports(p) and "training" not in p.relative_to(ROOT).parts]
    assert bad == []


def test_cli_starts_without_torch():
    code = ("import sys; sys.modules['torch'] = None\n"
            "from studio.cli import build_parser\n"
            "build_parser().parse_args(['--help'])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert "popmusicnet" in out.stdout


def _top_level_imports(path: Path) -> set[str]:
    """Modules imported when `path` is imported (not inside its functions)."""
    names: set[str] = set()
    for node in ast.parse(path.read_text(), filename=str(path)).body:
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


#: The two CLI modules whose job is the window: `popmusicnet studio` and `bench studio`.
QT_COMMANDS = {"studio/cli/commands/studio.py", "studio/cli/benchmarks/studio.py"}


def test_the_cli_never_imports_qt():
    """Building the parser imports every command and benchmark module: none of them imports
    PySide6 when loaded; only the window's own command and benchmark do, when they run."""
    loaded = [str(p.relative_to(ROOT)) for p in _sources("studio/cli")
              if "PySide6" in _top_level_imports(p)]
    lazy = {str(p.relative_to(ROOT)) for p in _sources("studio/cli") if "PySide6" in _imports(p)}
    assert loaded == [] and lazy <= QT_COMMANDS


def test_a_real_command_runs_with_torch_and_qt_blocked(tmp_path):
    """`popmusicnet accompany` on the demo, in a process where importing torch or PySide6 fails:
    the runtime path needs neither."""
    out = tmp_path / "demo-acc.mid"
    code = ("import sys; sys.modules['torch'] = None; sys.modules['PySide6'] = None\n"
            "from studio.cli import main\n"
            f"rc = main(['accompany', 'assets/demo/melody.mid', '-o', {str(out)!r}, '--seed', '0'])\n"
            "print('loaded', sorted(m for m in sys.modules if m.split('.')[0] in "
            "('torch', 'PySide6') and sys.modules[m] is not None))\n"
            "sys.exit(rc)\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    assert "loaded []" in run.stdout and out.stat().st_size > 0
