"""The interceptor in front of the three Vantage services: who the caller is is decided
from the call's metadata before a byte of its body is read.

Memory before authentication
----------------------------
gRPC reads a unary request whole, up to the server's receive limit (16 MiB, which the
agents' result batches need), before any handler or interceptor sees it. Thirty-two
unauthenticated 14 MiB ``SubmitJob`` calls took a coordinator to 5 GB that way. So the
guard serves every unary method as a *request-streaming* one: the wire is the same (one
message, then the half-close), but gRPC hands the call over before reading the message.
The guard then

1. authenticates from the metadata (``Access.authenticate``); a caller that is refused
   is answered at once, and its body is never read;
2. takes :data:`MAX_MESSAGE_BYTES` from one budget of request bytes shared by the whole
   process (:class:`ByteBudget`, :data:`BODY_BUDGET_BYTES`, 8 such shares): that is the
   most gRPC can read for the message; one credential holds at most
   :data:`BODIES_PER_CALLER` shares at once. A call that waits longer than
   :data:`BODY_WAIT_S` for its turn or its share is refused with ``RESOURCE_EXHAUSTED``;
3. reads the one message within :data:`BODY_READ_S`, refuses it past its method's own
   limit (:data:`METHOD_LIMITS`: 1 MiB for ``SubmitJob``, 64 KiB for every other unary
   call) and only then parses it.

The agents' ``Connect`` stream is read by its handler message by message, after the same
authentication; its messages may use the server's whole receive limit.

Health and reflection pass unguarded: they say nothing about agents or jobs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn

import grpc

from coordinator.access import (
    GUARDED_PREFIX,
    METHOD_ROLES,
    Access,
    Denied,
    bearer,
    caller,
    set_principal,
)

#: The server's receive limit: the agents' result batches (200 results) need it.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
#: Each unary method's own limit on its request; the rest get :data:`DEFAULT_UNARY_LIMIT`.
#: A job of 500 targets of 2,000 characters each, with its options, is under 1.1 MB.
METHOD_LIMITS: dict[str, int] = {"/vantage.v1.JobService/SubmitJob": 2 * 1024 * 1024}
DEFAULT_UNARY_LIMIT = 64 * 1024
#: Request bytes that authenticated unary calls may hold at once, over the whole process.
BODY_BUDGET_BYTES = 8 * MAX_MESSAGE_BYTES
#: How long a call waits for its share of the budget, and for its body to arrive (a
#: request of at most 2 MiB; a caller that trickles it holds a share meanwhile).
BODY_WAIT_S = 10.0
BODY_READ_S = 5.0
#: Bodies one credential may be reading at once; more wait their turn (at most
#: BODY_WAIT_S). Without it four calls that send headers and no body, from one read token,
#: held the whole budget for everyone.
BODIES_PER_CALLER = 2


class ByteBudget:
    """A counting budget of bytes: ``take(n)`` waits until ``n`` are free (at most
    ``wait_s``), ``give(n)`` returns them. FIFO, so a large share is not starved by small
    ones. ``peak`` is the most ever held (for the tests and the log)."""

    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError(f"capacity: must be > 0, got {capacity}")
        self.capacity = capacity
        self.held = 0
        self.peak = 0
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    async def take(self, n: int, wait_s: float) -> bool:
        n = min(n, self.capacity)
        if not self._waiters and self.held + n <= self.capacity:
            self._hold(n)
            return True
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (n, fut)
        self._waiters.append(entry)
        try:
            await asyncio.wait_for(asyncio.shield(fut), wait_s)
        except TimeoutError:
            if fut.done() and not fut.cancelled():
                self.give(n)  # granted just as the wait ran out
            return False
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.give(n)  # granted in the same step the caller went away
            else:
                fut.cancel()
            raise
        finally:
            if entry in self._waiters:
                self._waiters.remove(entry)
        return True

    def give(self, n: int) -> None:
        self.held -= min(n, self.capacity)
        while self._waiters:
            want, fut = self._waiters[0]
            if fut.done():
                self._waiters.pop(0)
                continue
            if self.held + want > self.capacity:
                break
            self._waiters.pop(0)
            self._hold(want)
            fut.set_result(None)

    def _hold(self, n: int) -> None:
        self.held += n
        self.peak = max(self.peak, self.held)


def method_limit(method: str) -> int:
    return METHOD_LIMITS.get(method, DEFAULT_UNARY_LIMIT)


class Guard(grpc.aio.ServerInterceptor):  # type: ignore[misc,type-arg]
    """Authenticates every call of the Vantage services before its handler runs, and reads
    a unary request's body only once its caller is allowed (see the module's doc)."""

    def __init__(
        self,
        access: Access,
        *,
        ready: asyncio.Event | None = None,
        wait_s: float = 60.0,
        budget: ByteBudget | None = None,
    ) -> None:
        self.access = access
        self.reading: dict[str, _Turns] = {}  # credential -> its BODIES_PER_CALLER turns
        # Set once the coordinator has read its state back: until then an authenticated
        # call waits for it (at most ``wait_s``), so nothing is served from a half-read
        # state and a restart refuses no agent (coordinator/server.py ``_load_then_serve``).
        self.ready = ready
        self.wait_s = wait_s
        self.budget = budget or ByteBudget(BODY_BUDGET_BYTES)

    async def intercept_service(self, continuation: Any, details: Any) -> Any:
        handler = await continuation(details)
        method = str(details.method)
        if handler is None or not method.startswith(GUARDED_PREFIX):
            return handler
        role = METHOD_ROLES.get(method)
        given = bearer(details.invocation_metadata)
        access, ready, wait_s = self.access, self.ready, self.wait_s

        async def admit(context: Any) -> None:
            if role is None:
                await context.abort(grpc.StatusCode.PERMISSION_DENIED, f"{method}: not open to any role")
                return
            try:
                principal = await access.authenticate(role, given, str(context.peer()), _certified_name(context))
            except Denied as why:
                await context.abort(why.code, why.message)
            set_principal(principal)
            if ready is not None and not ready.is_set():
                try:
                    await asyncio.wait_for(ready.wait(), wait_s)
                except TimeoutError:
                    await context.abort(
                        grpc.StatusCode.UNAVAILABLE,
                        f"the coordinator is still reading its state back (waited {wait_s:g}s); retry",
                    )

        body = _Body(handler, method, self.budget, self.reading)
        if handler.unary_unary is not None:
            return _unary(handler, admit, body)
        if handler.unary_stream is not None:
            return _unary_stream(handler, admit, body)
        if handler.stream_stream is not None:
            inner_ss = handler.stream_stream

            async def stream_stream(request_iterator: Any, context: Any) -> Any:
                await admit(context)
                return await inner_ss(request_iterator, context)

            return grpc.stream_stream_rpc_method_handler(
                stream_stream, request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )  # fmt: skip
        return handler  # stream-unary: no such method in the Vantage services


class _Turns:
    """One credential's turns at reading a body, and how many calls use them."""

    def __init__(self) -> None:
        self.slots = asyncio.Semaphore(BODIES_PER_CALLER)
        self.users = 0


