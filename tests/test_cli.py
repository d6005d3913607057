"""The command-line contract of DESIGN.md, run in a subprocess like a user would."""

import json
import os
import re
import subprocess
import sys
import wave

import pytest

from tests.conftest import ROOT, speechlike

THROUGHPUT = re.compile(r"livespeech: \d+ files, [\d.]+ s of audio in [\d.]+ s \([\d.]+x real time, \d+ jobs?\)")


def livespeech(*args, **kwargs):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "livespeech", *map(str, args)], capture_output=True, text=True, env=env, timeout=300, **kwargs)


def test_help():
    p = livespeech("--help")
    assert p.returncode == 0 and "transcribe" in p.stdout


@pytest.mark.parametrize("args", [["transcribe", "--format", "nonsense", "x.wav"], ["transcribe"], ["frobnicate"],
                                  ["transcribe", "--chunk-ms", "0", "x.wav"], ["transcribe", "--jobs", "0", "x.wav"],
                                  ["transcribe", "--jobs", "-1", "x.wav"], ["transcribe", "--jobs", "two", "x.wav"],
                                  ["transcribe", "--chunk-ms", "5001", "x.wav"], ["classify", "--chunk-ms", "100000", "x.wav"],
                                  ["--chunk-ms", "60000"], ["--model", "nosuch", "transcribe", "x.wav"],
                                  ["--device", "3", "record", "digits"]])
def test_usage_errors_exit_2_with_one_line(args):
    p = livespeech(*args)
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("livespeech: error:")


HEAVY = ("torch", "torchaudio", "textual", "sounddevice")


def test_importing_the_command_line_loads_nothing_heavy():
    code = f"import sys, livespeech.cli; print([m for m in {HEAVY!r} if m in sys.modules])"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert p.returncode == 0 and p.stdout.strip() == "[]", p.stderr


@pytest.mark.parametrize("args", [["transcribe", "--chunk-ms", "9999", "x.wav"], ["transcribe", "--output-dir", "{file}", "x.wav"],
                                  ["transcribe", "--decoder", "greedy", "--beam-size", "8", "x.wav"],
                                  ["transcribe", "--words", "{missing}", "x.wav"], ["classify", "--decoder", "greedy", "--words", "{file}", "x.wav"],
                                  # the live view: option checks, then "needs a terminal" (stdin is not one here)
                                  ["--input", "x.wav", "--device", "0"], ["--phrases", "no-such-set"], ["--phrases", "None"],
                                  ["--events", "{missing}/events.jsonl"], ["--decoder", "greedy", "--words", "{file}"],
                                  ["classify", "--phrases", "no-such-set", "x.wav"],
                                  ["classify", "--model", "{model}", "x.wav"],  # --phrases is needed: a general model
                                  ["record", "no-such-set"], ["record", "digits", "--max-seconds", "0.1"],
                                  ["record", "digits", "--max-seconds", "nan"], ["record", "digits", "--input", "x.wav", "--device", "0"]])
def test_usage_errors_come_before_any_heavy_import(tmp_path, tiny_model_dir, args):
    """A usage error costs Python's start, not torch's 2-3 s (bench/startup.py --usage times it)."""
    (tmp_path / "a_file").write_text("x")
    args = [a.format(file=tmp_path / "a_file", missing=tmp_path / "missing.txt", model=tiny_model_dir) for a in args]
    code = ("import sys; from livespeech.cli import main; status = main(sys.argv[1:]); "
            f"print(status, [m for m in {HEAVY!r} if m in sys.modules])")
    p = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                       stdin=subprocess.DEVNULL)
    assert p.stdout.strip() == "2 []", (p.stdout, p.stderr)
    assert len(p.stderr.strip().splitlines()) == 1 and p.stderr.startswith("livespeech: error:")


def test_transcribe_json_with_bad_files(tmp_path, tiny_model_dir, write_audio):
    good = write_audio("good.wav", speechlike(0.6), 16000)
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "text.wav").write_text("not audio\n" * 40)
    (tmp_path / "trunc.wav").write_bytes(good.read_bytes()[:30])
    with wave.open(str(tmp_path / "zero.wav"), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000), w.writeframes(b"")
    bad = ["empty.wav", "text.wav", "trunc.wav", "missing.wav", "zero.wav"]
    p = livespeech("transcribe", "--model", tiny_model_dir, "--format", "json", good, *[tmp_path / b for b in bad])
    assert p.returncode == 1
    *errors, throughput = p.stderr.strip().splitlines()
    assert len(errors) == len(bad) and all(e.startswith("livespeech: error:") for e in errors)
    assert THROUGHPUT.fullmatch(throughput), throughput
    assert "Traceback" not in p.stderr
    rows = [json.loads(line) for line in p.stdout.splitlines()]
    assert len(rows) == 1 and rows[0]["audio"] == str(good)
    assert rows[0]["duration_s"] == pytest.approx(0.6)


