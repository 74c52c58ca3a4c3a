"""Per-track stems: one WAV per track with notes, all the same length and the same gain.

All stems share one gain (scaled down only if the loudest stem, or their sum, would clip), so
that laying them side by side in another program gives back the song's mix.
"""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

import numpy as np

from engine.errors import OutputError
from engine.fileio import atomic_paths, check_writable
from engine.music import Song
from engine.synth.render import HEADROOM_PEAK as HEADROOM
from export.audio import check_subtype, write_wav_file

log = logging.getLogger(__name__)


def stem_name(index: int, name: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "track"
    return f"{index + 1:02d}-{safe[:40]}.wav"


def prepare_folder(folder: str | Path) -> Path:
    """Check that `folder` is, or can be created as, a writable folder; create nothing (the
    folder is made only once every stem has been rendered)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputError(folder, "exists and is not a folder")
    if not folder.exists():
        parent = folder.parent if str(folder.parent) else Path(".")
        if not parent.is_dir():
            raise OutputError(folder, f"folder {parent} does not exist")
        check_writable(parent / ".stem.wav")
    else:
        check_writable(folder / "stem.wav")
    return folder


def write_stems(song: Song, folder: str | Path, *, sample_rate: int = 48000,
                subtype: str = "PCM_16", soundfont=None, progress=None,
                **render_options) -> list[Path]:
    """Render each track with notes alone into `folder`; returns the files written."""
    from engine.synth.render import render
    from engine.synth.soundfont import find_soundfont

    subtype = check_subtype(subtype)
    soundfont = find_soundfont(soundfont)
    folder = prepare_folder(folder)
    indices = [i for i, t in enumerate(song.tracks) if t.notes]
    skipped = len(song.tracks) - len(indices)
    if skipped:
        log.info("skipping %d track(s) without notes", skipped)
    stems = []
    for k, i in enumerate(indices):
        def sub_progress(frac: float, _k: int = k) -> None:
            if progress is not None:
                progress((_k + frac) / len(indices))

        res = render(song, sample_rate=sample_rate, soundfont=soundfont, tracks=[i],
                     progress=sub_progress, normalise=False, **render_options)
        stems.append(res.audio)
    if not stems:
        return []
    length = max(len(a) for a in stems)
    mix = np.zeros((length, 2), np.float32)
    for a in stems:
        mix[:len(a)] += a
    peak = max(float(np.max(np.abs(mix))), max(float(np.max(np.abs(a))) for a in stems))
    gain = HEADROOM / peak if peak > HEADROOM else 1.0
    if gain != 1.0:
        log.info("stems: peak %.3f would clip; all stems scaled by %.3f", peak, gain)
    # All or nothing: every stem goes to a temporary file first; they are moved into place
    # together, and a folder this call created is removed again if any of them fails.
    paths = [folder / stem_name(i, song.tracks[i].name) for i in indices]
    created = not folder.exists()
    try:
        if created:
            folder.mkdir()
    except OSError as exc:
        raise OutputError(folder, f"cannot create folder ({exc.strerror or exc})") from None
    try:
        with atomic_paths(paths, suffixes=[".wav"] * len(paths)) as tmps:
            for a, tmp, path in zip(stems, tmps, paths):
                padded = np.zeros((length, 2), np.float32)
                padded[:len(a)] = a * np.float32(gain)
                write_wav_file(padded, tmp, sample_rate, subtype, name=path)
                del padded
    except BaseException:
        if created:
            shutil.rmtree(folder, ignore_errors=True)
        raise
    return paths
