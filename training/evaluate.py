"""Evaluation of a model folder through the same streaming Recognizer users run.

For each corpus: CER and WER (jiwer), the fraction of exactly right transcripts,
the real-time factor, optionally per speaker/voice, the most common character
confusions, and how often streaming with ``chunk_ms`` agrees with one-chunk
(offline) decoding.

Without corpora it measures the headline sets (:func:`headline_sets`), hardest
first, all of them speakers, voices or sentences that training never saw:
speechocean762's 25 held-out test speakers (report) and 25 dev speakers (tune),
the held-out voice slt reading sentences of ``text/*/dev.txt``, the FSDD test takes,
and those takes on a microphone-like noise floor:

    livespeech-train evaluate --model models/base
    livespeech-train evaluate --model models/base --headline corpus/slt_sentences/manifest.jsonl
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from livespeech.audio import AudioError, read_audio
from livespeech.beam import DecoderChoice, word_decoder_for
from livespeech.bundle import load_bundle
from livespeech.recognizer import Recognizer, transcribe_blocks
from training.data import read_corpus


def _scores(references: list[str], hypotheses: list[str]) -> dict:
    import jiwer

    safe = [h if h.strip() else "<empty>" for h in hypotheses]
    return {
        "utterances": len(references),
        "cer": round(jiwer.cer(references, safe), 4),
        "wer": round(jiwer.wer(references, safe), 4),
        "exact": round(sum(r == h for r, h in zip(references, hypotheses)) / max(1, len(references)), 4),
    }


def _grouped(refs: list[str], hyps: list[str], keys: list[str]) -> dict:
    """Scores of each group of utterances that share a key."""
    return {key: _scores([r for r, k in zip(refs, keys) if k == key], [h for h, k in zip(hyps, keys) if k == key])
            for key in sorted(set(keys))}


def character_confusions(references: list[str], hypotheses: list[str], top: int = 10) -> list[dict]:
    """The most common character substitutions, deletions and insertions."""
    import jiwer

    counts: Counter = Counter()
    safe = [h if h.strip() else "<empty>" for h in hypotheses]
    output = jiwer.process_characters(references, safe)
    for ref, hyp, chunks in zip(output.references, output.hypotheses, output.alignments):
        for chunk in chunks:
            if chunk.type == "equal":
                continue
            r = "".join(ref[chunk.ref_start_idx : chunk.ref_end_idx]) or "-"
            h = "".join(hyp[chunk.hyp_start_idx : chunk.hyp_end_idx]) or "-"
            counts[(chunk.type, r, h)] += 1
    return [{"type": t, "ref": r, "hyp": h, "count": n} for (t, r, h), n in counts.most_common(top)]


def on_noise_floor(samples: np.ndarray, rng: np.random.Generator, level_dbfs: float, lead_in_s: float,
                   sample_rate: int) -> np.ndarray:
    """The utterance as a microphone would give it: white noise at ``level_dbfs`` RMS
    (dBFS) under the whole of it and ``lead_in_s`` seconds of that noise alone before it.

    Args:
        samples: float32 audio, shape (N,).
    Returns:
        float32 audio, shape (N + round(lead_in_s * sample_rate),).
    """
    from training.augment import colored_noise

    lead = round(lead_in_s * sample_rate)
    x = np.concatenate([np.zeros(lead, np.float32), samples])
    return (x + 10 ** (level_dbfs / 20) * colored_noise(len(x), rng)).astype(np.float32)


@dataclass(frozen=True)
class EvalSet:
    """One row of an evaluation: a corpus (``training.data.read_corpus`` spec), what it
    measures, and optionally the microphone-like condition of :func:`on_noise_floor`."""

    spec: str
    label: str = ""
    noise_floor_dbfs: float | None = None
    lead_in_s: float = 0.0

    @property
    def key(self) -> str:
        """The row's name in results: the spec, with the noise condition when there is one."""
        if self.noise_floor_dbfs is None:
            return self.spec
        return f"{self.spec} @ {self.noise_floor_dbfs:g} dBFS noise, {self.lead_in_s:g} s lead-in"


MICROPHONE_NOISE_DBFS, MICROPHONE_LEAD_IN_S = -67.0, 0.3  # the quiet-microphone condition (see on_noise_floor)


