"""WAV export of a rendered Song through soundfile (PCM 16/24-bit or 32-bit float).

The output path is checked *before* the render (a typo in a folder name should not cost a
minute of rendering), and the file is written to a temporary name and renamed at the end.
"""

from __future__ import annotations

import logging
from pathlib import Path

from engine.errors import OutputError, UserInputError
from engine.fileio import atomic_path, check_writable
from engine.music import Song

log = logging.getLogger(__name__)

SUBTYPES = {"16": "PCM_16", "24": "PCM_24", "float": "FLOAT",
            "PCM_16": "PCM_16", "PCM_24": "PCM_24", "FLOAT": "FLOAT"}


def check_subtype(subtype: str) -> str:
    try:
        return SUBTYPES[str(subtype)]
    except KeyError:
        raise UserInputError(f"unsupported WAV sample format {subtype!r} "
                             "(use 16, 24 or float)") from None


def save_wav(audio, path: str | Path, sample_rate: int, subtype: str = "PCM_16",
             name: str | Path | None = None) -> Path:
    """Write float audio (frames, channels) as WAV, atomically. Errors name `name` (default
    `path`; a caller writing to a temporary path gives the real one)."""
    subtype = check_subtype(subtype)
    with atomic_path(path, suffix=".wav") as tmp:
        write_wav_file(audio, tmp, sample_rate, subtype, name=name or path)
    return Path(path)


def write_wav_file(audio, tmp: str | Path, sample_rate: int, subtype: str,
                   name: str | Path) -> None:
    """soundfile.write to `tmp` (a path `atomic_path` gave out for `name`). libsndfile reports
    a full disk or a file grown past what WAV can hold as its own error ("System error."): that
    is the user's environment, an OutputError naming `name`."""
    import shutil

    import soundfile

    try:
        soundfile.write(str(tmp), audio, int(sample_rate), subtype=subtype, format="WAV")
    except soundfile.LibsndfileError as exc:
        reason = str(exc).strip() or "libsndfile error"
        try:
            if shutil.disk_usage(Path(tmp).parent).free < 1 << 20:
                reason = "no space left on device"
        except OSError:
            pass
        raise OutputError(name, f"cannot write the WAV file ({reason})") from None


def write_wav(song: Song, path: str | Path, *, sample_rate: int = 48000,
              subtype: str = "PCM_16", soundfont=None, progress=None,
              name: str | Path | None = None, **render_options):
    """Render `song` and write it as WAV. Returns the `RenderResult` (peak, gain, timing).
    `name`: the path errors name when `path` is a temporary one."""
    from engine.synth.render import render
    from engine.synth.soundfont import find_soundfont

    subtype = check_subtype(subtype)
    check_writable(path)
    soundfont = find_soundfont(soundfont)  # fail on a missing soundfont before rendering
    result = render(song, sample_rate=sample_rate, soundfont=soundfont, progress=progress,
                    **render_options)
    save_wav(result.audio, path, sample_rate, subtype, name=name)
    log.info("wrote %s (%.1f s, %s)", path, len(result.audio) / sample_rate, result.describe())
    return result
