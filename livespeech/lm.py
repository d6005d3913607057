"""The word language model of a model folder: its files, as ``config.json`` lists them,
checked at load like the weights; loading it into KenLM; adding words to it.

``config.json`` of a model with a language model holds::

    "language_model": {
        "arpa": "lm.arpa.gz", "arpa_bytes": 15947531,      # n-gram LM, ARPA (gzip or plain)
        "lexicon": "lexicon.txt", "lexicon_bytes": 1564071, # word -> characters (livespeech.lexicon)
        "binary": "lm.bin", "binary_bytes": 17271026,       # optional: the same LM in KenLM's binary format
        "decoder": {"beam_size": 16, "lm_weight": 0.6, ...}, # tuned beam search settings
        "user_word_log10prob": -6.5,                        # unigram of a word added at run time
        ...                                                 # order, words, perplexity, sources
    }

The LM is a backoff n-gram model in ARPA format (written by ``livespeech-train lm``;
any ARPA with ``<s>``, ``</s>`` and ``<unk>`` works), read by KenLM (Heafield, 2011)
as carried by flashlight-text.  ``livespeech-train lm`` gzips it as two gzip members,
header and unigrams first, so words can be added at run time (:func:`with_unigrams`)
by rewriting the small first member and copying the second.

The optional binary is the same model in KenLM's memory-mapped ``trie`` format (written
by KenLM's ``build_binary``, see :mod:`training.kenlm_binary`): it loads in 0.02-0.03 s
where the ARPA takes 0.6-0.8 s, with the same scores.  It is used whenever no words are
added at run time; added words need the ARPA.
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import tempfile
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from livespeech.atomic import atomic_path, update_json_atomic

CONFIG_KEY = "language_model"
MAX_ARPA_BYTES = 256 * 1024 * 1024  # refuse absurd files before reading them
MAX_LEXICON_BYTES = 64 * 1024 * 1024
MAX_BINARY_BYTES = 512 * 1024 * 1024
DEFAULT_USER_WORD_LOG10PROB = -6.0  # when config.json gives none: about a word seen twice in 13 M
GZIP_MAGIC = b"\x1f\x8b"


class LanguageModelError(Exception):
    """A language model or lexicon file is missing, truncated or malformed; the message
    starts with the file's path."""


@dataclass(frozen=True)
class LanguageModelFiles:
    """The language model of a model folder, its files checked for presence and size.

    Attributes:
        arpa: the ARPA file (plain or gzip).
        lexicon: the lexicon file.
        binary: the same LM in KenLM's binary format, or None (then the ARPA is read).
        decoder: beam search settings tuned for this model (``livespeech.beam.BeamOptions`` fields).
        user_word_log10prob: log10 unigram probability of a word added at run time.
        info: the whole config entry (order, words, perplexity...).
    """

    arpa: Path
    lexicon: Path
    binary: Path | None = None
    decoder: dict = field(default_factory=dict)
    user_word_log10prob: float = DEFAULT_USER_WORD_LOG10PROB
    info: dict = field(default_factory=dict)


def language_model_files(folder: Path, config: dict) -> LanguageModelFiles | None:
    """The checked language model files a model's ``config.json`` lists, or None when
    it lists none.

    Raises:
        LanguageModelError: a bad entry, or a file that is missing, larger than allowed,
            or not the size the config gives (truncated or replaced).
    """
    entry = config.get(CONFIG_KEY)
    if entry is None:
        return None
    folder = Path(folder)
    where = folder / "config.json"
    if not isinstance(entry, dict):
        raise LanguageModelError(f"{where}: '{CONFIG_KEY}' must be an object")
    paths = {}
    for key, limit in (("arpa", MAX_ARPA_BYTES), ("lexicon", MAX_LEXICON_BYTES), ("binary", MAX_BINARY_BYTES)):
        if key == "binary" and key not in entry:
            continue  # optional
        name, size = entry.get(key), entry.get(f"{key}_bytes")
        if not isinstance(name, str) or not name or "/" in name or "\\" in name or name.startswith("."):
            raise LanguageModelError(f"{where}: '{CONFIG_KEY}.{key}' must be a file name in the model folder")
        if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
            raise LanguageModelError(f"{where}: '{CONFIG_KEY}.{key}_bytes' must be the file's size in bytes")
        paths[key] = check_file(folder / name, size, limit)
    decoder = entry.get("decoder", {})
    user = entry.get("user_word_log10prob", DEFAULT_USER_WORD_LOG10PROB)
    if not isinstance(decoder, dict) or not isinstance(user, (int, float)) or not -99 < user < 0:
        raise LanguageModelError(f"{where}: '{CONFIG_KEY}.decoder' must be an object and 'user_word_log10prob' a log10 probability")
    return LanguageModelFiles(paths["arpa"], paths["lexicon"], paths.get("binary"), dict(decoder), float(user), dict(entry))


