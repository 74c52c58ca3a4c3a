"""docs/RESULTS.md is written by commands, one section each, between markers.

Every `eval`/`bench` command calls `update_section(name, markdown)`; the rest of the file is kept,
so commands can run in any order and each regenerates only its own figures.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import re
import subprocess
from pathlib import Path

from engine.fileio import atomic_write_text

RESULTS = Path(__file__).resolve().parents[2] / "docs" / "RESULTS.md"
HEADER = ("# Results\n\nEvery figure below was printed by the command named in its section and "
          "written here by it. Regenerate with `make eval` (all) or the section's command.\n")


def provenance() -> str:
    """One line: date, commit and machine, for the top of a section."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, cwd=RESULTS.parent, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    date = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    cpu = platform.processor() or platform.machine()
    return (f"_{date}, commit {commit or 'unknown'}, {platform.system()} {cpu}, "
            f"{os.cpu_count()} cores, Python {platform.python_version()}_")


def update_section(name: str, markdown: str, path: Path | None = None) -> Path:
    path = path or RESULTS
    begin, end = f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"
    block = f"{begin}\n{markdown.strip()}\n{end}"
    text = path.read_text() if path.exists() else HEADER
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else (
        text.rstrip() + "\n\n" + block + "\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, text if text.endswith("\n") else text + "\n")
    return path
