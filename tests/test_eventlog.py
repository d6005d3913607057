"""``--events``: JSON lines written off the recognizer's thread; a reader that stalls
(or never comes) costs dropped lines, counted, never a blocked caller."""

import fcntl
import json
import os
import time

import pytest

from livespeech.eventlog import EventLog, event_line
from livespeech.worker import Segment
from tests.livefakes import FakePhraseResult

F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)


def segment(text: str = "lights on", phrase=FakePhraseResult("lights on", 0.9, (("lights on", 0.9), ("stop", 0.05)))):
    return Segment(text, 1.0, 1.5, 100, 150, (), phrase)


def wait_for(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_lines_are_appended_as_json(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text("earlier\n")
    log = EventLog(path)
    log.put(segment())
    log.put(segment("hello", None))
    log.close()
    earlier, lights, hello = path.read_text().splitlines()
    assert earlier == "earlier" and log.written == 2 and log.dropped == 0
    assert json.loads(lights) == {"start_s": 1.0, "end_s": 1.5, "text": "lights on", "phrase": "lights on",
                                  "confidence": 0.9, "top": [{"phrase": "lights on", "p": 0.9}, {"phrase": "stop", "p": 0.05}]}
    assert json.loads(hello) == {"start_s": 1.0, "end_s": 1.5, "text": "hello", "phrase": None, "confidence": None, "top": []}


def test_a_full_pipe_drops_lines_and_never_blocks(tmp_path):
    fifo = tmp_path / "events.fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # a reader that opens the pipe, then never reads
    try:
        fcntl.fcntl(reader, F_SETPIPE_SZ, 4096)  # one page: a few dozen lines fill it
        log = EventLog(fifo, capacity=4)
        slowest = 0.0
        for _ in range(2000):  # until the pipe and then the queue are full
            t0 = time.perf_counter()
            log.put(segment())
            slowest = max(slowest, time.perf_counter() - t0)
            if log.dropped:
                break
            time.sleep(0.001)
        assert log.dropped and slowest < 0.05  # put() only queues, even into a full pipe
        stuck = log.written
        assert 4096 // len(event_line(segment())) <= stuck < 200 and log.error is None  # what the pipe holds
        t0 = time.perf_counter()
        log.close(timeout=0.2)
        assert time.perf_counter() - t0 < 0.5  # closing gives up on a stuck reader
        data = b""
        while chunk := _read(reader):
            data += chunk
        assert data.count(b"\n") >= stuck and event_line(segment()).encode() in data
    finally:
        os.close(reader)


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, 65536)
    except BlockingIOError:
        return b""


def test_a_file_that_cannot_be_opened_counts_every_line_as_dropped(tmp_path):
    log = EventLog(tmp_path / "no-such-folder" / "events.jsonl")
    wait_for(lambda: log.error is not None)
    assert "no-such-folder" in log.error and "\n" not in log.error
    log.put(segment())
    log.put(segment())
    log.close()
    assert log.dropped == 2 and log.written == 0


@pytest.mark.parametrize("capacity", [1, 3])
def test_a_pipe_nobody_opens_holds_at_most_capacity_lines(tmp_path, capacity):
    fifo = tmp_path / "events.fifo"
    os.mkfifo(fifo)
    log = EventLog(fifo, capacity=capacity)  # the writer waits in open() for a reader
    for _ in range(10):
        log.put(segment())
    assert log.dropped == 10 - capacity and log.written == 0
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # let the writer go
    try:
        wait_for(lambda: log.written == capacity)
        log.close()
    finally:
        os.close(reader)
