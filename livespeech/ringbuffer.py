"""A preallocated single-producer, single-consumer ring buffer of float32 samples.

The producer is the audio callback (PortAudio's thread) or a file feeder thread; the
consumer is the recognizer worker.  :meth:`RingBuffer.write` never allocates an
array, never blocks and never waits for the consumer: when the buffer is full the
samples that do not fit are dropped (the newest ones, as PortAudio does on an input
overflow) and counted, so the consumer always sees a gap-free prefix of what arrived.

Each side owns one counter: the producer advances ``written``, the consumer advances
``consumed``; both only grow (Python ints), and reading the other side's counter is
atomic under the GIL, so no lock is needed.  A :class:`threading.Event` wakes the
consumer; setting it takes its internal lock only for an instant.

The time at which samples arrived is kept for the last ``history`` writes, so the
consumer can tell how long a sample has waited (latency measurement).
"""

from __future__ import annotations

import threading
import time

import numpy as np

DEFAULT_HISTORY = 512  # writes whose arrival times are remembered (5 s of 10 ms blocks)


class RingBuffer:
    """Fixed-capacity FIFO of float32 samples.

    Args:
        capacity: samples it holds (e.g. 5 s at the device rate); must be positive.
        history: number of recent writes whose arrival times are kept (default 512).
        clock: time source for arrival times, seconds (default ``time.perf_counter``).
    Raises:
        ValueError: capacity or history not positive.
    """

    def __init__(self, capacity: int, history: int = DEFAULT_HISTORY, clock=time.perf_counter):
        if capacity <= 0 or history <= 0:
            raise ValueError(f"capacity and history must be positive, got {capacity}, {history}")
        self.capacity = int(capacity)
        self._data = np.zeros(self.capacity, np.float32)
        self._clock = clock
        self._arrival_start = np.zeros(history, np.int64)  # first sample index of write i, slot i % history
        self._arrival_end = np.zeros(history, np.int64)  # one past its last sample
        self._arrival_time = np.zeros(history, np.float64)  # clock() at write i
        self._writes = 0
        self._event = threading.Event()
        self._woken = False
        self.written = 0  # samples accepted in total (producer's counter)
        self.consumed = 0  # samples read in total (consumer's counter)
        self.overruns = 0  # writes that did not fit whole
        self.dropped = 0  # samples dropped by those writes

    # producer side ---------------------------------------------------------------

    def write(self, samples: np.ndarray) -> int:
        """Append samples, shape (n,), any float dtype and stride; never blocks or allocates.

        Returns:
            the number of samples stored; the rest (when full) are dropped and counted
            in :attr:`overruns` and :attr:`dropped`.
        """
        n = len(samples)
        free = self.capacity - (self.written - self.consumed)
        stored = min(n, free)
        if stored:
            start = self.written % self.capacity
            first = min(stored, self.capacity - start)
            np.copyto(self._data[start : start + first], samples[:first], casting="same_kind")
            if stored > first:
                np.copyto(self._data[: stored - first], samples[first:stored], casting="same_kind")
            slot = self._writes % len(self._arrival_end)
            self._arrival_time[slot] = self._clock()
            self._arrival_start[slot] = self.written
            self._arrival_end[slot] = self.written + stored
            self._writes += 1
            self.written += stored  # publish only after the data is in place
        if stored < n:
            self.overruns += 1
            self.dropped += n - stored
        self._event.set()
        return stored

    @property
    def free(self) -> int:
        """Samples that can be written now without dropping."""
        return self.capacity - (self.written - self.consumed)

    # consumer side ---------------------------------------------------------------

    @property
    def available(self) -> int:
        """Samples ready to read."""
        return self.written - self.consumed

    def read(self, n: int) -> np.ndarray:
        """Take up to ``n`` of the oldest samples.

        Returns:
            a new float32 array, shape (min(n, available),).
        """
        count = min(int(n), self.available)
        start = self.consumed % self.capacity
        first = min(count, self.capacity - start)
        out = np.empty(count, np.float32)
        out[:first] = self._data[start : start + first]
        out[first:] = self._data[: count - first]
        self.consumed += count  # publish only after the copy: the producer may now reuse the space
        return out

    def wait(self, n: int, timeout: float) -> bool:
        """Block until at least ``n`` samples are ready, :meth:`wake` is called, or
        ``timeout`` seconds pass.

        Returns:
            True when ``n`` samples are ready.
        """
        deadline = time.monotonic() + timeout
        while self.available < n:
            self._event.clear()
            if self.available >= n:  # a write between the check and the clear
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._event.wait(remaining):
                return self.available >= n
            if self._woken:
                self._woken = False
                return self.available >= n
        return True

    def wake(self) -> None:
        """Make a pending :meth:`wait` return now (to stop the consumer)."""
        self._woken = True
        self._event.set()

    def arrival_time(self, index: int) -> float | None:
        """When the sample with stream index ``index`` (0 = the first sample ever
        written) arrived, in ``clock`` seconds.

        Returns:
            the arrival time, or None when the sample has not arrived yet or its write
            is older than the last ``history`` writes.  Read while the producer runs,
            the answer may be one write late (a latency estimate, not bookkeeping).
        """
        known = min(self._writes, len(self._arrival_end))
        if not 0 <= index < self.written or known == 0:
            return None
        order = (np.arange(known) + self._writes - known) % len(self._arrival_end)  # oldest first
        ends = self._arrival_end[order]
        i = int(np.searchsorted(ends, index, side="right"))  # first write ending after the sample
        if i == known or self._arrival_start[order[i]] > index:
            return None
        return float(self._arrival_time[order[i]])
