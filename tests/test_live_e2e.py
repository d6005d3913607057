"""End to end through the real PortAudio capture path with ../shared/tools/virtual-mic.

The virtual mic is an ALSA device playing a file, not paced in real time: it floods
the callback (so the ring buffer overruns, by design of this test), and, being an
unpaced file plugin, it skips whole ALSA periods without any status flag and repeats
stale periods after the file's end.  So these tests check our part exactly: what the
worker consumed starts with the file's periods in order, and the live features and
text equal the offline recognizer's on exactly the consumed samples; and the real
``livespeech --device virtual_mic`` runs in a terminal and quits within a second.
"""

import json
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf
import torch

from livespeech.features import log_mel
from livespeech.recognizer import Recognizer
from tests.conftest import FSDD, speechlike
from tests.test_capture import virtual_mic_env

pytestmark = pytest.mark.slow

PROBE = r"""
import json, sys, threading
import numpy as np
from livespeech.bundle import load_bundle
from livespeech.capture import MicSource, resolve_device
from livespeech.worker import LiveUpdate, LiveWorker
from livespeech.recognizer import Recognizer

model, seconds = sys.argv[1], float(sys.argv[2])
updates, reached = [], threading.Event()

def sink(event):
    if isinstance(event, LiveUpdate):
        updates.append(event)
        if event.audio_s >= seconds:
            reached.set()

source = MicSource(resolve_device("virtual_mic"))
consumed, read = [], source.ring.read
source.ring.read = lambda n: consumed.append(read(n)) or consumed[-1]  # tap what the worker takes
worker = LiveWorker(source, Recognizer(load_bundle(model)), sink)
source.start()
worker.start()
ok = reached.wait(120)
end = next(i for i, u in enumerate(updates) if u.audio_s >= seconds)
source.stop()
worker.stop(flush=False)
kept = updates[: end + 1]
samples = np.concatenate(consumed)[: round(kept[-1].audio_s * source.sample_rate)]
np.save(sys.argv[3], samples)
np.save(sys.argv[4], np.concatenate([u.frames for u in kept]))
print(json.dumps({"ok": ok, "rate": source.sample_rate, "label": source.label, "overruns": source.overruns,
                  "error": source.error, "partial": kept[-1].partial,
                  "committed": [s.text for u in kept for s in u.committed]}))
"""


@pytest.fixture
def clip(tmp_path):
    """Two FSDD digits (or speech-like noise) as 16-bit 16 kHz WAV, what the virtual mic plays."""
    takes = sorted(FSDD.glob("*_jackson_1*.wav"))[:2] if FSDD.is_dir() else []
    from livespeech.audio import read_audio

    audio = np.concatenate([read_audio(t) for t in takes]) if takes else speechlike(1.5)
    path = tmp_path / "clip.wav"
    sf.write(path, audio, 16000, subtype="PCM_16")
    return path


def test_portaudio_capture_to_recognizer_equals_offline(tmp_path, clip, tiny_model_dir, tiny_bundle):
    env = virtual_mic_env(clip)
    seconds = 4.0
    p = subprocess.run([sys.executable, "-c", PROBE, str(tiny_model_dir), str(seconds), tmp_path / "samples.npy",
                        tmp_path / "frames.npy"], capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stderr
    live = json.loads(p.stdout)
    assert live["ok"] and live["error"] is None
    assert live["rate"] == 16000 and live["label"] == "virtual_mic (ALSA)"
    assert live["overruns"] > 0  # the unpaced device floods the ring: counted, never a crash
    samples = np.load(tmp_path / "samples.npy")
    assert len(samples) == seconds * 16000

    # what the worker consumed starts with whole ALSA periods (20 ms blocks) of the file,
    # in order, up to its end (then the device repeats stale periods)
    file_audio, _ = sf.read(clip, dtype="float32")
    block, positions = 320, []
    for i in range(0, len(samples) - block + 1, block):
        position = _find(file_audio, samples[i : i + block])
        if position is None or positions and position <= positions[-1]:
            break
        positions.append(position)
    assert positions[0] == 0 and positions[-1] >= len(file_audio) - 2 * block
    assert len(positions) * block > 0.5 * len(file_audio)

    # the live features and text are the offline recognizer's on exactly those samples
    frames = np.load(tmp_path / "frames.npy")
    expected = log_mel(torch.from_numpy(samples)).numpy()[: len(frames)]
    assert frames.shape == expected.shape and np.allclose(frames, expected, atol=1e-4)
    recognizer = Recognizer(tiny_bundle)
    committed = []
    for i in range(0, len(samples), 1600):
        result = recognizer.accept(samples[i : i + 1600])
        committed += [u.text for u in result.committed]
    assert (live["committed"], live["partial"]) == (committed, result.partial)
    assert result.partial or committed  # the random model says something


def _find(haystack: np.ndarray, needle: np.ndarray) -> int | None:
    """First index where ``needle`` occurs exactly in ``haystack``."""
    windows = np.lib.stride_tricks.sliding_window_view(haystack, len(needle))
    hits = np.flatnonzero((windows == needle).all(axis=1))
    return int(hits[0]) if hits.size else None


def test_live_view_on_the_virtual_mic_in_a_terminal(tmp_path, clip, tiny_model_dir):
    if not shutil.which("tmux"):
        pytest.skip("tmux not installed")
    env = virtual_mic_env(clip)
    session = f"ls-e2e-{int(time.time() * 1000) % 100000}"
    exe = f"exec {sys.executable} -m livespeech --model {tiny_model_dir} --device virtual_mic --phrases none"
    subprocess.run(["tmux", "-L", session, "new-session", "-d", "-s", session, "-x", "120", "-y", "40", exe],
                   check=True, env=env, cwd=tmp_path)
    tmux = ["tmux", "-L", session]
    try:
        pid = int(subprocess.run([*tmux, "list-panes", "-t", session, "-F", "#{pane_pid}"], capture_output=True,
                                 text=True, check=True).stdout.split()[0])
        screen = _wait_for_screen(tmux, session, lambda s: "listening" in s and "RTF 0." in s)
        assert "virtual_mic (ALSA) \u00b7 16000 Hz" in screen and "Traceback" not in screen
        assert "log-mel spectrogram" in screen and "Transcript" in screen
        t0 = time.monotonic()
        subprocess.run([*tmux, "send-keys", "-t", session, "q"], check=True)
        while not _exited(pid) and time.monotonic() - t0 < 5:
            time.sleep(0.01)
        assert time.monotonic() - t0 < 1.0
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True)


def _wait_for_screen(tmux, session, ready, timeout=60.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        screen = subprocess.run([*tmux, "capture-pane", "-p", "-t", session], capture_output=True, text=True).stdout
        if ready(screen) or time.monotonic() > deadline:
            assert ready(screen), screen
            return screen
        time.sleep(0.2)


def _exited(pid: int) -> bool:
    """Gone, or a zombie tmux has not reaped yet."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True
