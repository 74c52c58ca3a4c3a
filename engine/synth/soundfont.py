"""Where the General MIDI SoundFont comes from, and a cheap check that a file is one.

Discovery order (the first that is set wins; an explicit choice that points nowhere is an error,
never silently replaced by another soundfont):
1. the explicit argument (`--soundfont`, a studio setting);
2. the environment variable `POPMUSICNET_SOUNDFONT`;
3. the user config file `$XDG_CONFIG_HOME/popmusicnet/config.json` (default
   `~/.config/popmusicnet/config.json`), key `"soundfont"`;
4. the system's SoundFont folders (`/usr/share/sounds/sf2`, `/usr/share/soundfonts`), preferring
   FluidR3_GM, then default-GM, then TimGM6mb, then any other `.sf2` there;
5. the TimGM6mb.sf2 that ships inside the pretty_midi wheel (6 MB, always present).
When nothing is found the SoundfontError lists every place that was looked at.
"""

from __future__ import annotations

import json
import logging
import os
import struct
from pathlib import Path

from engine.errors import SoundfontError

log = logging.getLogger(__name__)

ENV_VAR = "POPMUSICNET_SOUNDFONT"
SYSTEM_DIRS: list[Path] = [Path("/usr/share/sounds/sf2"), Path("/usr/share/soundfonts")]
PREFERRED = ("FluidR3_GM.sf2", "default-GM.sf2", "TimGM6mb.sf2")


def config_file() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "popmusicnet" / "config.json"


def bundled_soundfont() -> Path | None:
    """pretty_midi's TimGM6mb.sf2, if pretty_midi is installed."""
    try:
        import importlib.util

        spec = importlib.util.find_spec("pretty_midi")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "TimGM6mb.sf2"


def validate_soundfont(path: str | Path, origin: str = "") -> Path:
    """Return `path` if it looks like a readable SoundFont 2 file, else raise SoundfontError.

    Checks the RIFF/sfbk header and that the file is as long as its header says (truncated
    downloads are the usual corruption). FluidSynth does the full parse when it loads the file.
    """
    path = Path(path).expanduser()
    where = f" (from {origin})" if origin else ""
    if not path.exists():
        raise SoundfontError(f"{path}: soundfont not found{where}")
    if path.is_dir():
        raise SoundfontError(f"{path}: is a directory, not a soundfont{where}")
    try:
        with path.open("rb") as fh:
            head = fh.read(12)
        size = path.stat().st_size
    except OSError as exc:
        raise SoundfontError(f"{path}: cannot read soundfont ({exc.strerror or exc}){where}") \
            from None
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"sfbk":
        raise SoundfontError(f"{path}: not a SoundFont 2 file (no RIFF sfbk header){where}")
    declared = struct.unpack("<I", head[4:8])[0] + 8
    if size < declared:
        raise SoundfontError(f"{path}: corrupt soundfont (truncated: {size} of {declared} "
                             f"bytes){where}")
    return path


def _from_config() -> tuple[str | None, Path]:
    cfg = config_file()
    if not cfg.is_file():
        return None, cfg
    try:
        data = json.loads(cfg.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SoundfontError(f"{cfg}: unreadable config file ({exc})") from None
    value = data.get("soundfont") if isinstance(data, dict) else None
    return (str(value) if value else None), cfg


def _folder_candidates(folder: Path) -> list[Path]:
    """A soundfont folder's files in the finder's order: the preferred names, then any other
    .sf2 by name (a preferred name may not exist)."""
    return ([folder / name for name in PREFERRED]
            + sorted(p for p in folder.glob("*.sf2") if p.name not in PREFERRED))


def find_soundfont(explicit: str | Path | None = None) -> Path:
    """The SoundFont to use (see the module docstring for the order)."""
    if explicit:
        return validate_soundfont(explicit, "--soundfont")
    env = os.environ.get(ENV_VAR)
    if env:
        return validate_soundfont(env, f"${ENV_VAR}")
    looked = ["--soundfont (not given)", f"${ENV_VAR} (not set)"]
    value, cfg = _from_config()
    if value:
        return validate_soundfont(value, f"{cfg}")
    looked.append(f"{cfg} (no 'soundfont' key)" if cfg.is_file() else f"{cfg} (no such file)")
    for folder in SYSTEM_DIRS:
        if not folder.is_dir():
            looked.append(f"{folder}/*.sf2 (no such folder)")
            continue
        for cand in _folder_candidates(folder):
            if cand.is_file():
                try:
                    return validate_soundfont(cand)
                except SoundfontError as exc:
                    log.warning("skipping %s", exc)
        looked.append(f"{folder}/*.sf2 (none usable)")
    bundled = bundled_soundfont()
    if bundled is not None and bundled.is_file():
        log.info("using pretty_midi's bundled soundfont %s", bundled)
        return validate_soundfont(bundled)
    looked.append(f"{bundled or 'pretty_midi'}/TimGM6mb.sf2 (not installed)")
    raise SoundfontError("no soundfont found; looked at: " + "; ".join(looked)
                         + ". Install one (Debian: apt install fluid-soundfont-gm) or pass "
                           "--soundfont FILE.sf2")


def installed_soundfonts() -> list[Path]:
    """Every usable soundfont of the system folders and pretty_midi's, each file once (links
    resolved), the finder's preference first."""
    cands: list[Path] = []
    for folder in SYSTEM_DIRS:
        if folder.is_dir():
            cands += _folder_candidates(folder)
    b = bundled_soundfont()
    if b is not None:
        cands.append(b)
    out, seen = [], set()
    for c in cands:
        try:
            real = c.resolve()
            if not c.is_file() or real in seen:
                continue
            validate_soundfont(c)
        except (OSError, SoundfontError):  # an unusable file is no candidate
            continue
        seen.add(real)
        out.append(c)
    return out


def soundfont_named(name: str | None) -> Path:
    """The installed soundfont of this file name (what a card records), else the finder's."""
    if name:
        for p in installed_soundfonts():
            if p.name == name or p.resolve().name == name:
                return p
    return find_soundfont()


def another_soundfont(than: str | Path) -> Path | None:
    """An installed soundfont that is not `than` (a path or a file name; links resolved), or
    None when only one is installed."""
    than_p = Path(than)
    names = {than_p.name}
    if than_p.exists():
        names.add(than_p.resolve().name)
    for p in installed_soundfonts():
        if p.name not in names and p.resolve().name not in names:
            return p
    return None
