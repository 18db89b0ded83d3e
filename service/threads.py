"""Worker threads below the event loop's CPU priority.

Large computations of requests and training jobs run in threads whose nice value is raised, or
in Linux's SCHED_IDLE class, so that on a busy machine the thread that serves small requests
(the event loop) wins the CPU. A nice value alone is not enough for latency: the kernel lets a
nice 5 thread finish a slice of several milliseconds before a waking event loop runs, and a
small forward waits that long; a SCHED_IDLE thread gives way at once.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from functools import partial
from typing import Any, TypeVar

T = TypeVar("T")


def lower_priority(nice: int, idle: bool = False) -> None:
    """Lower the calling thread's CPU priority by `nice` (at most to 19), or with `idle` put it
    in the SCHED_IDLE class (it runs when nothing else wants the CPU), so that request handling
    wins the CPU. Linux only, where both are per thread."""
    if sys.platform != "linux":
        return
    if idle:
        with suppress(OSError, AttributeError):
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))  # 0: this thread
            return
    if nice <= 0:
        return
    thread = threading.get_native_id()
    with suppress(OSError):
        current = os.getpriority(os.PRIO_PROCESS, thread)
        os.setpriority(os.PRIO_PROCESS, thread, min(19, current + nice))


class LowPriorityPool:
    """A pool of ``threads`` worker threads at ``nice`` below the caller's priority, or in the
    SCHED_IDLE class with ``idle``."""

    def __init__(self, threads: int, nice: int, name: str, idle: bool = False) -> None:
        self._executor = ThreadPoolExecutor(
            max_workers=threads,
            thread_name_prefix=name,
            initializer=lower_priority,
            initargs=(nice, idle),
        )

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in one of the pool's threads, in a copy of the caller's context (its
        context variables: the limits of the request it serves, say)."""
        call = partial(contextvars.copy_context().run, fn, *args)
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
