"""Installing a finished model folder without ever losing the model it replaces."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


def install(staging: Path, destination: Path, force: bool = False) -> Path:
    """Copy a finished model folder to ``destination``, replacing an existing model
    only with ``force``.

    The copy is made beside ``destination`` under a hidden name and renamed into
    place; an existing model is first renamed aside and removed only once the new
    one is in place (put back if the rename fails), so an interruption leaves the
    old model or the new one, never neither.

    Raises:
        FileExistsError: ``destination`` exists and ``force`` is False.
        OSError: the copy or a rename failed (``destination`` is as it was).
    """
    if destination.exists() and not force:
        raise FileExistsError(f"{destination} exists (use --force to replace it)")
    destination.parent.mkdir(parents=True, exist_ok=True)
    incoming = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", dir=destination.parent))
    old = None
    try:
        shutil.copytree(staging, incoming, dirs_exist_ok=True)
        if destination.exists():
            old = destination.with_name(f".{destination.name}.old-{os.getpid()}")
            os.replace(destination, old)
        try:
            os.replace(incoming, destination)
        except OSError:
            if old is not None:
                os.replace(old, destination)
                old = None
            raise
    finally:
        if incoming.exists():  # a failed copy leaves no stray folder
            shutil.rmtree(incoming)
    if old is not None:
        shutil.rmtree(old)
    return destination
