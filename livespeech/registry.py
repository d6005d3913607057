"""Where models and phrase sets live.

Models are folders (see :mod:`livespeech.bundle`) found, in order, in
1. the user's data folder, ``platformdirs.user_data_dir("livespeech")/models``
   (where ``livespeech-train`` installs custom models), then
2. the models bundled with livespeech (``models/`` of the source tree, or the copy
   inside an installed wheel).
``--model`` also takes a path to a model folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from livespeech.bundle import CONFIG_FILE, ModelError, read_config
from livespeech.lm import CONFIG_KEY

DEFAULT_MODEL = "base"
_PACKAGE = Path(__file__).resolve().parent


def bundled_dir(name: str) -> Path:
    """A folder shipped with livespeech: inside the wheel (``livespeech/_bundled/NAME``)
    or at the top of the source tree (``NAME``)."""
    packaged = _PACKAGE / "_bundled" / name
    return packaged if packaged.exists() else _PACKAGE.parent / name


def user_models_dir() -> Path:
    """The user's model folder (created by ``livespeech-train`` when it installs one)."""
    from platformdirs import user_data_dir

    return Path(user_data_dir("livespeech")) / "models"


def model_dirs() -> list[tuple[str, Path]]:
    """(source, folder) pairs searched for models, user folder first."""
    return [("user", user_models_dir()), ("bundled", bundled_dir("models"))]


@dataclass(frozen=True)
class ModelEntry:
    """An installed model as listed by ``livespeech models``."""

    name: str
    source: str
    path: Path
    description: str
    parameters: int | None
    problem: str | None = None
    language_model: bool = False


def find_model(spec: str | None) -> Path:
    """The folder of a model given by name or path (the default model when None).

    Raises:
        ModelError: no such model.
    """
    spec = spec or DEFAULT_MODEL
    candidate = Path(spec).expanduser()
    if candidate.is_dir() and (candidate / CONFIG_FILE).exists() or "/" in spec or spec.startswith("."):
        if not candidate.is_dir():
            raise ModelError(f"no model folder at {spec}")
        return candidate
    for _, folder in model_dirs():
        if (folder / spec / CONFIG_FILE).exists():
            return folder / spec
    names = ", ".join(sorted({e.name for e in list_models()})) or "none"
    raise ModelError(f"no model named {spec!r} (installed: {names})")


def list_models() -> list[ModelEntry]:
    """Every model folder in the search path, including broken ones (with the problem)."""
    entries = []
    for source, folder in model_dirs():
        if not folder.is_dir():
            continue
        for sub in sorted(p for p in folder.iterdir() if (p / CONFIG_FILE).exists()):
            try:
                config = read_config(sub)
                entries.append(ModelEntry(sub.name, source, sub, str(config.get("description", "")), config.get("parameters"),
                                          language_model=CONFIG_KEY in config))
            except ModelError as error:
                entries.append(ModelEntry(sub.name, source, sub, "", None, str(error)))
    return entries
