"""One atomic writer for every file livespeech and its training write.

A file is written under a temporary name in its own folder and renamed into place only
when it is complete, so a reader never sees half a file and an interrupted write (an
exception, Ctrl-C, a kill) leaves the old file as it was. The new file gets the mode a
plain ``open(path, "w")`` would give it: an existing file keeps its mode, a new one gets
``0o666`` less the umask (``tempfile.mkstemp`` alone would give ``0o600``).

    with atomic_path(out / "model.safetensors") as tmp:
        save_file(state, str(tmp))          # any writer that takes a path
    write_text_atomic(out / "config.json", text)
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Iterator


def _plain_mode(path: Path) -> int:
    """The permission bits ``open(path, "w")`` would leave: the old file's, else 0o666 & ~umask."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


@contextlib.contextmanager
def atomic_path(path: Path | str, *, overwrite: bool = True, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on a clean exit rename it to ``path``.

    Args:
        path: the file to create or replace. Its folder must exist.
        overwrite: if False, never replace an existing file, even one that appeared while
            writing (the temporary file is hard-linked into place, which fails if ``path``
            exists); ``FileExistsError`` is raised and nothing is changed.
        suffix: extension for the temporary name, for writers that choose a format by it
            (``soundfile``, ``numpy.save``).

    Raises:
        FileExistsError: ``overwrite`` is False and ``path`` exists.
        OSError: the folder is missing or not writable. On any error, or an exception in the
            ``with`` body, the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    if not overwrite and path.exists():
        raise FileExistsError(f"{path} exists")
    mode = _plain_mode(path)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, mode)
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)  # fails if path appeared meanwhile: never overwrite
            tmp.unlink()
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_bytes_atomic(path: Path | str, data: bytes, *, overwrite: bool = True) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path, overwrite=overwrite) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path: Path | str, text: str, *, overwrite: bool = True) -> None:
    """Write ``text`` as UTF-8 to ``path`` atomically (see :func:`atomic_path`)."""
    write_bytes_atomic(path, text.encode("utf-8"), overwrite=overwrite)


def update_json_atomic(path: Path | str, changes: dict) -> dict:
    """Set top-level keys of a JSON object file (a model folder's ``config.json``) and
    rewrite it atomically, indented as livespeech writes it; returns the new object.

    Raises:
        OSError: the file cannot be read or written.
        ValueError: the file is not valid JSON.
    """
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    data.update(changes)
    write_text_atomic(path, json.dumps(data, indent=2) + "\n")
    return data
