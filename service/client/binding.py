"""The public methods of the clients, written once: a method is a builder of its :class:`Call`
(in :mod:`service.client.models`, ``compute``, ...), and these descriptors make it a method of
:class:`~service.client.Client` that runs the call and returns its result, or of
:class:`~service.client.AsyncClient` that returns a coroutine of it. The method keeps the
builder's signature and docstring, for readers and for type checkers alike."""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from typing import Any, Generic, ParamSpec, Protocol, TypeVar, overload

from service.client.call import Call

P = ParamSpec("P")
T = TypeVar("T")


class Runner(Protocol):
    def _run(self, call: Call[T], /) -> T: ...


class AsyncRunner(Protocol):
    async def _run(self, call: Call[T], /) -> T: ...


class _Bound(Generic[P, T]):
    def __init__(self, build: Callable[P, Call[T]]) -> None:
        self.build = build
        self.__doc__ = build.__doc__
        self.__wrapped__ = build


class endpoint(_Bound[P, T]):
    """``get_model = endpoint(models.get_model)``: a method of the sync client."""

    @overload
    def __get__(self, client: None, owner: type[object]) -> endpoint[P, T]: ...
    @overload
    def __get__(self, client: Runner, owner: type[object]) -> Callable[P, T]: ...
    def __get__(
        self, client: Runner | None, owner: type[object]
    ) -> endpoint[P, T] | Callable[P, T]:
        if client is None:
            return self
        build = self.build

        @functools.wraps(build)
        def method(*args: P.args, **kwargs: P.kwargs) -> T:
            return client._run(build(*args, **kwargs))

        return method


class async_endpoint(_Bound[P, T]):
    """``get_model = async_endpoint(models.get_model)``: a method of the async client."""

    @overload
    def __get__(self, client: None, owner: type[object]) -> async_endpoint[P, T]: ...
    @overload
    def __get__(
        self, client: AsyncRunner, owner: type[object]
    ) -> Callable[P, Coroutine[Any, Any, T]]: ...
    def __get__(
        self, client: AsyncRunner | None, owner: type[object]
    ) -> async_endpoint[P, T] | Callable[P, Coroutine[Any, Any, T]]:
        if client is None:
            return self
        build = self.build

        @functools.wraps(build)
        async def method(*args: P.args, **kwargs: P.kwargs) -> T:
            return await client._run(build(*args, **kwargs))

        return method
