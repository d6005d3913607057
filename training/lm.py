"""``livespeech-train lm``: the word language model and lexicon of the beam search.

    livespeech-train lm --out ~/lm                             # build (about 2 minutes, 3 GB)
    livespeech-train lm --attach ~/lm --model models/mymodel   # copy into a model folder

Building:

1. Every sentence of the text files (default ``../shared/data/text/*/train.txt``; never
   ``dev.txt``) is normalised as transcripts are: :func:`training.spoken.spoken_words`
   (numbers, times, money and abbreviations as said; a-z, apostrophe, space).
2. The vocabulary: the words seen at least ``min_count`` times, most frequent first (at
   most ``max_words``), plus every word of the bundled phrase sets and of ``--words``
   files.  Other words become ``<unk>``, which the model keeps as a word (its
   contexts are real) and the lexicon leaves out (the beam search never writes it).
3. Counting, interpolated modified Kneser-Ney estimation and count pruning
   (:mod:`training.ngram`), written as ``lm.arpa.gz`` (gzip, header and unigrams in
   their own gzip member), ``lexicon.txt`` (:mod:`livespeech.lexicon`) and ``lm.json``:
   sizes, n-gram counts, discounts, the build's time and peak memory, and per
   ``dev.txt`` source the out-of-vocabulary rate and the perplexity (OOV words not
   scored but kept as ``<unk>`` in the context of the next; ``</s>`` scored).

The default, a 4-gram without singleton bigrams and with trigrams and 4-grams seen at
least three times (``--order 4 --prune 0 1 2 2``), is sized for the model folder and its
start-up: 1.6 M n-grams, 14.5 MB gzipped (40 MB allowed with the lexicon), read by
KenLM in about 0.5-1.1 s (0.5 us an n-gram), or 0.02-0.05 s as ``lm.bin``.
Measured on the same 13 M words (perplexity on gutenberg / dialogue dev text, WER of
the bundled model's beam search on 300 unseen sentences in its training voices):
unpruned 3-gram, 7.8 M n-grams, 67 MB, 4.5 s to load: 232 / 21.5, WER 0.461;
3-gram ``0 1 1``, 1.9 M, 16 MB, 1.0 s: 249 / 22.9, 0.467; this 4-gram: 248 / 20.4,
0.468; 3-gram ``0 1 2``, 1.3 M, 11 MB, 0.6 s: 258 / 24.0, 0.468.  Pruning costs
little accuracy and saves seconds of start-up.

When KenLM's ``build_binary`` is at hand (:mod:`training.kenlm_binary`), the same model
is also written as ``lm.bin``, KenLM's memory-mapped binary, which loads in 0.02-0.03 s.

Attaching copies ``lm.arpa.gz``, ``lexicon.txt`` (and ``lm.bin``) into a model folder and lists them
in its ``config.json`` (:mod:`livespeech.lm`) with the beam search settings of
``decoder.json`` in the LM folder (written by ``bench/beam_tune.py``), else the defaults.
"""

from __future__ import annotations

import glob
import json
import resource
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from livespeech.atomic import write_text_atomic
from livespeech.lexicon import is_word, read_word_list, words_of, write_lexicon
from training import kenlm_binary, ngram

DEFAULT_TEXT = "../shared/data/text/*/train.txt"
DEFAULT_DEV = "../shared/data/text/*/dev.txt"
ARPA_NAME, LEXICON_NAME, REPORT_NAME, DECODER_NAME = "lm.arpa.gz", "lexicon.txt", "lm.json", "decoder.json"
USER_WORD_BOOST = 1.0  # log10: a word added at run time is ten times as likely as the LM's rarest words


