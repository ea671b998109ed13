"""hpc_rg.io.atomic: a reader sees the old file or the whole new one; a failed write leaves nothing."""
import os
import stat

import pytest

from hpc_rg.io.atomic import atomic_path, atomic_write_text


def test_replaces_whole_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("old")
    atomic_write_text(path, "néw", durable=True)
    assert path.read_text(encoding="utf-8") == "néw"
    assert os.listdir(tmp_path) == ["a.txt"]


def test_a_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(path) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["a.txt"]


def test_permissions_follow_the_umask_not_mkstemp(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "b.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "b.txt").stat().st_mode) == 0o644


def test_a_named_temporary_is_used_and_removed_on_failure(tmp_path):
    """`temporary=`: the name other writers know (the ranks of a collective write, a checkpoint's cleanup)."""
    path, tmp = tmp_path / "e.h5", tmp_path / "e.h5.tmp"
    with atomic_path(path, durable=True, temporary=tmp) as t:
        assert t == tmp and not tmp.exists()          # the block creates it
        tmp.write_bytes(b"new")
    assert path.read_bytes() == b"new" and not tmp.exists()
    with pytest.raises(OSError):
        with atomic_path(path, temporary=tmp) as t:
            t.write_bytes(b"half")
            raise OSError("disk full")
    assert path.read_bytes() == b"new" and os.listdir(tmp_path) == ["e.h5"]
