"""The bytes of mail the daemon holds at once, over all its mailbox threads.

Each watcher fetches a batch only once its bytes (the RFC822.SIZE the server gave) fit in the
budget, `daemon.fetch_batch_bytes`, beside what the other mailboxes hold, and gives them
back once the batch is stored. A batch bigger than the whole budget (one big mail) waits until
nothing else is held and then goes alone. Takers are served in the order they came, so a big
mail is not kept waiting by a stream of small batches. With ten mailbox threads, memory is
then bounded by the budget (or the one biggest mail), not by the number of mailboxes.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager

WAKE_S = 1.0  # how often a waiting thread looks at its stop flag


class ByteBudget:
    """Bytes held at most (or one taker alone); thread-safe, first come first served."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0
        self._cond = threading.Condition()
        self._waiting: deque[object] = deque()

    def take(self, size: int, stopping: Callable[[], bool]) -> bool:
        """Block until `size` bytes fit and every earlier taker was served; False (nothing
        taken) if `stopping()` turns true meanwhile."""
        me = object()
        with self._cond:
            self._waiting.append(me)
            try:
                while self._waiting[0] is not me or (self.held and self.held + size > self.limit):
                    if stopping():
                        return False
                    self._cond.wait(timeout=WAKE_S)
                self.held += size
                return True
            finally:
                self._waiting.remove(me)
                self._cond.notify_all()

    def give(self, size: int) -> None:
        with self._cond:
            self.held -= size
            self._cond.notify_all()

    @contextmanager
    def holding(self, size: int, stopping: Callable[[], bool]) -> Iterator[bool]:
        """`take` for the block (yields whether it was taken), given back when it ends."""
        taken = self.take(size, stopping)
        try:
            yield taken
        finally:
            if taken:
                self.give(size)
