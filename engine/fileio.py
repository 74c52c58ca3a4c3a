"""Atomic file writes: write to a temporary file beside the target, then rename.

A crash or an error mid-write never leaves a half-written output behind, and an existing file is
only replaced once the new one is complete. What the operating system refuses (no permission, a
full disk, a name too long) is the user's environment, not a bug: it becomes an `OutputError`
naming the path.

Targets that are not regular files are never replaced by one: a symbolic link is followed (its
target is replaced, the link stays), a character device (`/dev/null`, a terminal) is written
through once the output is complete, and a FIFO, socket or block device is refused.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from engine.errors import OutputError

# OS errors that describe the place being written, not a bug of ours.
ENVIRONMENT_ERRNOS = frozenset(
    e for e in (errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EDQUOT, errno.EROFS,
                errno.ENAMETOOLONG, errno.EFBIG, errno.ENOENT, errno.ENOTDIR, errno.EISDIR,
                errno.ELOOP, errno.EIO, errno.EEXIST, errno.EXDEV, errno.EMFILE)
    if e is not None)


def os_reason(exc: OSError) -> str:
    """A short reason for an OSError: its strerror (e.g. 'No space left on device')."""
    return (exc.strerror or str(exc) or type(exc).__name__).strip()


def _special_kind(mode: int) -> str | None:
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISBLK(mode):
        return "a block device"
    return None


def check_writable(path: str | Path) -> Path:
    """Fail early, with a clear message, if `path` cannot be created or replaced."""
    path = Path(path)
    try:
        resolved = Path(os.path.realpath(path)) if path.is_symlink() else path
        parent = resolved.parent if str(resolved.parent) else Path(".")
        if resolved.is_dir():
            raise OutputError(path, "is a directory")
        if resolved.exists():
            kind = _special_kind(resolved.stat().st_mode)
            if kind:
                raise OutputError(path, f"is {kind}, not a file this program can write")
        if not parent.exists():
            raise OutputError(path, f"folder {parent} does not exist")
        if not parent.is_dir():
            raise OutputError(path, f"{parent} is not a folder")
        if resolved.exists() and not os.access(resolved, os.W_OK):
            raise OutputError(path, "file is not writable")
        if not _is_char_device(resolved) and not os.access(parent, os.W_OK | os.X_OK):
            raise OutputError(path, f"folder {parent} is not writable")
        max_name = os.pathconf(parent, "PC_NAME_MAX") if hasattr(os, "pathconf") else 255
        if len(os.fsencode(resolved.name)) > max_name:
            raise OutputError(path, f"file name too long (more than {max_name} bytes)")
    except OSError as exc:
        raise OutputError(path, os_reason(exc)) from None
    return path


def _is_char_device(path: Path) -> bool:
    try:
        return stat.S_ISCHR(path.stat().st_mode)
    except OSError:
        return False


def check_outputs(outputs: Iterable[str | Path | None], inputs: Iterable[str | Path | None] = ()
                  ) -> None:
    """Refuse an output that is one of the inputs (it would be destroyed before it is read in
    full, or replaced by something else) or that is given twice."""
    seen: list[tuple[Path, Path]] = []
    ins = [Path(p) for p in inputs if p]
    for out in (Path(p) for p in outputs if p):
        if _is_char_device(out):  # /dev/null may take any number of outputs
            continue
        for inp in ins:
            if _same_file(out, inp):
                raise OutputError(out, f"is also the input {inp}; write to another file")
        for earlier, _ in seen:
            if _same_file(out, earlier):
                raise OutputError(out, f"is given twice (also as {earlier})")
        seen.append((out, out))


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return os.path.realpath(a) == os.path.realpath(b)


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success rename it onto `path`.

    `suffix` defaults to the target's suffix so that libraries choosing a format by extension
    (soundfile, pretty_midi) see the right one. A symbolic link is followed; a character device
    is written through (see the module docstring).
    """
    with atomic_paths([path], suffixes=[suffix]) as (tmp,):
        yield tmp


