"""The one atomic writer: interrupted writes leave the old file, overwrite=False never
replaces, and files get the mode a plain write would."""

from __future__ import annotations

import errno
import os
import stat
from contextlib import contextmanager

import pytest

from livespeech.atomic import atomic_path, write_bytes_atomic, write_text_atomic


@contextmanager
def umask(mask: int):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_writes_and_replaces(tmp_path):
    target = tmp_path / "out.txt"
    write_text_atomic(target, "first ünïcode\n")
    assert target.read_text(encoding="utf-8") == "first ünïcode\n"
    write_bytes_atomic(target, b"second")
    assert target.read_bytes() == b"second"
    assert os.listdir(tmp_path) == ["out.txt"]


@pytest.mark.parametrize("interruption", [RuntimeError("boom"), KeyboardInterrupt()], ids=["exception", "ctrl-c"])
def test_interrupted_body_leaves_the_old_file(tmp_path, interruption):
    target = tmp_path / "model.bin"
    target.write_bytes(b"old")
    with pytest.raises(type(interruption)):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half of the new")
            raise interruption
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["model.bin"]  # no temporary file left


def test_write_failing_midway_leaves_the_old_file(tmp_path):
    target = tmp_path / "checkpoint.pt"
    target.write_bytes(b"old")

    def writer(path):  # a writer that dies after writing part of its data (disk full)
        with open(path, "wb") as f:
            f.write(b"x" * 1000)
            raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        with atomic_path(target) as tmp:
            writer(tmp)
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["checkpoint.pt"]


def test_interrupted_new_file_leaves_nothing(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(tmp_path / "new.json") as tmp:
            tmp.write_text("{")
            raise KeyboardInterrupt
    assert os.listdir(tmp_path) == []


def test_no_overwrite_never_replaces(tmp_path):
    target = tmp_path / "t.txt"
    target.write_text("mine")
    with pytest.raises(FileExistsError):
        write_text_atomic(target, "theirs", overwrite=False)
    assert target.read_text() == "mine"
    assert os.listdir(tmp_path) == ["t.txt"]


def test_no_overwrite_of_a_file_that_appears_while_writing(tmp_path):
    target = tmp_path / "t.txt"
    with pytest.raises(FileExistsError):
        with atomic_path(target, overwrite=False) as tmp:
            tmp.write_text("late")
            target.write_text("first")  # another writer got there first
    assert target.read_text() == "first"
    assert os.listdir(tmp_path) == ["t.txt"]


def test_no_overwrite_writes_a_new_file(tmp_path):
    write_text_atomic(tmp_path / "t.txt", "new", overwrite=False)
    assert (tmp_path / "t.txt").read_text() == "new"
    assert os.listdir(tmp_path) == ["t.txt"]


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_new_file_gets_the_plain_mode(tmp_path, mask):
    with umask(mask):
        write_text_atomic(tmp_path / "new.txt", "x")
        (tmp_path / "plain.txt").write_text("x")
    assert mode(tmp_path / "new.txt") == 0o666 & ~mask == mode(tmp_path / "plain.txt")


@pytest.mark.parametrize("old_mode", [0o644, 0o600, 0o640])
def test_replaced_file_keeps_its_mode(tmp_path, old_mode):
    target = tmp_path / "t.txt"
    target.write_text("old")
    target.chmod(old_mode)
    with umask(0o077):  # the umask plays no part for an existing file
        write_text_atomic(target, "new")
    assert target.read_text() == "new"
    assert mode(target) == old_mode


def test_suffix_for_writers_that_choose_the_format_by_name(tmp_path):
    np = pytest.importorskip("numpy")
    target = tmp_path / "features.npy"
    with atomic_path(target, suffix=".npy") as tmp:
        assert tmp.name.endswith(".npy") and tmp.parent == tmp_path
        np.save(tmp, np.arange(3))  # would write tmp + ".npy" for any other name
    assert np.load(target).tolist() == [0, 1, 2]
    assert os.listdir(tmp_path) == ["features.npy"]


def test_missing_folder_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        write_text_atomic(tmp_path / "no" / "such" / "file.txt", "x")