def check_file(path: Path, size: int, limit: int) -> Path:
    """``path`` when it is a file of exactly ``size`` bytes, at most ``limit``.

    Raises:
        LanguageModelError: missing, too large, or another size (truncated).
    """
    try:
        actual = path.stat().st_size
    except FileNotFoundError:
        raise LanguageModelError(f"{path}: missing") from None
    except OSError as error:
        raise LanguageModelError(f"{path}: cannot read ({error.strerror})") from None
    if not path.is_file():
        raise LanguageModelError(f"{path}: not a file")
    if size > limit or actual > limit:
        raise LanguageModelError(f"{path}: larger than {limit} bytes")
    if actual != size:
        what = "truncated" if actual < size else "changed"
        raise LanguageModelError(f"{path}: {what}: {actual} bytes, config.json says {size}")
    return path


# ----------------------------------------------------------------------------- KenLM


@contextmanager
def _quiet_stderr():
    """Silence file descriptor 2 (KenLM prints a progress bar there while loading)."""
    import sys

    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real stderr (e.g. under some test runners)
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def load_kenlm(path: Path, words: list[str]):
    """KenLM over an ARPA file or KenLM binary, for the beam search: ``words[i]`` is
    word index ``i`` (words the LM lacks score as ``<unk>``).  Holds the GIL while it
    reads an ARPA (about 0.5 us per n-gram); a binary is memory-mapped.

    Returns:
        a flashlight ``KenLM`` (``start``, ``score``, ``finish``; log10 scores).
    Raises:
        LanguageModelError: flashlight-text is missing, or the file is not a valid ARPA
            or KenLM binary LM.
    """
    try:
        from flashlight.lib.text.decoder.kenlm import KenLM
        from flashlight.lib.text.dictionary import Dictionary
    except ImportError as error:
        raise LanguageModelError(f"{path}: beam search needs flashlight-text with KenLM ({error}); pip install flashlight-text") from None
    with _quiet_stderr():
        try:
            return KenLM(str(path), Dictionary(list(words)))
        except RuntimeError as error:
            raise LanguageModelError(f"{path}: not a valid language model ({_kenlm_reason(error)})") from None


def _kenlm_reason(error: RuntimeError) -> str:
    """KenLM's own explanation, without its source location."""
    text = str(error).strip()
    if "threw" in text and "\n" in text:
        text = text.split("\n", 1)[1]
    text = re.sub(r"\s+", " ", text)
    return text[:200]


# ----------------------------------------------------------------------------- adding words


def with_unigrams(arpa: Path, words: list[str], log10prob: float, out: Path) -> Path:
    """Write to ``out`` a copy of the ARPA file ``arpa`` with ``words`` added as
    unigrams of probability ``10 ** log10prob`` (and no backoff weight), so KenLM
    knows them: in any context ``p(w|h) = bow(h) p(w)``.  The model is then no longer
    normalised, by the added mass: a deliberate boost of the user's words.

    A gzip file written by ``livespeech-train lm`` (header and unigrams in the first
    gzip member) costs only that member's rewriting; other files are copied whole.

    Raises:
        LanguageModelError: ``arpa`` is not an ARPA file.
    """
    head, rest_text, rest_offset = _split_unigrams(arpa)
    head = _add_to_head(head, words, log10prob, arpa)
    compressed = is_gzip(arpa)
    with open(out, "wb") as f:
        if compressed:
            f.write(gzip.compress((head + rest_text).encode("utf-8"), compresslevel=1))
        else:
            f.write((head + rest_text).encode("utf-8"))
        with open(arpa, "rb") as source:
            source.seek(rest_offset)
            shutil.copyfileobj(source, f)
    return out


def is_gzip(path: Path) -> bool:
    """True when the file starts with the gzip magic bytes."""
    with open(path, "rb") as f:
        return f.read(2) == GZIP_MAGIC