def headline_sets(shared: Path = Path("../shared/data"), slt_natural: Path = Path("corpus/slt_natural/manifest.jsonl")) -> list[EvalSet]:
    """The sets every model is reported on, hardest first: real speech by unseen
    speakers, then an unseen voice reading unseen natural sentences, then digits.

    ``slt_natural`` is built by ``livespeech-train synth --out corpus/slt_natural --utterances 300
    --seed 3001 --split eval --text natural --voice flite:slt festival:cmu_us_slt_arctic_hts --no-augment``.
    """
    fsdd = f"fsdd-test:{shared / 'fsdd'}"
    return [
        EvalSet(f"so762-test:{shared / 'speechocean762'}", "speechocean762, 25 held-out test speakers (report; never tuned on)"),
        EvalSet(f"so762-dev:{shared / 'speechocean762'}", "speechocean762, 25 held-out dev speakers (tuned on)"),
        EvalSet(str(slt_natural), "held-out voice slt (flite, festival) reading text/*/dev.txt sentences"),
        EvalSet(fsdd, "FSDD test takes 0-4 (6 real speakers)"),
        EvalSet(fsdd, "FSDD test takes on a quiet-microphone noise floor", MICROPHONE_NOISE_DBFS, MICROPHONE_LEAD_IN_S),
    ]


def evaluate_model(model_dir: Path, corpora: list[str | EvalSet], chunk_ms: int = 100, per_speaker: bool = False,
                   agreement: bool = True, limit: int | None = None, group_by: str | None = None,
                   noise_floor_dbfs: float | None = None, lead_in_s: float = 0.0, decoder: str = "greedy") -> dict:
    """Evaluate a model folder on corpora (see ``training.data.read_corpus``), in order.

    Args:
        corpora: specs or :class:`EvalSet` rows (which carry their own noise condition).
        per_speaker: also score each speaker/voice.
        group_by: also score each value of this manifest field (e.g. ``kind``).
        noise_floor_dbfs, lead_in_s: when a level is given, put every utterance of the
            plain specs on white noise of that level with a lead-in of noise
            (:func:`on_noise_floor`; the same noise for every model, from a fixed seed).
        decoder: "greedy" (the characters) or "beam" (words: the folder's language model
            and tuned beam search settings, as ``livespeech transcribe --decoder beam``).
    Returns:
        ``{"model": name, "chunk_ms": n, "decoder": d, "corpora": {key: {label, cer, wer, exact, rtf,
        utterances, streaming_offline_agreement, confusions, [speakers], [groups]}}}``.
    Raises:
        livespeech.lm.LanguageModelError: ``decoder`` is "beam" and the folder has no
            usable language model.
    """
    bundle = load_bundle(Path(model_dir))
    recognizer = Recognizer(bundle, word_decoder=word_decoder_for(bundle, DecoderChoice(decoder)))
    results = {"model": bundle.name, "chunk_ms": chunk_ms, "decoder": decoder, "corpora": {}}
    if noise_floor_dbfs is not None:
        results["noise_floor"] = {"dbfs": noise_floor_dbfs, "lead_in_s": lead_in_s}
    for row_set in (c if isinstance(c, EvalSet) else EvalSet(c, "", noise_floor_dbfs, lead_in_s) for c in corpora):
        spec = row_set.spec
        utterances = read_corpus(spec)[:limit]
        rng = np.random.default_rng(0)
        refs, hyps, offline, speakers, groups = [], [], [], [], []
        audio_s = processing_s = 0.0
        for u in utterances:
            try:
                samples = read_audio(Path(u.audio), bundle.features.sample_rate)
            except AudioError:
                continue
            if row_set.noise_floor_dbfs is not None:
                samples = on_noise_floor(samples, rng, row_set.noise_floor_dbfs, row_set.lead_in_s, bundle.features.sample_rate)
            recognizer.reset()
            t0 = time.perf_counter()
            transcript = transcribe_blocks(recognizer, [samples], chunk_ms)
            processing_s += time.perf_counter() - t0
            audio_s += transcript.audio_s
            refs.append(u.text)
            hyps.append(transcript.text)
            speakers.append(u.speaker)
            groups.append(str(u.extra.get(group_by, "")) if group_by else "")
            if agreement:
                recognizer.reset()
                offline.append(transcribe_blocks(recognizer, [samples], max(1, int(1000 * len(samples) / bundle.features.sample_rate) + 1)).text)
        row = {"label": row_set.label, **_scores(refs, hyps)} if row_set.label else _scores(refs, hyps)
        row["rtf"] = round(processing_s / max(audio_s, 1e-9), 4)
        if agreement:
            row["streaming_offline_agreement"] = round(sum(a == b for a, b in zip(hyps, offline)) / max(1, len(hyps)), 4)
        row["confusions"] = character_confusions(refs, hyps) if refs else []
        if per_speaker:
            row["speakers"] = _grouped(refs, hyps, speakers)
        if group_by:
            row["groups"] = _grouped(refs, hyps, groups)
        row["examples"] = [{"ref": r, "hyp": h} for r, h in list(zip(refs, hyps))[:5]]
        results["corpora"][row_set.key] = row
    return results
