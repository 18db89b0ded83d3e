"""Worker processes for the large computations.

A computation large enough to be felt by the other requests (see
:meth:`service.operations.compute.Operations.place`) runs in a process of its own: it holds
no interpreter lock the event loop needs, runs below the server's CPU priority, and has an
address-space limit of its own, so that an allocation past what admission estimated ends in a
``MemoryError`` in that worker (answered 413) instead of the server growing, and a worker that
dies (killed, out of memory) is answered 503 and replaced while the server keeps serving.

Parameters of a size worth sharing are written once per model version to a file in shared
memory (``/dev/shm``) and mapped read-only by the workers (:class:`SharedParams`): a request
sends the file's name, not the numbers. The file is removed when the parameters it holds are no
longer referenced in the server (the model cache let them go and no request uses them).

Large bytes go the same way, both ways, instead of through the executor's pipe (where
pickling and unpickling tens of megabytes would hold the server's interpreter lock, and
the event loop with it, for milliseconds at a time): a body a worker parses is written to
a file the worker reads (:class:`SharedBytes`), and a large result (an export's bytes, a
parsed batch's arrays) comes back as its pickle with the arrays and bytes in a file
(:class:`Shipped`), which the server maps: the arrays it gets are views of that mapping.

The pool starts on the first large computation, from a fork server that has imported the core
once, so a worker starts in milliseconds and the server's own threads are never forked.
"""

from __future__ import annotations

import asyncio
import mmap
import multiprocessing
import os
import pickle
import resource
import select
import shutil
import sys
import tempfile
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import suppress
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from service.core import LayerParams, Params
from service.settings import Limits, current_limits, limits_in_force

T = TypeVar("T")

#: Parameters smaller than this travel with each request; a file would cost more.
SHARE_BYTES = 1 << 20
#: How many shared parameter sets a worker keeps mapped.
MAPPED = 4


class WorkerLost(Exception):
    """The worker process running a computation ended before answering (killed by the
    operator or the kernel); the pool is replaced and the request may be sent again."""

    def __init__(self) -> None:
        super().__init__(
            "the worker process computing this request ended before it answered (killed, or "
            "out of memory); it has been replaced: send the request again"
        )