def _split_unigrams(arpa: Path) -> tuple[str, str, int]:
    """The text up to the end of the unigram section, the text read after it, and the
    byte offset in the file where the rest starts."""
    with open(arpa, "rb") as f:
        if f.read(2) == GZIP_MAGIC:
            f.seek(0)
            text, offset = _first_gzip_member(f, arpa)
        else:
            f.seek(0)
            text, offset = _plain_head(f)
    if not text.startswith("\\data\\") or "\n\\1-grams:" not in text:
        raise LanguageModelError(f"{arpa}: not an ARPA file (no \\data\\ header and unigram section)")
    match = re.search(r"\n\\(2-grams:|end\\)", text)
    if match is None:  # the first gzip member ends with the unigrams
        return text, "", offset
    return text[: match.start() + 1], text[match.start() + 1 :], offset


def _first_gzip_member(f, arpa: Path) -> tuple[str, int]:
    inflate = zlib.decompressobj(wbits=31)  # one gzip member
    pieces, read = [], 0
    try:
        while not inflate.eof:
            chunk = f.read(1 << 16)
            if not chunk:
                raise LanguageModelError(f"{arpa}: truncated gzip file")
            read += len(chunk)
            pieces.append(inflate.decompress(chunk))
    except zlib.error as error:
        raise LanguageModelError(f"{arpa}: corrupt gzip file ({error})") from None
    try:
        return b"".join(pieces).decode("utf-8"), read - len(inflate.unused_data)
    except UnicodeDecodeError:
        raise LanguageModelError(f"{arpa}: not an ARPA file (not UTF-8)") from None


def _plain_head(f) -> tuple[str, int]:
    lines, offset = [], 0
    for line in f:
        lines.append(line)
        offset += len(line)
        if line.startswith((b"\\2-grams:", b"\\end\\")):
            break
    try:
        return b"".join(lines).decode("utf-8"), offset
    except UnicodeDecodeError:
        return "", offset


def _add_to_head(head: str, words: list[str], log10prob: float, arpa: Path) -> str:
    match = re.search(r"^ngram 1=(\d+)$", head, flags=re.MULTILINE)
    if match is None:
        raise LanguageModelError(f"{arpa}: not an ARPA file (no 'ngram 1=' count)")
    count = int(match.group(1)) + len(words)
    head = head[: match.start()] + f"ngram 1={count}" + head[match.end() :]
    body = head.rstrip("\n") + "\n"
    return body + "".join(f"{log10prob:.5f}\t{w}\n" for w in words) + "\n"


def temporary_arpa(arpa: Path) -> Path:
    """A new temporary file name for a rewritten copy of ``arpa`` (the caller deletes it)."""
    suffix = ".arpa.gz" if is_gzip(arpa) else ".arpa"
    handle, name = tempfile.mkstemp(prefix="livespeech-lm-", suffix=suffix)
    os.close(handle)
    return Path(name)


# ----------------------------------------------------------------------------- model folders


def attach(folder: Path, arpa: Path, lexicon: Path, entry: dict, binary: Path | None = None) -> Path:
    """Copy a language model and its lexicon into a model folder and list them in its
    ``config.json``; each file is written to a temporary name and renamed
    (:mod:`livespeech.atomic`), so an interrupted attach leaves the old files.

    Args:
        folder: the model folder.
        arpa, lexicon: the files to copy (kept under their names).
        entry: the rest of the config entry (decoder settings, order, perplexity...).
        binary: the same LM in KenLM's binary format, or None: then the folder lists
            none (a binary of an earlier LM would no longer match).
    Returns:
        the folder.
    Raises:
        OSError: the files cannot be copied or the config written.
    """
    folder = Path(folder)
    files = {"arpa": arpa, "lexicon": lexicon, **({"binary": binary} if binary else {})}
    entry = {k: v for k, v in entry.items() if k not in ("binary", "binary_bytes")}
    for key, source in files.items():
        target = folder / Path(source).name
        if Path(source).resolve() != target.resolve():
            with atomic_path(target) as tmp:
                shutil.copyfile(source, tmp)
        entry[key], entry[f"{key}_bytes"] = target.name, target.stat().st_size
    update_json_atomic(folder / "config.json", {CONFIG_KEY: entry})
    return folder
