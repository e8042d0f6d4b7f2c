"""One actor's mailbox: a queue drained by a single task, plus supervision.

Each spawned actor owns an `ActorCell`: a deque of envelopes and one asyncio task that takes
them out in arrival order and runs the handler. Putting a message in the mailbox appends to the
deque and, only when the task is idle, resolves the one future it sleeps on; no task, future or
lock is created per message.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from pydantic import ValidationError

from actors._actor import Actor, Context, _Handler
from actors._message import Message

if TYPE_CHECKING:
    from actors._system import ActorSystem

__all__ = ["ActorCell", "Envelope", "Supervision"]

logger = logging.getLogger(__name__)

Supervision = Literal["resume", "restart", "stop"]
"""What happens to an actor whose handler raised: ``"resume"`` keeps the instance and its state
and goes on with the next message; ``"restart"`` replaces it with a fresh instance from its
factory; ``"stop"`` removes it (later messages become dead letters)."""

SUPERVISION_POLICIES: frozenset[str] = frozenset({"resume", "restart", "stop"})

# The actor whose mailbox task is running, so that a tell from inside a handler carries its
# sender without the user passing it. Each mailbox task sets it once, in its own context.
current_actor: contextvars.ContextVar[tuple[ActorSystem, str] | None] = contextvars.ContextVar(
    "masterless_current_actor", default=None
)

# Yield to the event loop after this many messages handled without suspending, so a busy actor
# with synchronous handlers does not starve the others.
_FAIRNESS_BATCH = 128


class Envelope(NamedTuple):
    """A message in a mailbox, with where it came from and where a reply goes."""

    message: Message
    sender_node: str | None
    sender_name: str | None
    reply_node: str | None
    """None for a tell; for an ask, the node waiting for the reply."""
    correlation_id: int


class ActorCell:
    """The running state of one spawned actor: instance, mailbox, task and supervision."""

    def __init__(
        self,
        system: ActorSystem,
        name: str,
        instance: Actor,
        factory: Callable[[], Actor] | None,
        supervision: Supervision,
        mailbox_size: int | None = None,
    ) -> None:
        self.system = system
        self.name = name
        self.instance = instance
        self.factory = factory
        self.supervision = supervision
        self.context = Context(system, name)
        self.context._timers._deliver = self._deliver_timer
        self.mailbox_size = mailbox_size
        self.handled = 0
        self.failed = 0
        self.restarts = 0
        self._identity = (system, name)
        instance._actor_context = self.context
        self.task: asyncio.Task[None] | None = None
        self._queue: deque[Envelope] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._stopping = False
        self._started = False
        self._running_inline = False
        # A handler run inline raised: the mailbox task applies supervision (it may await).
        self._failure: tuple[_Handler, Envelope, Exception] | None = None
        self.stopped = False

    def start(self) -> None:
        """Create the mailbox task."""
        self.task = asyncio.get_running_loop().create_task(
            self._run(), name=f"actor {self.system.id}/{self.name}"
        )

    def put(self, envelope: Envelope) -> bool:
        """Append a message to the mailbox (never blocks, allocates nothing but the entry).

        Returns:
            False when the mailbox is bounded and full (nothing was queued).
        """
        size = self.mailbox_size
        if size is not None and len(self._queue) >= size:
            return False
        self._queue.append(envelope)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)
        return True

    def put_system(self, envelope: Envelope) -> None:
        """Append a system notice (`Terminated`, `NodeUp`...), past the mailbox bound."""
        self._queue.append(envelope)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def run_now(self, envelope: Envelope) -> bool:
        """Handle a message at once, in the caller's stack, when that keeps the guarantees.

        That is when the actor is idle (its task waits for mail, nothing is queued, it is not
        stopping) and the handler is synchronous: the message would be the next one handled
        anyway, and nothing else runs meanwhile. The network receive path uses this so that a
        message is handled while its objects are young, instead of waiting in a deque, and an
        ask is answered in the same event-loop turn.

        Returns:
            False when nothing was done and the message must go to the mailbox.
        """
        message = envelope.message
        entry = self._inline_handler(type(message))
        if entry is None:
            return False
        instance = self.instance
        context = self.context
        context._sender_node = envelope.sender_node
        context._sender_name = envelope.sender_name
        self._running_inline = True
        token = current_actor.set(self._identity)
        self.handled += 1
        try:
            result = entry.function(instance, message)
        except Exception as exc:
            self._fail_inline(entry, envelope, exc)
            return True
        finally:
            current_actor.reset(token)
            context._sender_node = context._sender_name = None
            self._running_inline = False
        if envelope.reply_node is not None:
            self._answer(entry, envelope, result)
        return True

    def run_tells(
        self, peer_id: str, packets: list[Any], index: int, tag: str, cls: type[Message]
    ) -> int:
        """Handle a run of tells from ``packets[index:]`` at once, as `run_now` does for one.

        The run is the packets, from ``index`` on, that are well-formed tell envelopes for this
        actor with wire tag ``tag`` (of class ``cls``) and a valid payload. It stops early at
        the first packet that is not, when a handler raises, or when a handler left mail in the
        mailbox or asked the actor to stop; the caller takes the rest one by one. Validation,
        order and one-at-a-time are those of the mailbox: this only skips the deque.

        Returns:
            The index of the first packet not handled (``index`` when none was).
        """
        entry = self._inline_handler(cls)
        if entry is None:
            return index
        instance = self.instance
        function = entry.function
        validate = cls.__pydantic_validator__.validate_python
        name = self.name
        count = len(packets)
        context = self.context
        context._sender_node = peer_id
        self._running_inline = True
        token = current_actor.set(self._identity)
        try:
            while index < count:
                packet = packets[index]
                if (
                    type(packet) is not list
                    or len(packet) != 7
                    or packet[0] != 0  # EnvelopeKind.TELL
                    or packet[1] != name
                    or packet[2] != tag
                ):
                    break
                try:
                    message = validate(packet[3])
                except ValidationError:
                    break  # the caller's general path reports it as a dead letter
                sender_name = packet[5]
                if type(sender_name) is not str:
                    sender_name = None
                context._sender_name = sender_name
                index += 1
                self.handled += 1
                try:
                    function(instance, message)
                except Exception as exc:
                    self._fail_inline(entry, Envelope(message, peer_id, sender_name, None, 0), exc)
                    break  # the mailbox task supervises before the next message
                if self._queue or self._stopping:
                    break
        finally:
            current_actor.reset(token)
            context._sender_node = context._sender_name = None
            self._running_inline = False
        return index

    def _inline_handler(self, message_type: type[Message]) -> _Handler | None:
        """The handler to run a message of this type now, in the caller's stack, or None.

        That is allowed when the actor is idle (its task waits for mail, nothing is queued, it
        is not stopping or already running one inline) and the handler is synchronous.
        """
        if self._waiter is None or self._queue or self._stopping or self._running_inline:
            return None
        entry = type(self.instance)._handler_for(message_type)
        if entry is None or entry.is_async:
            return None
        return entry

    def _fail_inline(self, entry: _Handler, envelope: Envelope, exc: Exception) -> None:
        # Supervision may await hooks: the mailbox task applies it before the next message.
        self._failure = (entry, envelope, exc)
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def request_stop(self) -> None:
        """Stop after the message being handled; the rest of the mailbox becomes dead letters."""
        self._stopping = True
        self._wake()

    def handles(self, message_type: type[Message]) -> bool:
        """Whether the current instance has a handler for ``message_type``."""
        return type(self.instance)._handler_for(message_type) is not None

    @property
    def queued(self) -> int:
        """How many messages wait in the mailbox."""
        return len(self._queue)

    def __repr__(self) -> str:
        state = "stopped" if self.stopped else "stopping" if self._stopping else "running"
        return (
            f"<ActorCell {self.system.id}/{self.name} {type(self.instance).__qualname__} "
            f"{state} queued={len(self._queue)}>"
        )

    # --- the mailbox task ----------------------------------------------------------------------

    async def _run(self) -> None:
        current_actor.set(self._identity)
        try:
            self._started = await self._call_hook(self.instance.on_start, "on_start")
            if self._started:
                await self._loop()
            else:
                self._stopping = True
        finally:
            await self._finish()

    async def _loop(self) -> None:
        queue = self._queue
        popleft = queue.popleft
        loop = asyncio.get_running_loop()
        context = self.context
        handled = 0
        while not self._stopping:
            failure = self._failure
            if failure is not None:
                self._failure = None
                await self._failed(*failure)
                continue
            if not queue:
                handled = 0
                waiter = self._waiter = loop.create_future()
                await waiter
                continue
            envelope = popleft()
            if envelope.correlation_id < 0 and not context._timers.take(envelope.correlation_id):
                continue  # from a timer cancelled after it fired
            message = envelope.message
            instance = self.instance
            entry = type(instance)._handler_for(type(message))
            if entry is not None and not entry.is_async and envelope.reply_node is None:
                # The hot path, a tell to a synchronous handler: no coroutine per message.
                context._sender_node = envelope.sender_node
                context._sender_name = envelope.sender_name
                self.handled += 1
                try:
                    entry.function(instance, message)
                except Exception as exc:
                    context._sender_node = context._sender_name = None
                    await self._failed(entry, envelope, exc)
                context._sender_node = context._sender_name = None
            else:
                await self._handle(envelope)
            handled += 1
            if handled >= _FAIRNESS_BATCH:
                handled = 0
                await asyncio.sleep(0)

    async def _handle(self, envelope: Envelope) -> None:
        message = envelope.message
        instance = self.instance
        entry = type(instance)._handler_for(type(message))
        system = self.system
        if entry is None:
            system._dead_letter(
                "no_handler",
                self.name,
                message.__message_tag__,
                envelope.sender_node,
                f"{type(instance).__qualname__} has no handler for {type(message).__qualname__}",
                envelope.reply_node,
                envelope.correlation_id,
            )
            return
        context = self.context
        context._sender_node = envelope.sender_node
        context._sender_name = envelope.sender_name
        self.handled += 1
        try:
            result = entry.function(instance, message)
            if entry.is_async:
                result = await result
        except Exception as exc:
            await self._failed(entry, envelope, exc)
            return
        finally:
            context._sender_node = None
            context._sender_name = None
        if envelope.reply_node is not None:
            self._answer(entry, envelope, result)

    def _answer(self, entry: _Handler, envelope: Envelope, result: Any) -> None:
        """Send an ask's reply: the handler's return value, whatever its type."""
        assert envelope.reply_node is not None
        self.system._reply(envelope.reply_node, envelope.correlation_id, result)

    async def _failed(self, entry: _Handler, envelope: Envelope, exc: Exception) -> None:
        """A handler raised: log it, count it, tell ``actor_failed`` callbacks, answer an ask
        with the error, apply supervision."""
        system = self.system
        self.failed += 1
        logger.error(
            "actor %s/%s: %s() failed on %s",
            system.id,
            self.name,
            entry.name,
            type(envelope.message).__qualname__,
            exc_info=exc,
        )
        if envelope.reply_node is not None:
            system._reply_error(
                envelope.reply_node, envelope.correlation_id, type(exc).__name__, str(exc)
            )
        system._actor_failed(self.name, type(envelope.message), exc)
        await self._supervise()

    async def _supervise(self) -> None:
        if self.supervision == "resume":
            return
        if self.supervision == "stop":
            logger.info("actor %s/%s stops (supervision=stop)", self.system.id, self.name)
            self._stopping = True
            return
        # restart: the old instance is done with; a fresh one from the factory takes over
        logger.info("actor %s/%s restarts (supervision=restart)", self.system.id, self.name)
        self.restarts += 1
        self.context._timers.cancel_all()
        await self._call_hook(self.instance.on_stop, "on_stop")
        self._started = False
        assert self.factory is not None  # spawn() refuses restart without a factory
        try:
            fresh = self.factory()
            if not isinstance(fresh, Actor):
                raise TypeError(f"factory returned {type(fresh).__qualname__}, not an Actor")
        except Exception:
            logger.exception("actor %s/%s: factory failed; stopping", self.system.id, self.name)
            self._stopping = True
            return
        self.instance._actor_context = None
        fresh._actor_context = self.context
        self.instance = fresh
        self._started = await self._call_hook(fresh.on_start, "on_start")
        if not self._started:
            self._stopping = True

    async def _call_hook(self, hook: Callable[[], Any], hook_name: str) -> bool:
        try:
            result = hook()
            if inspect.isawaitable(result):
                await result
        except Exception:
            logger.exception("actor %s/%s: %s() failed", self.system.id, self.name, hook_name)
            return False
        return True

    def _deliver_timer(self, message: Message, mark: int) -> bool:
        """Queue a fired timer's message under its (negative) mark; see `Timers.take`."""
        if self._stopping:
            return False
        return self.put(Envelope(message, self.system.id, self.name, None, mark))

    async def _finish(self) -> None:
        self._stopping = True
        self.context._timers.cancel_all()
        self.system._forget(self)
        try:
            if self._started:
                await self._call_hook(self.instance.on_stop, "on_stop")
        finally:
            self.stopped = True
            discarded = 0
            while self._queue:
                envelope = self._queue.popleft()
                if envelope.correlation_id < 0:
                    continue  # the actor's own timer: it ended with the actor
                discarded += 1
                self.system._dead_letter(
                    "actor_stopped",
                    self.name,
                    envelope.message.__message_tag__,
                    envelope.sender_node,
                    f"actor {self.name!r} stopped before handling it",
                    envelope.reply_node,
                    envelope.correlation_id,
                    log=False,
                )
            if discarded:
                self.system._discarded_on_stop(self.name, discarded)
            self.system._ended(self)