class WorkerOutOfMemory(Exception):
    """A computation in a worker needed more memory than a worker may use."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"the computation needed more memory than a worker process may use "
            f"({limit / (1 << 20):,.0f} MiB, from BACKPROP_MAX_REQUEST_MEMORY_BYTES and "
            "BACKPROP_MAX_ANSWER_BYTES); nothing was stored: send fewer rows per request"
        )
        self.limit = limit


@dataclass(frozen=True, slots=True)
class SharedParams:
    """Parameters in a shared-memory file: its path, the dtype, and per layer the shapes of
    ``W`` and ``b``, stored one after the other in that order."""

    path: str
    dtype: str
    shapes: tuple[tuple[tuple[int, int], tuple[int]], ...]


@dataclass(frozen=True)
class SharedBytes:
    """Bytes in a shared-memory file: a large argument of a call (a body to parse, given as
    bytes or as a list of chunks: ``listed``, received as a list of one)."""

    path: str
    listed: bool


@dataclass(frozen=True)
class Shipped:
    """A large result: its pickle, whose out-of-band buffers (contiguous arrays, large bytes)
    lie one after the other in a shared-memory file, of ``sizes`` bytes each."""

    pickled: bytes
    path: str
    sizes: tuple[int, ...]


class WorkerPool:
    """``processes`` worker processes at ``nice`` below the server (or in SCHED_IDLE with
    ``idle``), each limited to ``memory`` bytes of address space above its own start."""

    def __init__(self, processes: int, nice: int, idle: bool, memory: int) -> None:
        self.processes = processes
        self.memory = memory
        self._nice, self._idle = nice, idle
        # BLAS threads per worker: its share of the CPUs this process may run on (more, on a
        # process pinned to fewer CPUs, would spin against each other).
        self._threads = max(1, len(_cpus()) // processes)
        self._executor: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self._dir: Path | None = None
        # id(first weight array) -> (a weak reference to it, its file); see share().
        self._shared: dict[int, tuple[weakref.ref[np.ndarray], SharedParams]] = {}

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in a worker process. Parameters among ``args`` (or among the arguments
        of ``fn``, a ``functools.partial``) are shared (:meth:`share`), not copied."""
        args = tuple(self._shared_args(args))
        if isinstance(fn, partial):
            fn = partial(fn.func, *self._shared_args(fn.args), **fn.keywords)
        executor = self._pool()
        written: list[str] = []
        try:
            args = tuple([await self._shared_bytes(a, written) for a in args])
            try:
                future = executor.submit(_call, fn, args, self._directory(), current_limits())
            except BrokenProcessPool:
                self._replace(executor)
                future = self._pool().submit(_call, fn, args, self._directory(), current_limits())
            try:
                result = await asyncio.wrap_future(future)
            except BrokenProcessPool:
                self._replace(executor)
                raise WorkerLost() from None
            except MemoryError:
                raise WorkerOutOfMemory(self.memory) from None
        finally:
            for path in written:
                with suppress(OSError):
                    os.unlink(path)
        return _unshipped(result) if isinstance(result, Shipped) else result  # type: ignore[no-any-return]

    async def _shared_bytes(self, value: Any, written: list[str]) -> Any:
        """``value``, or when it is large bytes (or a list of chunks of bytes) the file it is
        written to: written in a thread, where the copy holds no lock the event loop needs."""
        listed = (
            isinstance(value, list) and bool(value) and all(isinstance(v, bytes) for v in value)
        )
        if not (isinstance(value, bytes) or listed):
            return value
        chunks: list[bytes] = value if listed else [value]
        if sum(len(c) for c in chunks) < SHARE_BYTES:
            return value
        fd, path = tempfile.mkstemp(dir=self._directory(), suffix=".in")
        written.append(path)
        await asyncio.to_thread(_write_chunks, fd, chunks)
        return SharedBytes(path, listed)

    def _shared_args(self, args: tuple[Any, ...]) -> Iterator[Any]:
        for a in args:
            yield self.share(a) if _is_params(a) else a

    def share(self, params: Params) -> Params | SharedParams:
        """``params`` as a worker should receive them: small ones as they are, large ones as
        the shared-memory file that holds them (written on first use)."""
        if not params or sum(p.W.nbytes + p.b.nbytes for p in params) < SHARE_BYTES:
            return params
        anchor = params[0].W
        known = self._shared.get(id(anchor))
        if known is not None and known[0]() is anchor:
            return known[1]
        shared = self._write(params)
        self._shared[id(anchor)] = (weakref.ref(anchor), shared)
        weakref.finalize(anchor, self._forget, id(anchor), shared.path)
        return shared

    def close(self) -> None:
        """Stop the workers at once, a computation under way too (its answer has nobody left
        to go to), so that the server's exit never waits for one."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            _stop(executor)
        self._shared.clear()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)

    # -- internals ----------------------------------------------------------------------------

    def _pool(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._executor is None:
                context = multiprocessing.get_context("forkserver")
                context.set_forkserver_preload([__name__])
                self._executor = ProcessPoolExecutor(
                    self.processes,
                    mp_context=context,
                    initializer=_start,
                    initargs=(os.getpid(), self._nice, self._idle, self.memory, self._threads),
                )
            return self._executor

    def _replace(self, broken: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._executor is broken:
                self._executor = None
        _stop(broken)

    def _directory(self) -> Path:
        """The pool's folder in shared memory (``/dev/shm``, else the temporary folder)."""
        with self._lock:
            if self._dir is None:
                shm = Path("/dev/shm")
                base = shm if shm.is_dir() and os.access(shm, os.W_OK) else None
                self._dir = Path(tempfile.mkdtemp(prefix="backprop-params-", dir=base))
            return self._dir

    def _write(self, params: Params) -> SharedParams:
        fd, path = tempfile.mkstemp(dir=self._directory(), suffix=".bin")
        with os.fdopen(fd, "wb") as f:
            for layer in params:
                np.ascontiguousarray(layer.W).tofile(f)
                np.ascontiguousarray(layer.b).tofile(f)
        shapes = tuple(
            ((int(p.W.shape[0]), int(p.W.shape[1])), (int(p.b.shape[0]),)) for p in params
        )
        return SharedParams(path, params[0].W.dtype.str, shapes)

    def _forget(self, key: int, path: str) -> None:
        known = self._shared.get(key)
        if known is not None and known[1].path == path:
            del self._shared[key]
        with suppress(OSError):
            os.unlink(path)


def _cpus() -> set[int]:
    try:
        return os.sched_getaffinity(0)
    except (AttributeError, OSError):
        return set(range(os.cpu_count() or 1))


def _stop(executor: ProcessPoolExecutor) -> None:
    # Python 3.14's executor.terminate_workers(), by hand: what the executor knows of its
    # processes before it lets them go, then a SIGTERM to each.
    processes = list((getattr(executor, "_processes", None) or {}).values())
    executor.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        with suppress(OSError, ValueError, AttributeError):
            process.terminate()


_mapped: OrderedDict[str, Params] = OrderedDict()


