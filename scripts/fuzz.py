"""Fuzz the command line with mutated MIDI files: what it must never do on bad input.

    python scripts/fuzz.py --files 10000 --workers 2      # `make fuzz`
    python scripts/fuzz.py --files 300 --json             # one JSON line (the test suite's run)

A seeded corpus of valid songs is built in code (several meters, a pickup, tempo changes, drums,
key signatures, odd resolutions down to 1 tick per beat); each fuzzed file is one of them with
1 to 4 mutations (bit flips, interesting bytes, inserted, deleted, duplicated or spliced
ranges, huge delta times, header fields). Every file goes through the real entry point,
`studio.cli.main`, in this process: `info` and `export` always, `accompany` and `render` for a
share of them. Counted: exit codes other than 0 and 2, hangs, outputs left after a non-zero
exit (the output or any temporary beside it), and the peak resident memory of each worker.

Time is measured two ways, since the machine may be shared: a run is a *hang* when it spends
more than the limit (20 s) of the worker's CPU time (a SIGPROF timer stops it) or more than
`WALL_FACTOR` times the limit of wall-clock time (a SIGALRM timer: a run blocked without
using the CPU). Runs past the limit in wall-clock time only are counted and reported apart,
with the CPU time they took and the load average, so that a loaded machine does not pass for
a hang and a hang does not hide behind the load.

Peak memory is the worker's own high-water mark, VmHWM in /proc/self/status: the kernel keeps
`ru_maxrss` across exec, so a process started by a large one (a test session) would report its
parent's peak.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import multiprocessing
import os
import random
import resource
import signal
import struct
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

INTERESTING = (0x00, 0x01, 0x7F, 0x80, 0x81, 0xFF, 0xFE, 0x2F, 0x51, 0x58, 0x59, 0x90, 0x80)


# -- corpus ------------------------------------------------------------------------------------
def _vlq(n: int) -> bytes:
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


def _smf(tracks: list[bytes], tpb: int = 480, fmt: int = 1) -> bytes:
    out = b"MThd" + struct.pack(">IHHH", 6, fmt, len(tracks), tpb)
    for t in tracks:
        out += b"MTrk" + struct.pack(">I", len(t)) + t
    return out


def seeds() -> list[bytes]:
    """Valid MIDI files, made here: songs written by the program itself and hand-assembled
    files with the events a writer of ours never makes (key signatures, running status)."""
    from engine.midi_io import song_to_midifile
    from engine.music import MeterChange, Note, Song, TempoChange, Track

    rng = random.Random(1234)
    out = []

    def save(song: Song) -> bytes:
        buf = io.BytesIO()
        song_to_midifile(song).save(file=buf)
        return buf.getvalue()

    for k, (tpb, meters, tempos) in enumerate([
        (480, [MeterChange(0, 4, 4)], [TempoChange(0, 120.0)]),
        (96, [MeterChange(0, 1, 4), MeterChange(96, 3, 4)], [TempoChange(0, 90.0)]),
        (384, [MeterChange(0, 6, 8)], [TempoChange(0, 70.0), TempoChange(384 * 6, 140.0)]),
        (3, [MeterChange(0, 4, 4)], [TempoChange(0, 100.0)]),
        (24, [MeterChange(0, 7, 8), MeterChange(24 * 14, 2, 4)], [TempoChange(0, 200.0)]),
    ]):
        tracks = []
        for v, (low, program) in enumerate([(60, 73), (52, 0), (40, 32)][: 1 + k % 3]):
            notes, t = [], 0
            for _ in range(24):
                d = tpb * rng.choice([1, 1, 2]) // (1 if tpb < 4 else rng.choice([1, 2]))
                d = max(d, 1)
                notes.append(Note(t, t + d, low + rng.randrange(12), 60 + rng.randrange(40)))
                t += d
            tracks.append(Track(f"voice {v}" if v else "", program, notes=notes))
        if k == 2:
            tracks.append(Track("Drums", 0, is_drum=True,
                                notes=[Note(i * tpb, i * tpb + tpb // 2, 36) for i in range(16)]))
        out.append(save(Song(tracks=tracks, ticks_per_beat=tpb, meters=meters, tempos=tempos)))
    # Hand-assembled: key signature, text, running status, type 0, 1 tick per beat.
    body = (b"\x00\xff\x59\x02\x02\x00" + b"\x00\xff\x58\x04\x03\x02\x18\x08"
            + b"\x00\xff\x51\x03\x07\xa1\x20" + b"\x00\xff\x01\x05hello"
            + b"\x00\xc0\x18" + b"\x00\x90\x3c\x50" + b"\x60\x3c\x00" + b"\x00\x3e\x50"
            + b"\x60\x3e\x00" + b"\x00\x40\x50" + b"\x81\x40\x40\x00" + b"\x00\xff\x2f\x00")
    out.append(_smf([body], tpb=96, fmt=0))
    tiny = (b"\x00\xff\x58\x04\x02\x02\x18\x08" + b"\x00\x90\x3c\x40" + _vlq(4)
            + b"\x80\x3c\x00" + b"\x00\x90\x40\x40" + _vlq(2) + b"\x80\x40\x00"
            + b"\x00\xff\x2f\x00")
    out.append(_smf([tiny], tpb=1))
    return out


# -- mutations ---------------------------------------------------------------------------------
EVENTS = [  # inserted whole into a track: the events writers get wrong
    b"\xff\x59\x02\x20\x00", b"\xff\x59\x02\x00\x05", b"\xff\x58\x04\x04\x05\x18\x08",
    b"\xff\x58\x04\x00\x02\x18\x08", b"\xff\x58\x04\x07\x09\x18\x08",
    b"\xff\x51\x03\x00\x00\x00", b"\xff\x51\x03\xff\xff\xff", b"\xff\x51\x03\x00\x00\x01",
    b"\xff\x03\x00", b"\xff\x01\x17popmusicnet:role=melody", b"\xff\x01\x14popmusicnet:role=bad",
    b"\x90\x3c\x40", b"\x80\x3c\x00", b"\x90\x3c\x00", b"\x99\x24\x7f", b"\xc0\x7f",
    b"\xb0\x07\x00", b"\xf0\x03\x01\x02\xf7", b"\xff\x2f\x00", b"\xff\x7f\x00",
    b"\xff\x20\x01\x0f", b"\xe0\x00\x40",
]


def _chunks(data: bytes) -> tuple[bytes, list[bytes]] | None:
    if data[:4] != b"MThd" or len(data) < 14:
        return None
    header, pos, tracks = data[:14], 14, []
    while pos + 8 <= len(data) and data[pos:pos + 4] == b"MTrk":
        n = struct.unpack(">I", data[pos + 4:pos + 8])[0]
        tracks.append(data[pos + 8:pos + 8 + n])
        pos += 8 + n
    return header, tracks


def _events(track: bytes) -> list[tuple[int, bytes]] | None:
    """A valid track's (delta, event bytes), running status made explicit; None if it is not
    one this tokenizer follows."""
    out, pos, status = [], 0, None
    lengths = {0x80: 2, 0x90: 2, 0xA0: 2, 0xB0: 2, 0xC0: 1, 0xD0: 1, 0xE0: 2}
    try:
        while pos < len(track):
            delta = 0
            while True:
                byte = track[pos]
                pos += 1
                delta = (delta << 7) | (byte & 0x7F)
                if byte < 0x80:
                    break
            first = track[pos]
            if first == 0xFF or first in (0xF0, 0xF7):
                k = pos + (2 if first == 0xFF else 1)
                n = 0
                while True:
                    byte = track[k]
                    k += 1
                    n = (n << 7) | (byte & 0x7F)
                    if byte < 0x80:
                        break
                ev, pos = track[pos:k + n], k + n
            else:
                if first >= 0x80:
                    status, pos = first, pos + 1
                if status is None:
                    return None
                n = lengths[status & 0xF0]
                ev, pos = bytes([status]) + track[pos:pos + n], pos + n
            out.append((delta, bytes(ev)))
    except (IndexError, KeyError):
        return None
    return out


def mutate(data: bytes, rng: random.Random, others: list[bytes]) -> bytes:
    """Mostly on one track's events with the chunk lengths kept right (so the parser reaches
    the meaning of the events), sometimes anywhere in the file's bytes."""
    parsed = _chunks(data)
    if parsed and parsed[1] and rng.random() < 0.8:
        header, tracks = parsed
        k = rng.randrange(len(tracks))
        events = _events(tracks[k])
        if events is not None:
            for _ in range(rng.randint(1, 3)):
                i = rng.randrange(len(events) + 1)
                op = rng.randrange(7)
                if op == 0:
                    events.insert(i, (rng.choice([0, 0, 1, 7, 480, 96 * 3000]),
                                      rng.choice(EVENTS)))
                elif op == 1 and events:
                    del events[min(i, len(events) - 1)]
                elif op == 2 and events:
                    j = min(i, len(events) - 1)
                    events.insert(j, events[j])
                elif op == 3 and events:
                    j = min(i, len(events) - 1)
                    events[j] = (rng.choice([0x0FFFFFFF, 1 << 21, 96 * 40000, 0]), events[j][1])
                elif op == 4 and events:  # a data byte of one event
                    j = min(i, len(events) - 1)
                    ev = bytearray(events[j][1])
                    if len(ev) > 1:
                        ev[rng.randrange(1, len(ev))] = rng.choice(
                            [0, 1, 0x7F, 0x80, 0xFF, rng.randrange(256)])
                    events[j] = (events[j][0], bytes(ev))
                elif op == 5 and len(events) > 1:
                    j, m = rng.randrange(len(events)), rng.randrange(len(events))
                    events[j], events[m] = events[m], events[j]
                else:
                    events.insert(i, (0, rng.choice(EVENTS)))
            tracks[k] = b"".join(_vlq(d) + ev for d, ev in events)
        if rng.random() < 0.2:
            header = header[:12] + struct.pack(">H", rng.choice([1, 2, 3, 7, 96, 0x7FFF]))
        if rng.random() < 0.1:
            tracks = tracks + tracks[: rng.randint(1, len(tracks))]
        out = header[:10] + struct.pack(">H", len(tracks)) + header[12:]
        return out + b"".join(b"MTrk" + struct.pack(">I", len(t)) + t for t in tracks)
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if not b:
            b = bytearray(rng.choice(others)[:14])
        op = rng.randrange(10)
        i = rng.randrange(len(b))
        if op == 0:
            b[i] ^= 1 << rng.randrange(8)
        elif op == 1:
            b[i] = rng.choice(INTERESTING)
        elif op == 2:
            b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif op == 3:
            del b[i:i + rng.randint(1, 16)]
        elif op == 4:
            j = rng.randrange(len(b))
            b[i:i] = b[j:j + rng.randint(1, 32)]
        elif op == 5:  # a huge delta time
            b[i:i] = rng.choice([b"\x8f\xff\xff\x7f", b"\x81\x80\x80\x00", b"\xff\xff\xff\x7f"])
        elif op == 6 and len(b) >= 14:  # header fields: format, track count, division
            field = rng.choice([8, 10, 12])
            b[field:field + 2] = struct.pack(">H", rng.choice(
                [0, 1, 2, 3, 0x7FFF, 0x8000 | 0x1E28, 0xFFFF, rng.randrange(65536)]))
        elif op == 7:
            del b[rng.randrange(len(b)):]
        elif op == 8:  # splice another seed in
            other = rng.choice(others)
            j = rng.randrange(len(other))
            b[i:] = other[j:]
        else:  # a chunk length
            k = bytes(b).find(b"MTrk", rng.randrange(len(b)))
            if k >= 0 and k + 8 <= len(b):
                b[k + 4:k + 8] = struct.pack(">I", rng.choice(
                    [0, 1, 0x7FFFFFFF, 0xFFFFFFFF, rng.randrange(1 << 16)]))
    return bytes(b)