@dataclass(frozen=True)
class LMBuildConfig:
    """What ``livespeech-train lm`` builds.

    Attributes:
        text: training text files or glob patterns (one sentence a line).
        dev: files to report perplexity and OOV rate on (never used for estimation).
        order: n-gram order (default 4).
        prune: count threshold per order (default 0 1 2 2: singleton bigrams, and trigrams
            and 4-grams seen fewer than three times, go).
        min_count: a word enters the vocabulary when seen this often (default 2).
        max_words: at most this many words from the text (default 200,000).
        words: word lists whose words are added to the vocabulary (``--words``).
        phrase_sets: add the words of every bundled phrase set (default True).
    """

    text: tuple[str, ...] = (DEFAULT_TEXT,)
    dev: tuple[str, ...] = (DEFAULT_DEV,)
    order: int = 4
    prune: tuple[int, ...] = (0, 1, 2, 2)
    min_count: int = 2
    max_words: int = 200_000
    words: tuple[str, ...] = ()
    phrase_sets: bool = True


def expand(patterns: Iterable[str]) -> list[Path]:
    """The files of some paths or glob patterns, sorted within each pattern.

    Raises:
        ValueError: a pattern matches nothing.
    """
    files = []
    for pattern in patterns:
        matches = sorted(glob.glob(pattern)) if any(c in pattern for c in "*?[") else [pattern] if Path(pattern).is_file() else []
        if not matches:
            raise ValueError(f"no text file at {pattern}")
        files += [Path(m) for m in matches]
    return files


def normalized_lines(files: Sequence[Path]) -> list[str]:
    """Every non-empty sentence of ``files`` as spoken words (:func:`training.spoken.spoken_words`)."""
    from training.spoken import spoken_words

    lines = []
    for path in files:
        with open(path, encoding="utf-8") as f:
            lines += [s for s in (spoken_words(line) for line in f) if s]
    return lines


def extra_words(config: LMBuildConfig) -> list[str]:
    """The words of the bundled phrase sets (when ``config.phrase_sets``) and of ``config.words``."""
    words: list[str] = []
    if config.phrase_sets:
        from livespeech.phrases import bundled_phrase_sets, load_phrase_set

        for name in bundled_phrase_sets():
            words += words_of(load_phrase_set(name).phrases)
    for path in config.words:
        words += read_word_list(Path(path))
    return list(dict.fromkeys(words))


def choose_vocabulary(counts: Counter, min_count: int, max_words: int, extra: Sequence[str] = ()) -> list[str]:
    """``<unk> <s> </s>``, then the words seen at least ``min_count`` times, most
    frequent first (ties alphabetical, at most ``max_words``), then the ``extra`` words
    not among them."""
    frequent = sorted((w for w, c in counts.items() if c >= min_count and is_word(w)), key=lambda w: (-counts[w], w))[:max_words]
    chosen = set(frequent)
    return [*ngram.SPECIAL_WORDS, *frequent, *(w for w in extra if w not in chosen and is_word(w))]