def _start(server: int, nice: int, idle: bool, memory: int, threads: int) -> None:
    """A new worker: below the server's priority (threads it starts later inherit it), BLAS
    threads limited to its share of the CPUs, and its address space limited to ``memory``
    above what it holds once BLAS has set up its buffers (OpenBLAS gives up the process when
    it cannot allocate those)."""
    if sys.platform == "linux":
        _end_with(server)
        done = False
        if idle:
            with suppress(OSError, AttributeError):
                os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
                done = True
        if not done and nice > 0:
            with suppress(OSError):
                os.nice(nice)
    from threadpoolctl import threadpool_limits

    threadpool_limits(threads)
    warm = np.ones((256, 256))
    warm @ warm  # BLAS allocates its thread buffers on first use
    if sys.platform == "linux":
        with suppress(OSError, ValueError):
            resource.setrlimit(resource.RLIMIT_AS, (_address_space() + memory,) * 2)


def _end_with(server: int) -> None:
    """End this worker when the server process ends, however it ends (a SIGKILL included):
    a thread waits on the server's pidfd. The fork server the worker came from is no help
    here: it lives as long as its children do."""
    try:
        fd = os.pidfd_open(server)
    except (OSError, AttributeError):  # no pidfd (before Linux 5.3): nothing to wait on
        if not _alive(server):
            os._exit(1)
        return

    def wait() -> None:
        select.select([fd], [], [])
        os._exit(1)

    threading.Thread(target=wait, name="backprop-worker-watch", daemon=True).start()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _address_space() -> int:
    """This process's virtual memory size in bytes (its libraries, BLAS buffers, heap)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    return 0


def _write_chunks(fd: int, chunks: Sequence[bytes | memoryview]) -> None:
    """``chunks`` one after the other into the file ``fd``, which is then closed."""
    with os.fdopen(fd, "wb") as f:
        for chunk in chunks:
            f.write(chunk)


def _unshipped(shipped: Shipped) -> Any:
    """In the server: a shipped result, its arrays and bytes (as memoryviews) views of the
    file's private mapping (copied on write, so the arrays are writable), the file removed."""
    buffers: list[memoryview] = []
    if shipped.sizes:
        with open(shipped.path, "rb") as f:  # the mapping outlives the file
            whole = memoryview(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY))
        at = 0
        for size in shipped.sizes:
            buffers.append(whole[at : at + size])
            at += size
    with suppress(OSError):
        os.unlink(shipped.path)
    return pickle.loads(shipped.pickled, buffers=buffers)


# -- in the worker process ---------------------------------------------------------------------


def _call(
    fn: Callable[..., T], args: tuple[Any, ...], directory: Path, limits: Limits
) -> T | Shipped:
    """``fn(*args)`` under the size limits of the request it serves, its result shipped."""
    if isinstance(fn, partial):
        fn = partial(fn.func, *_mapped_args(fn.args), **fn.keywords)
    with limits_in_force(limits):
        return _shipped(fn(*_mapped_args(args)), directory)


def _mapped_args(args: tuple[Any, ...]) -> Iterator[Any]:
    for a in args:
        if isinstance(a, SharedParams):
            yield _params(a)
        elif isinstance(a, SharedBytes):
            data = Path(a.path).read_bytes()
            yield [data] if a.listed else data
        else:
            yield a


def _shipped(result: T, directory: Path) -> T | Shipped:
    """``result`` as it should travel back: as it is when small, else as a :class:`Shipped`
    whose buffers (its contiguous arrays, and its bytes when it is bytes or a list of them)
    are written to a file in ``directory``."""
    value: Any = result
    if isinstance(result, bytes):
        value = pickle.PickleBuffer(result)
    elif isinstance(result, list) and result and all(isinstance(r, bytes) for r in result):
        value = [pickle.PickleBuffer(r) for r in result]
    buffers: list[pickle.PickleBuffer] = []
    pickled = pickle.dumps(value, protocol=5, buffer_callback=buffers.append)
    views = [b.raw() for b in buffers]
    if sum(v.nbytes for v in views) < SHARE_BYTES:
        return result
    fd, path = tempfile.mkstemp(dir=directory, suffix=".out")
    _write_chunks(fd, views)
    return Shipped(pickled, path, tuple(v.nbytes for v in views))


def _is_params(value: object) -> bool:
    return isinstance(value, tuple) and bool(value) and isinstance(value[0], LayerParams)


def _params(shared: SharedParams) -> Params:
    params = _mapped.get(shared.path)
    if params is not None:
        _mapped.move_to_end(shared.path)
        return params
    with open(shared.path, "rb") as f:  # the mapping outlives the file, even once removed
        data = np.frombuffer(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ), shared.dtype)
    layers: list[LayerParams] = []
    at = 0
    for (n_in, n_out), (n_b,) in shared.shapes:
        W = data[at : at + n_in * n_out].reshape(n_in, n_out)
        at += n_in * n_out
        b = data[at : at + n_b]
        at += n_b
        layers.append(LayerParams(W, b))
    params = tuple(layers)
    _mapped[shared.path] = params
    while len(_mapped) > MAPPED:
        _mapped.popitem(last=False)
    return params
