import os
import stat

import pytest

from engine.errors import OutputError
from engine.fileio import atomic_path, atomic_write_text


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_has_normal_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        p = atomic_write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(p.stat().st_mode) == 0o644
    p.chmod(0o600)
    atomic_write_text(p, "y")
    assert stat.S_IMODE(p.stat().st_mode) == 0o600 and p.read_text() == "y"


def test_unwritable_targets_are_named(tmp_path):
    with pytest.raises(OutputError, match="does not exist"):
        atomic_write_text(tmp_path / "missing" / "a.txt", "x")
    with pytest.raises(OutputError, match="is a directory"):
        atomic_write_text(tmp_path, "x")