def build(config: LMBuildConfig, out: Path, log: Callable[[str], None] = print, build_binary: Path | None = None) -> dict:
    """Build the language model and lexicon into folder ``out`` (see the module docstring),
    and its KenLM binary when ``build_binary`` (the program) is given.

    Returns:
        the report written to ``out/lm.json``.
    Raises:
        ValueError: no text, bad options (ngram.EstimationError).
        OSError: files cannot be read or written.
        KenLMToolError: ``build_binary`` failed.
    """
    t0 = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    text_files, dev_files = expand(config.text), expand(config.dev)
    if set(text_files) & set(dev_files):
        raise ValueError("a dev file is also a training text file")
    lines = normalized_lines(text_files)
    counts = Counter(w for line in lines for w in line.split())
    total = sum(counts.values())
    log(f"{len(lines)} sentences, {total} words, {len(counts)} distinct, in {time.perf_counter() - t0:.0f} s")
    vocabulary = choose_vocabulary(counts, config.min_count, config.max_words, extra_words(config))
    index = {w: i for i, w in enumerate(vocabulary)}
    tokens = ngram.encode_corpus([index.get(w, ngram.UNK) for w in line.split()] for line in lines)
    del lines
    ngram_counts = ngram.count_ngrams(tokens, config.order, len(vocabulary))
    del tokens
    model = ngram.estimate(ngram_counts, vocabulary, config.prune)
    log(f"n-grams kept per order {model.sizes()} of {[int(c.size) for c in ngram_counts.counts]}")
    arpa_bytes = ngram.write_arpa(model, out / ARPA_NAME)
    lexicon_bytes = write_lexicon(vocabulary[3:], out / LEXICON_NAME)
    build_s = time.perf_counter() - t0
    report = {
        "order": config.order, "prune": list(config.prune), "smoothing": "interpolated modified Kneser-Ney (Chen & Goodman 1998)",
        "words": len(vocabulary) - 3, "text": [str(p) for p in text_files], "sentences": int(ngram_counts.counts[0][ngram.BOS]),
        "tokens": total, "oov_training_rate": round(1 - sum(c for w, c in counts.items() if w in index) / max(1, total), 5),
        "ngrams": model.sizes(), "ngrams_before_pruning": [int(c.size) for c in ngram_counts.counts],
        "discounts": [[round(d, 4) for d in ds] for ds in model.discounts],
        "arpa": ARPA_NAME, "arpa_bytes": arpa_bytes, "lexicon": LEXICON_NAME, "lexicon_bytes": lexicon_bytes,
        "user_word_log10prob": round(rare_word_log10prob(model) + USER_WORD_BOOST, 3),
        "build_s": round(build_s, 1), "peak_memory_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "config": {**asdict(config), "text": list(config.text), "dev": list(config.dev)},
    }
    del model, ngram_counts
    (out / kenlm_binary.BINARY_NAME).unlink(missing_ok=True)  # never beside an ARPA it was not made from
    if build_binary:
        report.update(binary_entry(out, build_binary, log))
    report["dev"] = evaluate(out / ARPA_NAME, vocabulary[3:], dev_files)
    write_text_atomic(out / REPORT_NAME, json.dumps(report, indent=2) + "\n")
    return report


def binary_entry(lm_dir: Path, build_binary: Path, log: Callable[[str], None] = print) -> dict:
    """Write ``lm_dir/lm.bin`` from ``lm_dir/lm.arpa.gz``; its report entries (name,
    bytes, and the seconds KenLM takes to load each file here).

    Raises:
        KenLMToolError: ``build_binary`` failed.
    """
    from livespeech.lexicon import read_lexicon

    arpa, binary = lm_dir / ARPA_NAME, lm_dir / kenlm_binary.BINARY_NAME
    size = kenlm_binary.write_binary(arpa, binary, build_binary)
    words = read_lexicon(lm_dir / LEXICON_NAME)
    seconds = {}
    for name, path in (("arpa", arpa), ("binary", binary)):
        t0 = time.perf_counter()
        load_lm(path, words)
        seconds[name] = round(time.perf_counter() - t0, 3)
    log(f"{binary}: {size} bytes; KenLM loads it in {seconds['binary']} s, the ARPA in {seconds['arpa']} s")
    return {"binary": binary.name, "binary_bytes": size, "load_s": seconds}


def add_binary(lm_dir: Path, build_binary: Path, log: Callable[[str], None] = print) -> dict:
    """``livespeech-train lm --binary-of DIR``: the KenLM binary of an LM built before,
    recorded in its ``lm.json``; returns the updated report.

    Raises:
        ValueError: ``lm_dir`` holds no built LM.
        KenLMToolError: ``build_binary`` failed.
    """
    lm_dir = Path(lm_dir)
    report = read_report(lm_dir)
    report.update(binary_entry(lm_dir, build_binary, log))
    write_text_atomic(lm_dir / REPORT_NAME, json.dumps(report, indent=2) + "\n")
    return report