# -- running -----------------------------------------------------------------------------------
WALL_FACTOR = 6  # a run blocked this many times the limit in wall-clock time is a hang too


class _Timeout(BaseException):
    pass


def _alarm(signum, frame):
    raise _Timeout()


def peak_rss_mib() -> float:
    """This process's own peak resident memory in MiB (VmHWM), else ru_maxrss."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError, IndexError):
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def run_cli(argv: list[str], limit_s: float) -> tuple[int | str, float, float]:
    """(exit code or what went wrong, wall seconds, CPU seconds) of one `studio.cli.main` run."""
    from studio.cli import main

    err = io.StringIO()
    signal.signal(signal.SIGPROF, _alarm)
    signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_PROF, limit_s)
    signal.setitimer(signal.ITIMER_REAL, limit_s * WALL_FACTOR)
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            code = main(argv)
    except _Timeout:
        code = "hang"
    except SystemExit as exc:  # argparse
        code = exc.code if isinstance(exc.code, int) else 2
    except BaseException as exc:  # noqa: BLE001 - anything escaping main is a finding
        code = f"escaped {type(exc).__name__}"
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.setitimer(signal.ITIMER_REAL, 0)
    return code, time.perf_counter() - t0, time.process_time() - c0


def _fuzz_chunk(job: tuple[int, int, int, float, dict]) -> dict:
    worker, start, count, limit_s, opts = job
    logging_quiet()
    from engine.synth.soundfont import bundled_soundfont

    sf = str(bundled_soundfont())
    corpus = seeds()
    stats = {"files": 0, "runs": 0, "codes": {}, "hangs": 0, "left_behind": 0,
             "bad": [], "slowest_s": 0.0, "slowest_cpu_s": 0.0, "over_wall": [], "commands": {}}
    with tempfile.TemporaryDirectory(prefix="pmn-fuzz-") as tmp:
        tmp = Path(tmp)
        for n in range(start, start + count):
            rng = random.Random(opts["seed"] * 1_000_003 + n)
            data = mutate(rng.choice(corpus), rng, corpus)
            src = tmp / f"in{n % 7}.mid"
            src.write_bytes(data)
            out_dir = tmp / "out"
            out_dir.mkdir(exist_ok=True)
            commands = [("info", [str(src)]),
                        ("export", [str(src), "-o", str(out_dir / "o.mid")])]
            if n % opts["render_every"] == 0:
                commands.append(("render", [str(src), "-o", str(out_dir / "o.wav"),
                                            "--rate", "22050", "--soundfont", sf]))
            if n % opts["accompany_every"] == 1:
                commands.append(("accompany", [str(src), "-o", str(out_dir / "a.mid")]))
            if n % 5 == 2:
                commands.append(("info", [str(src), "--strict"]))
            for name, argv in commands:
                code, secs, cpu = run_cli([name, *argv], limit_s)
                stats["runs"] += 1
                stats["commands"][name] = stats["commands"].get(name, 0) + 1
                stats["slowest_s"] = max(stats["slowest_s"], secs)
                stats["slowest_cpu_s"] = max(stats["slowest_cpu_s"], cpu)
                if secs > limit_s and code != "hang":
                    stats["over_wall"].append({"file": n, "command": name, "wall_s": round(secs, 2),
                                               "cpu_s": round(cpu, 2),
                                               "load": round(os.getloadavg()[0], 1)})
                key = str(code)
                stats["codes"][key] = stats["codes"].get(key, 0) + 1
                if code == "hang":
                    stats["hangs"] += 1
                left = sorted(p.name for p in out_dir.iterdir())
                if code != 0 and left:
                    stats["left_behind"] += 1
                if code not in (0, 2) or (code != 0 and left):
                    if len(stats["bad"]) < 20:
                        keep = tmp.parent / f"pmn-fuzz-finding-{n}.mid"
                        keep.write_bytes(data)
                        stats["bad"].append({"file": str(keep), "command": name,
                                             "code": code, "left": left})
                for p in out_dir.iterdir():
                    p.unlink()
            stats["files"] += 1
    stats["peak_rss_mib"] = peak_rss_mib()
    stats["worker"] = worker
    return stats


def logging_quiet() -> None:
    import logging

    logging.basicConfig(level=logging.CRITICAL)
    logging.getLogger().setLevel(logging.CRITICAL)
    # main() calls basicConfig at WARNING, a no-op once a handler exists; keep the root quiet.
    logging.disable(logging.ERROR)


def fuzz(files: int, workers: int = 1, seed: int = 0, limit_s: float = 20.0,
         render_every: int = 25, accompany_every: int = 25) -> dict:
    opts = {"seed": seed, "render_every": render_every, "accompany_every": accompany_every}
    per = -(-files // workers)
    jobs = [(w, w * per, min(per, files - w * per), limit_s, opts) for w in range(workers)
            if files - w * per > 0]
    t0 = time.perf_counter()
    load = [os.getloadavg()[0]]
    if workers == 1:
        parts = [_fuzz_chunk(jobs[0])]
    else:
        with multiprocessing.get_context("spawn").Pool(len(jobs)) as pool:
            parts = pool.map(_fuzz_chunk, jobs)
    load.append(os.getloadavg()[0])
    total = {"files": 0, "runs": 0, "codes": {}, "hangs": 0, "left_behind": 0, "bad": [],
             "commands": {}, "slowest_s": 0.0, "slowest_cpu_s": 0.0, "over_wall": [],
             "peak_rss_mib": 0.0}
    for p in parts:
        for k in ("files", "runs", "hangs", "left_behind"):
            total[k] += p[k]
        for k, v in p["codes"].items():
            total["codes"][k] = total["codes"].get(k, 0) + v
        for k, v in p["commands"].items():
            total["commands"][k] = total["commands"].get(k, 0) + v
        total["bad"] += p["bad"]
        total["over_wall"] += p["over_wall"]
        total["slowest_s"] = round(max(total["slowest_s"], p["slowest_s"]), 2)
        total["slowest_cpu_s"] = round(max(total["slowest_cpu_s"], p["slowest_cpu_s"]), 2)
        total["peak_rss_mib"] = max(total["peak_rss_mib"], p["peak_rss_mib"])
    total["other_codes"] = sum(v for k, v in total["codes"].items() if k not in ("0", "2"))
    total["seconds"] = round(time.perf_counter() - t0, 1)
    total["over_wall"].sort(key=lambda r: -r["wall_s"])
    total.update(seed=seed, workers=len(jobs), limit_s=limit_s, wall_limit_s=limit_s * WALL_FACTOR,
                 load_start=round(load[0], 1), load_end=round(load[1], 1))
    return total


def results_markdown(res: dict, provenance: str) -> str:
    codes = ", ".join(f"{k}: {v}" for k, v in sorted(res["codes"].items()))
    commands = ", ".join(f"{k} {v}" for k, v in sorted(res["commands"].items()))
    limit = f"{res['limit_s']:g} s"
    over = res["over_wall"]
    if over:
        cpus = [r["cpu_s"] for r in over]
        loads = [r["load"] for r in over]
        walls = [r["wall_s"] for r in over]
        wall_note = (f"{len(over)} run(s) took more than {limit} of wall-clock time "
                     f"({', '.join(sorted({r['command'] for r in over}))}; "
                     f"{min(walls):.1f} to {max(walls):.1f} s) "
                     f"but only {min(cpus):.1f} to {max(cpus):.1f} s of CPU time, with the "
                     f"machine's 1-minute load average at {min(loads):g} to {max(loads):g} "
                     "when they ended: the rest was time spent waiting for a shared CPU, "
                     "so they are not counted as hangs.")
    else:
        wall_note = f"No run took more than {limit} of wall-clock time."
    return f"""## Bad input (`make fuzz`: scripts/fuzz.py)