def test_output_dir_never_overwrites(tmp_path, tiny_model_dir, write_audio):
    audio = write_audio("clip.wav", speechlike(0.5), 16000)
    out = tmp_path / "out"
    out.mkdir()
    (out / "clip.srt").write_text("precious")
    p = livespeech("transcribe", "--model", tiny_model_dir, "--format", "srt", "--output-dir", out, audio)
    assert p.returncode == 1 and "exists" in p.stderr
    assert (out / "clip.srt").read_text() == "precious"
    p = livespeech("transcribe", "--model", tiny_model_dir, "--format", "srt", "--output-dir", out, "--force", audio)
    assert p.returncode == 0 and (out / "clip.srt").read_text() != "precious"


def test_output_dir_is_made_if_missing_and_a_file_there_is_a_usage_error(tmp_path, tiny_model_dir, write_audio):
    audio = write_audio("clip.wav", speechlike(0.5), 16000)
    out = tmp_path / "new" / "subtitles"
    p = livespeech("transcribe", "--model", tiny_model_dir, "--format", "vtt", "--output-dir", out, audio)
    assert p.returncode == 0 and (out / "clip.vtt").read_text().startswith("WEBVTT")
    (tmp_path / "a_file").write_text("precious")
    p = livespeech("transcribe", "--model", tiny_model_dir, "--output-dir", tmp_path / "a_file", audio)
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "--output-dir" in p.stderr and "Traceback" not in p.stderr
    assert (tmp_path / "a_file").read_text() == "precious"