@contextlib.contextmanager
def atomic_paths(paths: Iterable[str | Path], suffixes: Iterable[str | None] | None = None
                 ) -> Iterator[list[Path]]:
    """`atomic_path` for several outputs that succeed or fail together: each gets a temporary
    path; only when the block succeeds are they all moved into place."""
    paths = [check_writable(p) for p in paths]
    suffixes = list(suffixes) if suffixes is not None else [None] * len(paths)
    targets = [Path(os.path.realpath(p)) if p.is_symlink() else p for p in paths]
    tmps: list[Path] = []
    try:
        for path, target, suffix in zip(paths, targets, suffixes):
            device = _is_char_device(target)
            where = Path(tempfile.gettempdir()) if device else target.parent
            try:
                fd, tmp_name = tempfile.mkstemp(
                    prefix=f".{target.name[:100]}.",
                    suffix=suffix if suffix is not None else target.suffix, dir=where)
            except OSError as exc:
                raise OutputError(path, os_reason(exc)) from None
            os.close(fd)
            tmps.append(Path(tmp_name))
        try:
            yield list(tmps)
            for path, target, tmp in zip(paths, targets, tmps):
                if _is_char_device(target):
                    with open(tmp, "rb") as src, open(target, "wb") as dst:
                        shutil.copyfileobj(src, dst)
                    tmp.unlink()
                    continue
                # mkstemp makes the file private (0600); give it the mode a plain open() would
                # have (or keep the mode of the file it replaces).
                os.chmod(tmp, target.stat().st_mode & 0o7777 if target.exists()
                         else _default_mode())
                os.replace(tmp, target)
        except OSError as exc:
            if exc.errno in ENVIRONMENT_ERRNOS and _names_ours(exc, tmps, targets):
                raise OutputError(paths[0] if len(paths) == 1 else _culprit(exc, paths, tmps,
                                                                           targets),
                                  os_reason(exc)) from None
            raise
    finally:
        for tmp in tmps:
            with contextlib.suppress(OSError):
                tmp.unlink()


def _names_ours(exc: OSError, tmps: list[Path], targets: list[Path]) -> bool:
    """Whether an OSError is about one of our files (or says nothing about which file: a write
    that ran out of space)."""
    names = {str(p) for p in (*tmps, *targets)}
    return exc.filename is None or str(exc.filename) in names or exc.errno in (
        errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO)


def _culprit(exc: OSError, paths: list[Path], tmps: list[Path], targets: list[Path]) -> Path:
    for path, tmp, target in zip(paths, tmps, targets):
        if str(exc.filename) in (str(tmp), str(target)):
            return path
    return paths[0]


def _default_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


#: Staged folders being built, {staged folder: the folder it is installed into}.
_STAGED: dict[str, str] = {}


def final_name(path: str | Path) -> str:
    """`path` as it will be named once installed, if it lies in a folder being staged (for
    messages printed while the outputs are still being built); else `path` unchanged."""
    text = str(path)
    for stage, folder in _STAGED.items():
        if text == stage or text.startswith(stage + os.sep):
            return folder + text[len(stage):]
    return text


@contextlib.contextmanager
def staged_folder(folder: str | Path) -> Iterator[Path]:
    """A temporary folder beside `folder` to build a set of outputs in; installed all or nothing.

    When the block succeeds, everything written into the staged folder is moved into `folder`
    (created if needed; a file of the same name is replaced, other files there are left alone;
    `.json` files, the model cards that make the rest visible, move last). When it fails (an
    exception, Ctrl-C, or SIGTERM, which is turned into `SystemExit(143)` for the time of the
    block in the main thread), the staged folder is removed, and so is every folder this
    created: nothing half-built is left. Errors of the operating system become an `OutputError`
    naming `folder`. While the block runs, `final_name` maps a path in the staged folder to
    its place in `folder`.
    """
    import signal
    import threading

    given = Path(folder)
    if given.exists() and not given.is_dir():
        raise OutputError(given, "is not a folder")
    # A symbolic link to a folder: stage beside its target (one filesystem, so renames work).
    folder = Path(os.path.realpath(given)) if given.is_symlink() else given
    created: list[Path] = []  # missing parents made for the staged folder, innermost last
    parent = folder.parent if str(folder.parent) else Path(".")
    missing = [p for p in (parent, *parent.parents) if not p.exists()]
    new = not folder.exists()
    try:
        for p in reversed(missing):
            p.mkdir()
            created.append(p)
        stage = Path(tempfile.mkdtemp(prefix=f".{folder.name[:100]}.", suffix=".staged",
                                      dir=parent))
    except OSError as exc:
        _remove_folders(created)
        raise OutputError(given, os_reason(exc)) from None

    def _terminated(signum, frame):
        raise SystemExit(128 + signum)

    _STAGED[str(stage)] = str(given)
    handled, previous = threading.current_thread() is threading.main_thread(), None
    if handled:
        previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        yield stage
        entries = sorted(stage.iterdir(), key=lambda p: (p.suffix == ".json", p.name))
        if entries:
            try:
                folder.mkdir(exist_ok=True)
                for p in entries:
                    target = folder / p.name
                    if p.is_dir() and target.is_dir():
                        shutil.rmtree(target)
                    os.replace(p, target)
            except OSError as exc:
                raise OutputError(given, os_reason(exc)) from None
        created.clear()  # installed: the folders made for it stay
        new = False
    finally:
        if new:  # `folder` itself, if something made it meanwhile (and left it empty)
            created.append(folder)
        _STAGED.pop(str(stage), None)
        try:
            shutil.rmtree(stage, ignore_errors=True)
            _remove_folders(created)
        finally:
            if handled:
                signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def _remove_folders(created: list[Path]) -> None:
    """Remove the folders this module created (innermost first) if they are still empty."""
    for p in reversed(created):
        with contextlib.suppress(OSError):
            p.rmdir()
