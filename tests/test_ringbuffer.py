"""RingBuffer: order across wrap-around, drop-newest overruns, concurrent producer and
consumer, waiting, arrival times, and a write path that does not allocate."""

import threading
import time
import tracemalloc

import numpy as np
import pytest

from livespeech.ringbuffer import RingBuffer


def test_fifo_order_across_wraparound():
    ring = RingBuffer(10)
    out = []
    for start in range(0, 100, 7):
        ring.write(np.arange(start, start + 7, dtype=np.float32))
        out.append(ring.read(7))
    assert np.array_equal(np.concatenate(out), np.arange(0, 105, dtype=np.float32))
    assert ring.overruns == 0 and ring.available == 0


def test_full_buffer_drops_the_newest_samples_and_counts_them():
    ring = RingBuffer(8)
    assert ring.write(np.arange(5, dtype=np.float32)) == 5
    assert ring.write(np.arange(5, 10, dtype=np.float32)) == 3  # only 3 fit
    assert (ring.overruns, ring.dropped, ring.free) == (1, 2, 0)
    assert ring.write(np.ones(4, np.float32)) == 0
    assert (ring.overruns, ring.dropped) == (2, 6)
    assert np.array_equal(ring.read(100), np.arange(8, dtype=np.float32))  # what arrived first, without a gap


def test_read_returns_what_is_there_and_accepts_other_dtypes_and_strides():
    ring = RingBuffer(16)
    stereo = np.arange(12, dtype=np.float64).reshape(6, 2)
    ring.write(stereo[:, 0])  # a strided float64 view, as from a multi-channel callback
    assert np.array_equal(ring.read(4), [0, 2, 4, 6])
    assert ring.read(10).tolist() == [8, 10]
    assert ring.read(5).shape == (0,)


def test_concurrent_producer_and_consumer_lose_and_reorder_nothing():
    ring = RingBuffer(1000)
    total = 400_000  # below 2**24: every count is exact in float32
    received = []

    def produce():
        rng = np.random.default_rng(1)
        n = 0
        while n < total:
            size = int(rng.integers(1, 300))
            block = np.arange(n, min(total, n + size), dtype=np.float32)
            while ring.free < len(block):  # a well-behaved producer for this test: never overrun
                time.sleep(0)
            ring.write(block)
            n += len(block)

    def consume():
        rng = np.random.default_rng(2)
        got = 0
        while got < total:
            if ring.wait(1, timeout=5.0):
                block = ring.read(int(rng.integers(1, 500)))
                received.append(block)
                got += len(block)

    threads = [threading.Thread(target=produce), threading.Thread(target=consume)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    assert np.array_equal(np.concatenate(received), np.arange(total, dtype=np.float32))
    assert ring.overruns == 0


def test_overruns_with_a_slow_consumer_keep_the_stream_gap_free_until_the_drop():
    ring = RingBuffer(100)
    for i in range(30):
        ring.write(np.full(10, i, np.float32))
    assert ring.overruns == 20 and ring.dropped == 200
    assert np.array_equal(ring.read(100), np.repeat(np.arange(10, dtype=np.float32), 10))


def test_wait_times_out_wakes_on_data_and_on_wake():
    ring = RingBuffer(100)
    t0 = time.monotonic()
    assert not ring.wait(10, timeout=0.05)
    assert time.monotonic() - t0 >= 0.04

    threading.Timer(0.05, lambda: ring.write(np.zeros(10, np.float32))).start()
    assert ring.wait(10, timeout=5.0)

    ring.read(10)
    threading.Timer(0.05, ring.wake).start()
    t0 = time.monotonic()
    assert not ring.wait(10, timeout=5.0)
    assert time.monotonic() - t0 < 2.0


def test_arrival_time_of_each_sample():
    now = [0.0]
    ring = RingBuffer(100, history=3, clock=lambda: now[0])
    for t in (1.0, 2.0, 3.0, 4.0):
        now[0] = t
        ring.write(np.zeros(10, np.float32))
    assert ring.arrival_time(35) == 4.0
    assert ring.arrival_time(10) == 2.0 and ring.arrival_time(19) == 2.0
    assert ring.arrival_time(9) is None  # forgotten: only the last 3 writes are kept
    assert ring.arrival_time(40) is None  # not arrived yet


def test_write_does_not_allocate_sample_memory():
    ring = RingBuffer(48_000)
    block = np.ones(4800, np.float32)  # a copy of it would be 19 kB
    ring.write(block)
    ring.read(4800)
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        for _ in range(200):
            ring.write(block)
            ring.consumed = ring.written  # drain without the consumer's copy
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak - before < 4096


@pytest.mark.parametrize("capacity, history", [(0, 1), (1, 0)])
def test_bad_sizes(capacity, history):
    with pytest.raises(ValueError):
        RingBuffer(capacity, history)
