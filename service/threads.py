"""Worker threads below the event loop's CPU priority.

Large computations of requests and training jobs run in threads whose nice value is raised, so
that on a busy machine the thread that serves small requests (the event loop) wins the CPU.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from functools import partial
from typing import Any, TypeVar

T = TypeVar("T")


def lower_priority(nice: int) -> None:
    """Lower the calling thread's CPU priority by `nice` (at most to 19), so that request
    handling wins the CPU. Linux only, where a nice value is per thread."""
    if nice <= 0 or sys.platform != "linux":
        return
    thread = threading.get_native_id()
    with suppress(OSError):
        current = os.getpriority(os.PRIO_PROCESS, thread)
        os.setpriority(os.PRIO_PROCESS, thread, min(19, current + nice))


class LowPriorityPool:
    """A pool of ``threads`` worker threads at ``nice`` below the caller's priority."""

    def __init__(self, threads: int, nice: int, name: str) -> None:
        self._executor = ThreadPoolExecutor(
            max_workers=threads,
            thread_name_prefix=name,
            initializer=lower_priority,
            initargs=(nice,),
        )

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in one of the pool's threads."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, partial(fn, *args))

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
