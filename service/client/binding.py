"""The public methods of the clients, written once: a method is a builder of its :class:`Call`
(in :mod:`service.client.models`, ``compute``, ...), and these descriptors make it a method of
:class:`~service.client.Client` that runs the call and returns its result, or of
:class:`~service.client.AsyncClient` that returns a coroutine of it. Both clients inherit the
one table of methods, :class:`~service.client.methods.Methods`. The method keeps the builder's
signature and docstring, for readers and for type checkers alike: ``__get__`` is typed by the
client it is read from (a :class:`Runner` or an :class:`AsyncRunner`)."""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any, Generic, ParamSpec, Protocol, TypeVar, cast, overload

from service.client.call import Call, Pages

P = ParamSpec("P")
T = TypeVar("T")
Item = TypeVar("Item")


class Runner(Protocol):
    """The sync client, as its methods see it."""

    def _run(self, call: Call[T], /) -> T: ...
    def _pages(self, pages: Pages[Item, Any], /) -> Iterator[Item]: ...


class AsyncRunner(Protocol):
    """The async client, as its methods see it."""

    async def _run(self, call: Call[T], /) -> T: ...
    def _pages(self, pages: Pages[Item, Any], /) -> AsyncIterator[Item]: ...


B = TypeVar("B")


class _Bound(Generic[P, B]):
    """A method made of ``build``, with its docstring and (through ``__wrapped__``) its
    signature."""

    def __init__(self, build: Callable[P, B]) -> None:
        self.build = build
        self.__doc__ = build.__doc__
        self.__wrapped__ = build


class endpoint(_Bound[P, Call[T]]):
    """``get_model = endpoint(models.get_model)``: a method that runs the builder's call, and
    returns its result (sync client) or a coroutine of it (async client)."""

    @overload
    def __get__(self, client: None, owner: type[object]) -> endpoint[P, T]: ...
    @overload
    def __get__(self, client: Runner, owner: type[object]) -> Callable[P, T]: ...
    @overload
    def __get__(
        self, client: AsyncRunner, owner: type[object]
    ) -> Callable[P, Coroutine[Any, Any, T]]: ...
    def __get__(
        self, client: Runner | AsyncRunner | None, owner: type[object]
    ) -> endpoint[P, T] | Callable[P, T] | Callable[P, Coroutine[Any, Any, T]]:
        if client is None:
            return self
        build = self.build
        if inspect.iscoroutinefunction(client._run):  # the async client's

            @functools.wraps(build)
            async def coroutine(*args: P.args, **kwargs: P.kwargs) -> T:
                return await cast("AsyncRunner", client)._run(build(*args, **kwargs))

            return coroutine

        @functools.wraps(build)
        def method(*args: P.args, **kwargs: P.kwargs) -> T:
            return cast("Runner", client)._run(build(*args, **kwargs))

        return method


class paged(_Bound[P, Pages[Item, Any]]):
    """``iter_models = paged(models.every_model)``: a method that fetches every page of a
    listing (``every_model`` says which, from the method's arguments) and iterates over their
    items (an async iterator on the async client)."""

    @overload
    def __get__(self, client: None, owner: type[object]) -> paged[P, Item]: ...
    @overload
    def __get__(self, client: Runner, owner: type[object]) -> Callable[P, Iterator[Item]]: ...
    @overload
    def __get__(
        self, client: AsyncRunner, owner: type[object]
    ) -> Callable[P, AsyncIterator[Item]]: ...
    def __get__(
        self, client: Runner | AsyncRunner | None, owner: type[object]
    ) -> paged[P, Item] | Callable[P, Iterator[Item]] | Callable[P, AsyncIterator[Item]]:
        if client is None:
            return self
        build, pages = self.build, client._pages

        @functools.wraps(build)
        def method(*args: P.args, **kwargs: P.kwargs) -> Any:  # Iterator or AsyncIterator
            return pages(build(*args, **kwargs))

        return method