{provenance}

{res['files']:,} mutated MIDI files (seed {res['seed']}; 1 to 4 mutations of 7 seed songs built
in code), each through `studio.cli.main` in {res['workers']} worker processes: {res['runs']:,}
runs ({commands}). Targets: only exit codes 0 and 2, no run past {limit}, no
output left after a non-zero exit, peak memory under 1 GiB.

A hang is a run stopped after {limit} of CPU time or {res['wall_limit_s']:g} s of wall-clock
time. Peak memory: a worker's own high-water mark (VmHWM). Load average at the start and the
end: {res['load_start']:g}, {res['load_end']:g}.

| files | runs | exit codes | other than 0/2 | hangs | runs past {limit} wall-clock | slowest run: wall / CPU | outputs left after non-zero exit | peak memory (a worker) | wall |
|---|---|---|---|---|---|---|---|---|---|
| {res['files']:,} | {res['runs']:,} | {codes} | {res['other_codes']} | {res['hangs']} | {len(over)} | {res['slowest_s']} s / {res['slowest_cpu_s']} s | {res['left_behind']} | {res['peak_rss_mib']:.0f} MiB | {res['seconds']:.0f} s |

{wall_note}
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--workers", type=int, default=max(1, min(2, os.cpu_count() or 1)))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=float, default=20.0, help="seconds before a run is a hang")
    ap.add_argument("--render-every", type=int, default=25)
    ap.add_argument("--accompany-every", type=int, default=25)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--results", action="store_true",
                    help="write the figures into docs/RESULTS.md (section fuzz)")
    a = ap.parse_args(argv)
    from engine.evaluation.report import provenance, update_section

    started = provenance()  # the commit that runs, even if HEAD moves during a long run
    res = fuzz(a.files, a.workers, a.seed, a.limit, a.render_every, a.accompany_every)
    if a.results:
        update_section("fuzz", results_markdown(res, started))
    if a.json:
        print(json.dumps(res))
    else:
        print(f"fuzz: {res['files']} files, {res['runs']} runs {res['commands']} in "
              f"{res['seconds']} s ({res['workers']} workers, seed {res['seed']})")
        print(f"  exit codes: {res['codes']}; other than 0/2: {res['other_codes']}")
        print(f"  hangs (> {res['limit_s']:g} s CPU or {res['wall_limit_s']:g} s wall): "
              f"{res['hangs']}; slowest run {res['slowest_s']} s wall, "
              f"{res['slowest_cpu_s']} s CPU")
        print(f"  runs past {res['limit_s']:g} s wall-clock only: {len(res['over_wall'])} "
              f"{res['over_wall'][:10]}; load average {res['load_start']} -> {res['load_end']}")
        print(f"  outputs left after a non-zero exit: {res['left_behind']}")
        print(f"  peak memory of a worker: {res['peak_rss_mib']} MiB")
        for b in res["bad"]:
            print(f"  finding: {b}")
    ok = res["other_codes"] == 0 and res["hangs"] == 0 and res["left_behind"] == 0 \
        and res["peak_rss_mib"] < 1024
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