def read_report(lm_dir: Path) -> dict:
    """The ``lm.json`` of a built LM folder.

    Raises:
        ValueError: ``lm_dir`` holds no built LM.
    """
    report_path = lm_dir / REPORT_NAME
    if not report_path.is_file() or not (lm_dir / ARPA_NAME).is_file() or not (lm_dir / LEXICON_NAME).is_file():
        raise ValueError(f"{lm_dir}: no language model built there (livespeech-train lm --out {lm_dir})")
    return json.loads(report_path.read_text(encoding="utf-8"))


def load_lm(path: Path, words: list[str]):
    """KenLM over ``path`` (ARPA or binary) for ``words``.

    Raises:
        ValueError: KenLM cannot read it.
    """
    from livespeech.lm import LanguageModelError, load_kenlm

    try:
        return load_kenlm(path, words)
    except LanguageModelError as error:
        raise ValueError(str(error)) from None


def rare_word_log10prob(model: ngram.NgramModel) -> float:
    """Median log10 unigram probability of the words seen after one distinct word only
    (the rarest the model has): the base of a run-time word's probability."""
    adjusted = ngram.adjusted_counts(model.counts)[0]
    rare = np.flatnonzero(adjusted == 1)
    rare = rare[rare > ngram.EOS]
    return float(np.median(model.log10_prob[0][rare])) if rare.size else -6.0


def evaluate(arpa: Path, words: list[str], files: Sequence[Path]) -> dict:
    """Out-of-vocabulary rate and perplexity of the LM on each file (its folder's name
    is the source), through KenLM as the beam search scores: every in-vocabulary word
    and each sentence's ``</s>`` is scored; an OOV word is not, but stays in the
    context as ``<unk>``.

    Returns:
        {source: {"sentences", "words", "oov_rate", "perplexity"}}.
    Raises:
        ValueError: KenLM cannot read ``arpa``.
    """
    lm = load_lm(arpa, [*words, "<unk>"])
    index = {w: i for i, w in enumerate(words)}
    unk = len(words)
    results = {}
    for path in files:
        lines = normalized_lines([path])
        scores, oov, total = [], 0, 0
        for line in lines:
            state = lm.start(False)
            for word in line.split():
                i = index.get(word, unk)
                state, score = lm.score(state, i)
                total += 1
                if i == unk:
                    oov += 1
                else:
                    scores.append(score)
            scores.append(lm.finish(state)[1])
        results[path.parent.name or str(path)] = {"sentences": len(lines), "words": total, "oov_rate": round(oov / max(1, total), 5),
                                                  "perplexity": round(ngram.perplexity(scores), 2)}
    return results


def attach(lm_dir: Path, model_dir: Path) -> Path:
    """Copy the LM of ``lm_dir`` into a model folder and list it in its ``config.json``,
    with the beam search settings of ``lm_dir/decoder.json`` when there is one.

    Raises:
        ValueError: ``lm_dir`` holds no built LM, or ``model_dir`` no model.
    """
    from livespeech.beam import BeamOptions
    from livespeech.lm import attach as attach_files

    lm_dir, model_dir = Path(lm_dir), Path(model_dir)
    report = read_report(lm_dir)
    if not (model_dir / "config.json").is_file():
        raise ValueError(f"{model_dir}: not a model folder")
    decoder_path = lm_dir / DECODER_NAME
    decoder = BeamOptions.from_dict(json.loads(decoder_path.read_text(encoding="utf-8"))) if decoder_path.is_file() else BeamOptions()
    entry = {key: report[key] for key in ("order", "prune", "smoothing", "words", "ngrams", "user_word_log10prob") if key in report}
    entry["decoder"] = decoder.to_dict()
    entry["perplexity"] = {source: r["perplexity"] for source, r in report.get("dev", {}).items()}
    entry["oov_rate"] = {source: r["oov_rate"] for source, r in report.get("dev", {}).items()}
    binary = lm_dir / report["binary"] if report.get("binary") and (lm_dir / report["binary"]).is_file() else None
    return attach_files(model_dir, lm_dir / ARPA_NAME, lm_dir / LEXICON_NAME, entry, binary)
