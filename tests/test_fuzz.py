"""The command line against a few hundred mutated MIDI files (seeded, built by the fuzzer in
scripts/fuzz.py; `make fuzz` runs 10,000): only exit codes 0 and 2, no run past 20 s of CPU
time, no output left after a non-zero exit, a worker's peak memory under 1 GiB.

One child process runs them all through `studio.cli.main` in-process; its peak memory is its own
high-water mark (VmHWM), not the ru_maxrss that a process started from this test session
inherits from it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_fuzzed_midi_files_through_the_cli():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "fuzz.py"), "--files", "300", "--workers", "1",
         "--seed", "7", "--render-every", "30", "--accompany-every", "30", "--json"],
        capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    assert res["files"] == 300
    assert res["commands"]["render"] >= 10 and res["commands"]["accompany"] >= 10
    # The mutations must reach both outcomes, or the run shows nothing.
    assert res["codes"].get("0", 0) >= 50 and res["codes"].get("2", 0) >= 50, res["codes"]
    assert set(res["codes"]) <= {"0", "2"}, (res["codes"], res["bad"])
    assert res["other_codes"] == 0, res["bad"]
    assert res["hangs"] == 0, res["bad"]
    assert res["left_behind"] == 0, res["bad"]
    assert 0 < res["peak_rss_mib"] < 1024, res["peak_rss_mib"]
    assert proc.returncode == 0, proc.stdout[-2000:]


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc (Linux)")
def test_peak_memory_is_the_process_own_not_its_parents():
    """A child started by a process that has touched 400 MiB reports its own peak (VmHWM),
    where ru_maxrss, kept across exec, would report the parent's."""
    ballast = b"\x01" * (400 * 2**20)
    code = ("import resource, sys; sys.path.insert(0, 'scripts'); import fuzz; "
            "print(fuzz.peak_rss_mib(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=120, check=True).stdout.split()
    del ballast
    own, inherited = float(out[0]), float(out[1])
    assert own < 300, own
    assert inherited > 400, inherited  # the kernel's ru_maxrss: why VmHWM is read instead
