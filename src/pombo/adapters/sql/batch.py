"""Group commit: concurrent callers share one transaction (or one database call).

Requests that reach the store while a flush is running (or in the same loop iteration) are
collected and flushed together, each still getting its own answer. Exactness is kept by the
flush itself: it handles the items one after another, in arrival order, in one transaction.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Batcher(Generic[T, R]):
    """Collects items and flushes them in batches of at most `max_batch`, with at most
    `concurrency` flushes running at once."""

    def __init__(
        self,
        flush: Callable[[Sequence[T]], Awaitable[Sequence[R]]],
        *,
        max_batch: int = 64,
        concurrency: int = 1,
    ) -> None:
        self._flush = flush
        self._max = max_batch
        self._slots = concurrency
        self._queue: list[tuple[T, asyncio.Future[R]]] = []
        self._running = 0
        self._drainers: set[asyncio.Future[None]] = set()
        self._open: asyncio.Event | None = None  # set = flushing allowed (created lazily)
        self._flushing = 0

    def hold(self) -> None:
        """Stop flushing (items keep queueing) until release()."""
        if self._open is None:
            self._open = asyncio.Event()
        self._open.clear()

    def release(self) -> None:
        """Flush again; what queued meanwhile goes as one batch."""
        if self._open is not None:
            self._open.set()

    @property
    def idle(self) -> bool:
        """No flush is running right now."""
        return self._flushing == 0

    async def submit(self, item: T) -> R:
        """Queue one item and wait for its own result."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if self._running < self._slots:
            self._running += 1
            asyncio.get_running_loop().call_soon(self._start)
        return await future

    def _start(self) -> None:
        # the loop keeps only weak references to tasks: hold the drainer until it is done, or
        # a collection in mid-flush could drop it with its waiters never answered
        task = asyncio.ensure_future(self._drain())
        self._drainers.add(task)
        task.add_done_callback(self._drainers.discard)

    async def _drain(self) -> None:
        try:
            while self._queue:
                if self._open is not None and not self._open.is_set():
                    await self._open.wait()
                batch = self._queue[: self._max]
                del self._queue[: self._max]
                self._flushing += 1
                try:
                    results = await self._flush([item for item, _ in batch])
                except BaseException as exc:  # every waiter learns of the failure
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    if not isinstance(exc, Exception):
                        raise
                    continue
                finally:
                    self._flushing -= 1
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
        finally:
            self._running -= 1