def test_bad_model_is_one_line(tmp_path, write_audio):
    audio = write_audio("clip.wav", speechlike(0.5), 16000)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{")
    for model in (tmp_path / "broken", "no-such-model"):
        p = livespeech("transcribe", "--model", model, audio)
        assert p.returncode != 0
        assert p.stderr.startswith("livespeech: error:") and len(p.stderr.strip().splitlines()) == 1


def test_models_lists_bundled_default():
    p = livespeech("models")
    assert p.returncode == 0 and "base" in p.stdout


def test_parallel_jobs_give_the_same_output_in_the_same_order(tmp_path):
    """--jobs 2 (worker processes) prints exactly what --jobs 1 prints, bad file included."""
    bad = tmp_path / "bad.wav"
    bad.write_text("not audio\n" * 40)
    files = [*sorted((ROOT / "assets" / "samples").glob("*.wav")), bad]
    files.insert(2, files.pop())  # the bad file in the middle
    runs = {jobs: livespeech("transcribe", "--jobs", jobs, *files) for jobs in (1, 2)}
    for p in runs.values():
        assert p.returncode == 1
        error, throughput = p.stderr.strip().splitlines()
        assert error.startswith(f"livespeech: error: {bad}: not a readable audio file")
        assert THROUGHPUT.fullmatch(throughput), throughput
    assert runs[1].stdout.encode() == runs[2].stdout.encode()
    assert [line.split(":")[0] for line in runs[2].stdout.splitlines()] == [str(f) for f in files if f != bad]
    assert "1 job)" in runs[1].stderr and "2 jobs)" in runs[2].stderr


def test_parallel_jobs_write_output_files_and_json_like_one_job(tmp_path, tiny_model_dir, write_audio):
    files = [write_audio(f"clip{i}.wav", speechlike(0.4 + 0.1 * i, seed=i), 16000) for i in range(3)]
    rows = {}
    for jobs in (1, 2):
        out = tmp_path / f"out{jobs}"
        out.mkdir()
        p = livespeech("transcribe", "--model", tiny_model_dir, "--jobs", jobs, "--format", "vtt", "--output-dir", out, *files)
        assert p.returncode == 0 and p.stdout == ""
        assert sorted(f.name for f in out.iterdir()) == ["clip0.vtt", "clip1.vtt", "clip2.vtt"]
        p = livespeech("transcribe", "--model", tiny_model_dir, "--jobs", jobs, "--format", "json", *files)
        rows[jobs] = [{k: v for k, v in json.loads(line).items() if k != "processing_s"} for line in p.stdout.splitlines()]
    assert all((tmp_path / "out1" / f).read_text() == (tmp_path / "out2" / f).read_text() for f in ("clip0.vtt", "clip1.vtt", "clip2.vtt"))
    assert rows[1] == rows[2] and [r["audio"] for r in rows[2]] == [str(f) for f in files]


def test_default_jobs_one_per_two_minutes_of_audio(tmp_path, write_audio, monkeypatch):
    """Short files stay in one process; long ones get a worker each, up to the cores."""
    import numpy as np

    from livespeech import transcribe

    monkeypatch.setattr(transcribe, "available_cpus", lambda: 4)
    short = [str(write_audio(f"s{i}.wav", np.zeros(16000, np.float32))) for i in range(3)]
    long = [str(write_audio(f"l{i}.wav", np.zeros(150 * 8000, np.float32), 8000, "PCM_16")) for i in range(6)]
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio")
    assert transcribe.default_jobs(short + [str(bad)]) == 1
    assert transcribe.default_jobs(long[:2]) == 2
    assert transcribe.default_jobs(long) == 4


def _children(pid: int) -> list[int]:
    """Process ids whose parent is ``pid`` (Linux /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


def _alive(pid: int) -> bool:
    """Running (a zombie, or gone, is not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _long_file(path):
    """Ten minutes of audio at 8 kHz: a worker takes well over 20 s on it at --chunk-ms 10."""
    import soundfile as sf

    block = speechlike(10.0, 8000)
    with sf.SoundFile(path, "w", 8000, 1, "PCM_U8") as f:
        for _ in range(60):
            f.write(block)
    return path


def _start_jobs(tiny_model_dir, files, text=False):
    """`transcribe --jobs 2` on ``files`` (a short one first), once its workers are busy:
    the short file's line is out, so they have loaded the model; and the worker ids."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.Popen([sys.executable, "-m", "livespeech", "transcribe", "--model", str(tiny_model_dir), "--jobs", "2",
                          "--chunk-ms", "10", *map(str, files)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=text)
    p.stdout.readline()
    return p, [w for w in _children(p.pid) if _alive(w)]


def _clean_up(p, workers):
    import signal

    for w in workers:
        if _alive(w):
            os.kill(w, signal.SIGKILL)
    if p.poll() is None:
        p.kill()
    p.communicate(timeout=30)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_die_when_the_parent_is_killed(tmp_path, tiny_model_dir, write_audio):
    """SIGKILL of `transcribe --jobs 2` leaves no worker running: they were once found
    burning CPU minutes later, reparented to PID 1."""
    import signal
    import time

    long = _long_file(tmp_path / "long.wav")
    p, workers = _start_jobs(tiny_model_dir, [write_audio("short.wav", speechlike(0.3), 16000), long, long, long])
    try:
        assert len(workers) >= 2, workers
        os.kill(p.pid, signal.SIGKILL)
        p.wait(timeout=10)
        deadline = time.monotonic() + 5.0
        while any(_alive(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(w) for w in workers), "workers outlived their parent"
    finally:
        _clean_up(p, workers)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigterm_is_handled_like_ctrl_c(tmp_path, tiny_model_dir, write_audio):
    """SIGTERM stops the workers and exits 143 with one line, no traceback."""
    import signal
    import time

    long = _long_file(tmp_path / "long.wav")
    p, workers = _start_jobs(tiny_model_dir, [write_audio("short.wav", speechlike(0.3), 16000), long, long], text=True)
    try:
        os.kill(p.pid, signal.SIGTERM)
        _, err = p.communicate(timeout=20)
        assert p.returncode == 128 + signal.SIGTERM
        assert err.strip().splitlines() == ["livespeech: error: terminated (SIGTERM)"]
        deadline = time.monotonic() + 5.0
        while any(_alive(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(w) for w in workers)
    finally:
        _clean_up(p, workers)


def test_pipe_and_truncated_file_messages(tmp_path, tiny_model_dir, write_audio):
    """A FIFO is not called an empty file (nor waited on); a WAV cut short is
    transcribed with one warning on stderr."""
    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)
    good = write_audio("good.wav", speechlike(1.0), 16000, "PCM_16")
    cut = tmp_path / "cut.wav"
    cut.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    p = livespeech("transcribe", "--model", tiny_model_dir, "--format", "json", fifo, cut)
    assert p.returncode == 1
    error, warning, throughput = p.stderr.strip().splitlines()
    assert error == f"livespeech: error: {fifo}: not a regular file (a named pipe)"
    assert warning.startswith(f"livespeech: warning: {cut}: truncated file") and "0.50 s" in warning
    assert THROUGHPUT.fullmatch(throughput)
    row = json.loads(p.stdout)
    assert row["audio"] == str(cut) and row["duration_s"] == pytest.approx(0.5, abs=0.01)