class _Body:
    """Reads the one request message of a unary call served as request-streaming."""

    def __init__(self, handler: Any, method: str, budget: ByteBudget, reading: dict[str, _Turns]) -> None:
        self.handler = handler
        self.method = method
        self.budget = budget
        self.reading = reading
        self.limit = method_limit(method)

    async def read(self, requests: Any, context: Any) -> Any:
        name = self.method.rsplit("/", 1)[-1]
        who = caller().credential + ":" + caller().name
        turns = self.reading.setdefault(who, _Turns())
        turns.users += 1  # reading or waiting: the entry is forgotten when none is left
        try:
            try:
                await asyncio.wait_for(turns.slots.acquire(), BODY_WAIT_S)
            except TimeoutError:
                await _abort(context, grpc.StatusCode.RESOURCE_EXHAUSTED,
                             f"{name}: this credential has {BODIES_PER_CALLER} request bodies arriving already; retry")  # fmt: skip
            try:
                return await self._read(name, requests, context)
            finally:
                turns.slots.release()
        finally:
            turns.users -= 1
            if not turns.users:
                self.reading.pop(who, None)

    async def _read(self, name: str, requests: Any, context: Any) -> Any:
        if not await self.budget.take(MAX_MESSAGE_BYTES, BODY_WAIT_S):
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"{name}: the coordinator is reading too many requests at once; retry",
            )
        try:
            raw = await asyncio.wait_for(_first(requests), BODY_READ_S)
        except TimeoutError:
            raw = None
            await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, f"{name}: the request did not arrive within {BODY_READ_S:g}s")
        finally:
            self.budget.give(MAX_MESSAGE_BYTES)
        if raw is None:
            await _abort(context, grpc.StatusCode.INVALID_ARGUMENT, f"{name}: no request message")
        if len(raw) > self.limit:
            await _abort(context,
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"{name}: the request is {len(raw)} bytes, more than this method's limit of {self.limit}",
            )
        try:
            return self.handler.request_deserializer(raw) if self.handler.request_deserializer else raw
        except Exception as exc:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, f"the request does not parse: {type(exc).__name__}"
            )


async def _abort(context: Any, code: grpc.StatusCode, message: str) -> NoReturn:
    await context.abort(code, message)
    raise AssertionError("context.abort returned")  # it raises


async def _first(requests: Any) -> bytes | None:
    """The first message of the request stream; None when the caller sent none. A second
    message is not read: gRPC ends the call when the handler returns."""
    async for raw in requests:
        return bytes(raw)
    return None


def _certified_name(context: Any) -> str | None:
    """The subject CN of the client certificate the TLS layer verified, or None (no mutual
    TLS, or no CN)."""
    try:
        names = context.auth_context().get("x509_common_name") or ()
    except Exception:  # no auth context: plaintext
        return None
    for name in names:
        try:
            return str(name.decode("utf-8"))
        except (AttributeError, UnicodeDecodeError):
            return None
    return None


def _unary(handler: Any, admit: Callable[[Any], Awaitable[None]], body: _Body) -> Any:
    inner = handler.unary_unary

    async def unary_unary(requests: Any, context: Any) -> Any:
        await admit(context)
        request = await body.read(requests, context)
        return await inner(request, context)

    return grpc.stream_unary_rpc_method_handler(
        unary_unary, response_serializer=handler.response_serializer
    )


def _unary_stream(handler: Any, admit: Callable[[Any], Awaitable[None]], body: _Body) -> Any:
    inner = handler.unary_stream

    async def unary_stream(requests: Any, context: Any) -> Any:
        await admit(context)
        request = await body.read(requests, context)
        async for item in inner(request, context):
            yield item

    return grpc.stream_stream_rpc_method_handler(
        unary_stream, response_serializer=handler.response_serializer
    )
