"""Training data: corpus readers, a log-mel feature cache, batching.

Readers return :class:`Utterance` lists from
- a JSONL manifest, one ``{"audio": path, "text": str}`` per line (paths relative to
  the manifest's folder or absolute; other keys such as ``voice`` are kept; texts are
  read as spoken, ``training.spoken.spoken_words``: "Mr. Hale, 1876" is "mister hale
  eighteen seventy six"),
- speechocean762 (``manifest.jsonl`` with ``speaker`` and ``heldout``): the 200
  training speakers, or the 25 held-out ``dev`` or ``test`` speakers,
- the Free Spoken Digit Dataset folder (``recordings/{digit}_{speaker}_{take}.wav``),
- the LibriSpeech layout (``SPEAKER/CHAPTER/SPEAKER-CHAPTER.trans.txt``),
- Asterisk's prompts (a folder of ``NAME.wav`` and ``core-sounds-en.txt``),
- a folder per phrase (``PHRASE_NAME/*.wav``, the folder name is the text).

Evaluation data never reaches training: an utterance read for evaluation carries
``heldout`` (``dev`` or ``test``) and :func:`check_training_set` refuses it, as it
refuses the held-out synthetic voice slt.

Log-mel features are computed once per corpus and kept in a float16 cache file
next to the training run, so each epoch only reads memory.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from livespeech.atomic import atomic_path, write_text_atomic
from livespeech.audio import AudioError, read_audio
from livespeech.features import FeatureConfig, LogMel, log_mel
from livespeech.text import DIGIT_WORDS, Vocabulary, normalize
from training.spoken import spoken_words

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
# Synthetic voices that measure unseen voices: never trained on (training.synth refuses them too).
HELD_OUT_VOICES = frozenset({"flite:slt", "festival:cmu_us_slt_arctic_hts"})
# Where Debian's asterisk-core-sounds-en puts the transcripts of the prompts.
ASTERISK_TRANSCRIPTS = Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz")


@dataclass(frozen=True)
class Utterance:
    """One training or evaluation example: audio file, transcript, and who spoke it."""

    audio: str
    text: str
    speaker: str = ""
    extra: dict = field(default_factory=dict, compare=False, hash=False)


def read_manifest(path: Path) -> list[Utterance]:
    """Utterances of a JSONL manifest.

    Raises:
        ValueError: a line is not JSON or lacks ``audio`` or ``text`` (with its line number).
    """
    path = Path(path)
    out = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            audio, text = row["audio"], row["text"]
        except (json.JSONDecodeError, KeyError, TypeError):
            raise ValueError(f"{path}:{number}: need a JSON object with 'audio' and 'text'") from None
        audio_path = Path(audio) if Path(audio).is_absolute() else path.parent / audio
        speaker = str(row.get("voice", row.get("speaker", "")))
        out.append(Utterance(str(audio_path), spoken_words(text), speaker, {k: v for k, v in row.items() if k not in ("audio", "text")}))
    return out


def read_speechocean(folder: Path, heldout: str | None = None) -> list[Utterance]:
    """speechocean762 utterances (``FOLDER/manifest.jsonl``): the training speakers
    (``heldout`` None: the 200 speakers whose ``heldout`` field is null), or the 25
    held-out ``dev`` or ``test`` speakers. Speakers read as ``so762:NNNN``.

    Raises:
        ValueError: ``heldout`` is not None, ``dev`` or ``test``; or see :func:`read_manifest`.
    """
    if heldout not in (None, "dev", "test"):
        raise ValueError(f"speechocean762 held-out split must be dev or test, got {heldout!r}")
    out = []
    for u in read_manifest(Path(folder) / "manifest.jsonl"):
        if u.extra.get("heldout") == heldout:
            out.append(Utterance(u.audio, u.text, f"so762:{u.extra.get('speaker', '')}", u.extra))
    return out


def read_asterisk(folder: Path, transcripts: Path | None = None) -> list[Utterance]:
    """Asterisk's English prompts (Debian ``asterisk-core-sounds-en-wav``, one real US
    voice, 8 kHz): ``FOLDER/NAME.wav`` (subfolders such as ``digits/1.wav`` included)
    with the text of ``NAME: text`` in ``core-sounds-en.txt`` (plain or gzip; looked for in
    the folder, then where ``asterisk-core-sounds-en`` installs it). Prompts whose text
    is a sound (``[beep]``) or missing are left out.

    Raises:
        ValueError: no transcripts file found.
    """
    import gzip

    folder = Path(folder)
    candidates = [transcripts] if transcripts else [folder / "core-sounds-en.txt", folder / "core-sounds-en.txt.gz", ASTERISK_TRANSCRIPTS]
    found = next((c for c in candidates if c and c.is_file()), None)
    if found is None:
        raise ValueError(f"no core-sounds-en.txt for {folder} (apt-get install asterisk-core-sounds-en)")
    raw = gzip.decompress(found.read_bytes()) if found.suffix == ".gz" else found.read_bytes()
    out = []
    for line in raw.decode("utf-8", "replace").splitlines():
        name, colon, text = line.partition(":")
        if not colon or line.startswith(";") or "[" in text:
            continue
        audio = folder / f"{name.strip()}.wav"
        words = spoken_words(text)
        if words and audio.is_file():
            out.append(Utterance(str(audio), words, "asterisk:allison"))
    return out


def check_training_set(utterances: list[Utterance], source: str = "") -> None:
    """Refuse evaluation data in training: utterances marked ``heldout`` (speechocean762's
    dev and test speakers, FSDD's test takes) and the held-out synthetic voice slt.

    Raises:
        ValueError: naming the first such utterance and how many there are.
    """
    bad = [u for u in utterances if u.extra.get("heldout") or u.speaker in HELD_OUT_VOICES]
    if bad:
        what = bad[0].extra.get("heldout") or bad[0].speaker
        raise ValueError(f"{source or 'training data'}: {len(bad)} evaluation utterance(s) (held out: {what}, e.g. {bad[0].audio}); "
                         "never train on evaluation speakers, takes or voices")


def read_fsdd(folder: Path, takes: range = range(5, 50), speakers: set[str] | None = None) -> list[Utterance]:
    """FSDD recordings whose take is in ``takes`` (default 5-49, the training split;
    takes 0-4 are the test split) and, when given, whose speaker is in ``speakers``."""
    folder = Path(folder)
    recordings = folder / "recordings" if (folder / "recordings").is_dir() else folder
    out = []
    for wav in sorted(recordings.glob("*.wav")):
        digit, speaker, take = wav.stem.split("_")
        if int(take) in takes and (speakers is None or speaker in speakers):
            extra = {"heldout": "test"} if int(take) < 5 else {}
            out.append(Utterance(str(wav), DIGIT_WORDS[int(digit)], f"fsdd:{speaker}", extra))
    return out


def read_librispeech(folder: Path) -> list[Utterance]:
    """Utterances of a LibriSpeech-layout folder (``*/*/*.trans.txt`` beside FLAC files)."""
    out = []
    for trans in sorted(Path(folder).glob("*/*/*.trans.txt")):
        for line in trans.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            key, _, text = line.partition(" ")
            audio = next((trans.parent / f"{key}{s}" for s in AUDIO_SUFFIXES if (trans.parent / f"{key}{s}").exists()), None)
            if audio is not None:
                out.append(Utterance(str(audio), normalize(text), f"librispeech:{key.split('-')[0]}"))
    return out


def read_phrase_folders(folder: Path) -> list[Utterance]:
    """Utterances of a folder-per-phrase layout: ``FOLDER/lights_on/take1.wav`` is
    "lights on" (underscores and dashes in folder names read as spaces)."""
    out = []
    for sub in sorted(p for p in Path(folder).iterdir() if p.is_dir()):
        text = normalize(sub.name.replace("_", " ").replace("-", " "))
        for audio in sorted(p for p in sub.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES):
            out.append(Utterance(str(audio), text, f"phrases:{sub.name}"))
    return out


def read_corpus(spec: str) -> list[Utterance]:
    """Utterances of a corpus given as ``KIND:PATH`` or a plain path.

    Kinds: ``manifest`` (a .jsonl file), ``so762`` (speechocean762's training speakers;
    ``so762-dev`` and ``so762-test`` for its held-out speakers), ``fsdd`` (``fsdd:PATH``
    for takes 5-49 or ``fsdd-test:PATH`` for takes 0-4), ``librispeech``, ``asterisk``,
    ``phrases``.  A plain path is a manifest when it ends in .jsonl, else guessed from
    the folder's layout.

    Raises:
        ValueError: unknown kind or a path that does not exist.
    """
    kind, _, path = spec.partition(":") if ":" in spec and not Path(spec).exists() else ("", "", spec)
    p = Path(path)
    if not p.exists():
        raise ValueError(f"corpus not found: {path}")
    if not kind:
        if p.suffix == ".jsonl":
            kind = "manifest"
        elif (p / "recordings").is_dir() or any(p.glob("0_*_0.wav")):
            kind = "fsdd"
        elif any(p.glob("*/*/*.trans.txt")):
            kind = "librispeech"
        else:
            kind = "phrases"
    readers = {
        "manifest": read_manifest,
        "fsdd": read_fsdd,
        "fsdd-test": lambda q: read_fsdd(q, takes=range(0, 5)),
        "so762": read_speechocean,
        "so762-dev": lambda q: read_speechocean(q, "dev"),
        "so762-test": lambda q: read_speechocean(q, "test"),
        "asterisk": read_asterisk,
        "librispeech": read_librispeech,
        "phrases": read_phrase_folders,
    }
    if kind not in readers:
        raise ValueError(f"unknown corpus kind {kind!r}; use one of {sorted(readers)}")
    return readers[kind](p)


# Speeds of the augmented copies of a corpus after the first, taken in turn (speed
# perturbation 0.9 / 1.0 / 1.1, Ko et al., 2015); the first copy is left as recorded.
COPY_SPEEDS = (0.9, 1.1, 1.0)


@dataclass(frozen=True)
class AugmentedCopy:
    """The waveform transform of copy ``copy`` of an oversampled corpus: copy 0 as
    recorded; copy k >= 1 played at ``COPY_SPEEDS[(k - 1) % 3]`` times the speed, then
    reverberation, telephone band, noise and gain (``training.augment.augment_waveform``,
    probabilities of ``HARD_AUGMENT``), drawn from ``(seed, copy, utterance index)`` so
    the copy is the same on every run.
    """

    copy: int
    seed: int = 0

    @property
    def name(self) -> str:
        return f"copy{self.copy}-seed{self.seed}"

    def __call__(self, samples: np.ndarray, index: int) -> np.ndarray:
        from training.augment import HARD_AUGMENT, augment_waveform, speed_perturb

        if self.copy == 0:
            return samples
        speed = COPY_SPEEDS[(self.copy - 1) % len(COPY_SPEEDS)]
        if speed != 1.0:
            samples = speed_perturb(samples, speed)
        samples, _ = augment_waveform(samples, np.random.default_rng([self.seed, self.copy, index]), HARD_AUGMENT)
        return samples


class FeatureCache:
    """Log-mel features of a list of utterances, computed once and stored in one
    float16 ``.npy`` file (all frames concatenated) plus an offsets file.

    ``transform`` (e.g. :class:`AugmentedCopy`), when given, changes each utterance's
    16 kHz waveform (``transform(samples, index)``) before its log-mel is taken; its
    ``name`` is part of the cache's key.

    Utterances whose audio cannot be read are dropped (``self.utterances`` lists the
    kept ones, ``self.dropped`` the others with the reason).
    """

    def __init__(self, utterances: list[Utterance], cache_dir: Path, config: FeatureConfig = FeatureConfig(), progress=None,
                 transform=None):
        variant = [transform.name] if transform is not None else []
        key = hashlib.sha1(json.dumps([config.to_dict(), [(u.audio, u.text) for u in utterances], *variant]).encode()).hexdigest()[:16]
        cache_dir = Path(cache_dir)
        cache_dir.mkdir(parents=True, exist_ok=True)
        data_path, index_path = cache_dir / f"{key}.npy", cache_dir / f"{key}.json"
        if not (data_path.exists() and index_path.exists()):
            self._build(utterances, config, data_path, index_path, progress, transform)
        index = json.loads(index_path.read_text())
        keep = set(index["kept"])
        self.utterances = [u for i, u in enumerate(utterances) if i in keep]
        # (audio path, reason) of each utterance left out because its audio could not be read
        self.dropped = [(utterances[i].audio, reason) for i, reason in index.get("dropped", [])]
        self.offsets = np.asarray(index["offsets"], dtype=np.int64)  # (len + 1,)
        self.frames = np.load(data_path, mmap_mode="r")  # (total_frames, n_mels) float16

    @staticmethod
    def _build(utterances, config, data_path: Path, index_path: Path, progress, transform=None) -> None:
        module = LogMel(config)
        pieces, offsets, kept, dropped = [], [0], [], []
        with torch.inference_mode():
            for i, u in enumerate(utterances):
                try:
                    samples = read_audio(Path(u.audio), config.sample_rate)
                except AudioError as error:
                    dropped.append([i, str(error)])
                    continue
                if transform is not None:
                    samples = transform(samples, i)
                feats = log_mel(torch.from_numpy(samples), config, module).numpy().astype(np.float16)
                if feats.shape[0] == 0:
                    dropped.append([i, "shorter than one frame"])
                    continue
                pieces.append(feats)
                offsets.append(offsets[-1] + feats.shape[0])
                kept.append(i)
                if progress:
                    progress(1)
        # Temporary names are unique (mkstemp): ranks of a distributed run may build the
        # same cache at once; each writes identical content and renames it into place.
        with atomic_path(data_path, suffix=".npy") as tmp:  # np.save appends .npy to other names
            np.save(tmp, np.concatenate(pieces) if pieces else np.zeros((0, config.n_mels), np.float16))
        write_text_atomic(index_path, json.dumps({"offsets": offsets, "kept": kept, "dropped": dropped}))

    def __len__(self) -> int:
        return len(self.utterances)

    def length(self, i: int) -> int:
        """Frames of utterance ``i``."""
        return int(self.offsets[i + 1] - self.offsets[i])

    def features(self, i: int) -> torch.Tensor:
        """Log-mel of utterance ``i``, float32, shape (T, n_mels)."""
        return torch.from_numpy(np.asarray(self.frames[self.offsets[i] : self.offsets[i + 1]], dtype=np.float32))

    def statistics(self, max_frames: int = 2_000_000) -> tuple[torch.Tensor, torch.Tensor]:
        """Global per-band mean and standard deviation of the cached frames, each shape (n_mels,)."""
        step = max(1, len(self.frames) // max_frames)
        sample = np.asarray(self.frames[::step], dtype=np.float64)
        return torch.tensor(sample.mean(0), dtype=torch.float32), torch.tensor(sample.std(0) + 1e-5, dtype=torch.float32)


class Item(NamedTuple):
    """One training example: utterance ``parts`` of ``cache`` said one after another
    (one part, or two of the same speaker), with ``gap`` frames of pause between them."""

    cache: FeatureCache
    parts: tuple[int, ...]
    gap: int = 0


def join_features(pieces: list[torch.Tensor], gap: int, rng: np.random.Generator) -> torch.Tensor:
    """Log-mel of utterances said one after another with a pause between each two.

    The pause is ``gap`` frames drawn at random from the quietest tenth of the frames
    (lowest mean log-mel) of the utterance before it: its own background, room noise
    for a recording and digital silence for a synthesizer, so the join adds no new
    channel.

    Args:
        pieces: log-mel of each utterance, shapes (T_k, F).
        gap: frames of pause between two pieces (>= 0).
        rng: the draws of the pause frames.
    Returns:
        log-mel, shape (sum T_k + gap * (len(pieces) - 1), F).
    """
    if len(pieces) == 1:
        return pieces[0]
    out = [pieces[0]]
    for before, after in zip(pieces, pieces[1:]):
        quietest = torch.argsort(before.mean(1))[: max(1, before.shape[0] // 10)]
        out += [before[quietest[torch.from_numpy(rng.integers(0, len(quietest), gap))]], after]
    return torch.cat(out)


class TrainingSet(torch.utils.data.Dataset):
    """(features (T, F), token ids (L,)) pairs from one or more feature caches,
    each cache repeated ``weight`` times per epoch.

    With ``join_fraction`` > 0, that share of the items (drawn from ``seed``) joins
    the utterance to another one of the same speaker in the same cache, after a
    pause of ``gap_frames`` (lowest, highest) frames (:func:`join_features`); its
    transcript is the two joined by a space. A streaming recognizer that keeps the
    model's state across pauses (``EndpointConfig.state_reset_s``) hears exactly
    that; a model trained only on single utterances from a fresh state does not
    learn to start a new word after one. Utterances without a speaker, or whose
    speaker said nothing else, stay single.
    """

    def __init__(self, caches: list[tuple[FeatureCache, int]], vocabulary: Vocabulary, stack: int = 1,
                 join_fraction: float = 0.0, gap_frames: tuple[int, int] = (20, 200), seed: int = 0):
        if not 0 <= join_fraction <= 1 or not 0 <= gap_frames[0] <= gap_frames[1]:
            raise ValueError("join_fraction must be in [0, 1] and the pause range (lowest, highest) >= 0")
        self.items: list[Item] = []
        self.targets: list[list[int]] = []
        self.seed, self.epoch = seed, 0
        draw = random.Random(seed)
        for cache, weight in caches:
            tokens = [vocabulary.encode(u.text) for u in cache.utterances]
            usable = [i for i in range(len(cache)) if tokens[i] and cache.length(i) // stack >= ctc_steps_needed(tokens[i])]
            by_speaker: dict[str, list[int]] = {}
            for i in usable:
                by_speaker.setdefault(cache.utterances[i].speaker, []).append(i)
            for i in usable:
                others = by_speaker.get(cache.utterances[i].speaker, []) if cache.utterances[i].speaker else []
                for _ in range(weight):
                    if join_fraction and len(others) > 1 and draw.random() < join_fraction:
                        j = others[draw.randrange(len(others) - 1)]
                        j = others[-1] if j == i else j  # any other utterance of the speaker, each as likely
                        self.items.append(Item(cache, (i, j), draw.randint(*gap_frames)))
                        self.targets.append(vocabulary.encode(f"{cache.utterances[i].text} {cache.utterances[j].text}"))
                    else:
                        self.items.append(Item(cache, (i,)))
                        self.targets.append(tokens[i])

    def __len__(self) -> int:
        return len(self.items)

    def set_epoch(self, epoch: int) -> None:
        """Draw the pauses (and augmentations) of epoch ``epoch``."""
        self.epoch = epoch

    def length(self, index: int) -> int:
        """Frames of item ``index`` (its parts and pauses)."""
        item = self.items[index]
        return sum(item.cache.length(i) for i in item.parts) + item.gap * (len(item.parts) - 1)

    def _pieces(self, item: Item, rng: np.random.Generator) -> list[torch.Tensor]:
        return [item.cache.features(i) for i in item.parts]

    def __getitem__(self, index: int):
        item = self.items[index]
        rng = np.random.default_rng([self.seed, self.epoch, index])
        feats = join_features(self._pieces(item, rng), item.gap, rng)
        return feats, torch.tensor(self.targets[index], dtype=torch.long)


def ctc_steps_needed(tokens: list[int]) -> int:
    """Output steps CTC needs for a label sequence: one per label, one more between repeats."""
    return len(tokens) + sum(a == b for a, b in zip(tokens, tokens[1:]))


class AugmentedTrainingSet(TrainingSet):
    """Like :class:`TrainingSet`, but each utterance is read from its audio file, augmented
    on the fly (``training.augment.augment_waveform``) and turned into log-mel.

    The augmentation of item ``i`` in epoch ``e`` is drawn from a generator seeded with
    ``(seed, e, i)``, so a resumed run and any number of DataLoader workers see exactly
    the same audio as an uninterrupted run.  Call :meth:`set_epoch` each epoch.
    """

    def __init__(self, caches, vocabulary: Vocabulary, stack: int, augment, features: FeatureConfig,
                 noise_dir: str = "", seed: int = 0, join_fraction: float = 0.0, gap_frames: tuple[int, int] = (20, 200)):
        super().__init__(caches, vocabulary, stack, join_fraction, gap_frames, seed)
        self.augment, self.features = augment, features
        self.noises = load_noises(noise_dir, features.sample_rate) if noise_dir else []
        self._module = None

    def _pieces(self, item: Item, rng: np.random.Generator) -> list[torch.Tensor]:
        from training.augment import augment_waveform

        if self._module is None:
            self._module = LogMel(self.features)
        pieces = []
        for i in item.parts:
            samples = read_audio(Path(item.cache.utterances[i].audio), self.features.sample_rate)
            samples, _ = augment_waveform(samples, rng, self.augment, self.noises)
            with torch.no_grad():
                pieces.append(log_mel(torch.from_numpy(samples), self.features, self._module))
        return pieces


def load_noises(folder: str, sample_rate: int, max_seconds: float = 600.0) -> list[np.ndarray]:
    """Noise recordings of a folder (any audio files, read recursively), at most
    ``max_seconds`` in all, for additive-noise augmentation.

    Raises:
        ValueError: the folder holds no readable audio.
    """
    noises, total = [], 0.0
    for path in sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES):
        try:
            noise = read_audio(path, sample_rate)
        except AudioError:
            continue
        noises.append(noise)
        total += len(noise) / sample_rate
        if total >= max_seconds:
            break
    if not noises:
        raise ValueError(f"no readable noise recordings in {folder}")
    return noises


class BucketBatchSampler(torch.utils.data.Sampler):
    """Batches of utterances of similar length holding at most ``max_frames`` frames
    (padding included), in a new random order every epoch (``set_epoch``), except that
    with ``sortagrad`` the first epoch goes from the shortest batch to the longest
    (SortaGrad, Amodei et al., 2016: helps CTC leave its all-blank plateau).

    With ``num_replicas > 1`` each rank takes every ``num_replicas``-th batch
    (distributed data parallel); all ranks see the same number of batches.
    """

    def __init__(self, lengths: list[int], max_frames: int, seed: int = 0, num_replicas: int = 1, rank: int = 0, sortagrad: bool = False):
        self.lengths, self.max_frames, self.seed, self.sortagrad = lengths, max_frames, seed, sortagrad
        self.num_replicas, self.rank, self.epoch = num_replicas, rank, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _batches(self) -> list[list[int]]:
        rng = random.Random(self.seed + self.epoch)
        order = sorted(range(len(self.lengths)), key=lambda i: self.lengths[i] * rng.uniform(0.9, 1.1))
        batches, batch, longest = [], [], 0
        for i in order:
            longest_if_added = max(longest, self.lengths[i])
            if batch and longest_if_added * (len(batch) + 1) > self.max_frames:
                batches.append(batch)
                batch, longest_if_added = [], self.lengths[i]
            batch.append(i)
            longest = longest_if_added
        if batch:
            batches.append(batch)
        if not (self.sortagrad and self.epoch == 0):
            rng.shuffle(batches)
        usable = len(batches) // self.num_replicas * self.num_replicas
        return batches[self.rank : usable : self.num_replicas]

    def __iter__(self):
        return iter(self._batches())

    def __len__(self) -> int:
        return len(self._batches())


def collate(batch):
    """Pad a list of (features (T, F), tokens (L,)) into
    (features (B, T_max, F), lengths (B,), targets (B, L_max), target_lengths (B,))."""
    features = [f for f, _ in batch]
    targets = [t for _, t in batch]
    lengths = torch.tensor([f.shape[0] for f in features])
    target_lengths = torch.tensor([t.shape[0] for t in targets])
    padded = torch.nn.utils.rnn.pad_sequence(features, batch_first=True)
    padded_targets = torch.nn.utils.rnn.pad_sequence(targets, batch_first=True)
    return padded, lengths, padded_targets, target_lengths
