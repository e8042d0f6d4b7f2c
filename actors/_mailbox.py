"""One actor's mailbox: a queue drained by a single task, plus supervision.

Each spawned actor owns an `ActorCell`: a deque of deliveries (`actors._envelope.Delivery`) and
one asyncio task that takes them out in arrival order and runs the handler. Putting a message in
the mailbox appends to the deque and, only when the task is idle, resolves the one future it
sleeps on; no task, future or lock is created per message. The cell answers an ask through the
delivery's reply capability and reaches its system only through `CellHost`.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, Protocol

from actors._actor import Actor, Context, _Handler
from actors._envelope import Delivery, ReplyTo, Tell, decode
from actors._limits import DESCRIBE_LIMIT, bounded_text, scalar_classes
from actors._message import Message
from actors._timers import TimerMark

if TYPE_CHECKING:
    from actors._receive import Admission
    from actors._system import ActorSystem

__all__ = ["ActorCell", "CellHost", "Supervision"]

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

# Builds a Delivery at C speed (a NamedTuple's own __new__ is a Python function).
_new = tuple.__new__


class CellHost(Protocol):
    """What a cell needs from the system hosting it (Pykka's ``ActorInbox`` lesson)."""

    def dead_letter(
        self,
        reason: str,
        target: str | None,
        tag: str | None,
        sender_node: str | None,
        detail: str,
        reply_to: ReplyTo | None,
        *,
        log: bool = True,
    ) -> None:
        """Count and report a message the cell could not handle; answer it if it was an ask.
        ``log=False``: the cell sums such letters up in `cell_ended` instead of a line each."""

    def cell_stopped(self, cell: ActorCell) -> None:
        """The cell's actor has stopped: no more messages are to be routed to it."""

    def cell_ended(self, cell: ActorCell, discarded: int) -> None:
        """The actor's ``on_stop`` ran; ``discarded`` messages were still queued (dead letters
        already recorded, without a log line each). Death watch learns of the end here."""

    def actor_failed(self, cell: ActorCell, message_type: type[Message], exc: Exception) -> None:
        """A handler raised (the ``actor_failed`` event)."""


class _InlineRun:
    """``with cell._inline:`` runs handlers in the caller's stack: the cell is marked busy (no
    second inline run, the mailbox task keeps its turn) and the sending actor is known."""

    __slots__ = ("_cell", "_token")

    def __init__(self, cell: ActorCell) -> None:
        self._cell = cell
        self._token: contextvars.Token[tuple[ActorSystem, str] | None] | None = None

    def __enter__(self) -> None:
        self._cell._running_inline = True
        self._token = current_actor.set(self._cell._identity)

    def __exit__(self, *exc_info: object) -> None:
        assert self._token is not None
        current_actor.reset(self._token)
        self._token = None
        self._cell._running_inline = False


class ActorCell:
    """The running state of one spawned actor: instance, mailbox, task and supervision.

    Every path into a handler goes through `_invoke` (synchronous handlers) or `_invoke_async`:
    they bind the delivery (hence ``context.sender``) for exactly the call, and `_answer` /
    `_failed` hand the outcome to the delivery's reply capability and to supervision.
    """

    def __init__(
        self,
        host: CellHost,
        context: Context,
        instance: Actor,
        factory: Callable[[], Actor] | None,
        supervision: Supervision,
        mailbox_size: int | None = None,
    ) -> None:
        self.host = host
        self.name = context.name
        self.instance = instance
        self.factory = factory
        self.supervision = supervision
        self.context = context
        self._node_id = context.system.id
        self._identity = (context.system, context.name)
        instance._actor_context = context
        self.task: asyncio.Task[None] | None = None
        self._queue: deque[Delivery] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._stopping = False
        self._started = False
        self._running_inline = False
        self._inline = _InlineRun(self)
        # A handler run inline raised: the mailbox task applies supervision (it may await).
        self._failure: tuple[_Handler, Delivery, Exception] | None = None
        self.stopped = False
        self.mailbox_size = mailbox_size
        """The bound of the mailbox, or None."""
        self.handled = 0
        """Messages given to a handler (including those it raised on)."""
        self.failed = 0
        """Messages whose handler raised."""
        self.restarts = 0
        """Times supervision replaced the instance."""
        context._timers._deliver = self._deliver_timer

    def start(self) -> None:
        """Create the mailbox task."""
        self.task = asyncio.get_running_loop().create_task(
            self._run(), name=f"actor {self._node_id}/{self.name}"
        )

    def put(self, delivery: Delivery) -> bool:
        """Append a message to the mailbox (never blocks, allocates nothing but the entry).

        Returns:
            False when the mailbox is bounded and full: nothing was queued.
        """
        size = self.mailbox_size
        if size is not None and len(self._queue) >= size:
            return False
        self._queue.append(delivery)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)
        return True

    def put_system(self, delivery: Delivery) -> None:
        """Append a system notice (`Terminated`, `NodeUp`...), past the mailbox's bound."""
        self._queue.append(delivery)
        self._wake()

    def _deliver_timer(self, message: Message, mark: int) -> bool:
        """Queue a fired timer's message (see `actors._timers.TimerMark`)."""
        if self._stopping:
            return False
        return self.put(_new(Delivery, (message, self._node_id, self.name, TimerMark(mark))))

    # --- the one way into a handler ------------------------------------------------------------

    def _invoke(self, entry: _Handler, delivery: Delivery) -> Any:
        """Call a synchronous handler with ``delivery`` bound as the message being handled.

        A ``with`` block per message measured about 0.6 µs on the benchmark machine, a fifth
        of a local tell, so the binding is this one try/finally, the only place that sets it.
        """
        context = self.context
        context._current = delivery
        self.handled += 1
        try:
            return entry.function(self.instance, delivery.message)
        finally:
            context._current = None

    async def _invoke_async(self, entry: _Handler, delivery: Delivery) -> Any:
        """As `_invoke`, for an ``async`` handler: the binding holds across its awaits."""
        context = self.context
        context._current = delivery
        self.handled += 1
        try:
            return await entry.function(self.instance, delivery.message)
        finally:
            context._current = None

    def run_now(self, delivery: Delivery) -> bool:
        """Handle a message at once, in the caller's stack, when that keeps the guarantees.

        That is when the actor is idle (its task waits for mail, nothing is queued, it is not
        stopping) and the handler is synchronous: the message would be the next one handled
        anyway, and nothing else runs meanwhile. The network receive path uses this so that a
        message is handled while its objects are young, instead of waiting in a deque, and an
        ask is answered in the same event-loop turn.

        Returns:
            False when nothing was done and the message must go to the mailbox.
        """
        entry = self._inline_handler(type(delivery.message))
        if entry is None:
            return False
        with self._inline:
            try:
                result = self._invoke(entry, delivery)
            except Exception as exc:
                self._fail_inline(entry, delivery, exc)
                return True
        if delivery.reply_to is not None:
            self._answer(entry, delivery, result)
        return True

    def run_tells(
        self,
        peer_id: str,
        packets: list[Any],
        index: int,
        first: Tell,
        cls: type[Message],
        admission: Admission,
    ) -> int:
        """Handle a run of tells from ``packets[index:]`` at once, as `run_now` does for one.

        ``first`` is ``packets[index]`` decoded. The run is the packets, from ``index`` on,
        that decode as tells for this actor with ``first``'s wire tag (of class ``cls``). Each
        payload is checked against ``admission``'s size budget and validated, once; one refused
        is a dead letter (``admission`` reports it) and the run goes on past it. The run stops early
        when a handler raises, or when a handler left mail in the mailbox or asked the actor to
        stop; the caller takes the rest one by one. Order and one-at-a-time are those of the
        mailbox: this only skips the deque.

        Returns:
            The index of the first packet not handled (``index`` when none was).
        """
        entry = self._inline_handler(cls)
        if entry is None:
            return index
        name = self.name
        tag = first.tag
        count = len(packets)
        invoke = self._invoke
        envelope: Any = first
        validate = cls.__pydantic_validator__.validate_python
        budget = admission.max_items
        # A flat map for a class of scalars needs only its length checked (see within_budget);
        # anything else takes admission.admit, which walks it.
        flat = cls in scalar_classes
        with self._inline:
            while True:
                payload = envelope.payload
                if budget is None or (flat and type(payload) is dict and len(payload) <= budget):
                    try:
                        message = validate(payload)
                    except Exception as exc:
                        admission.refuse(peer_id, envelope, cls, None, exc)
                        message = None
                else:
                    message = admission.admit(peer_id, envelope, cls, None)
                    flat = cls in scalar_classes
                index += 1
                if message is not None:
                    delivery = _new(Delivery, (message, peer_id, envelope.sender_actor, None))
                    try:
                        invoke(entry, delivery)
                    except Exception as exc:
                        self._fail_inline(entry, delivery, exc)
                        break  # the mailbox task supervises before the next message
                if self._queue or self._stopping or index >= count:
                    break
                envelope = decode(packets[index])
                if type(envelope) is not Tell or envelope.target != name or envelope.tag != tag:
                    break
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

    def _fail_inline(self, entry: _Handler, delivery: Delivery, exc: Exception) -> None:
        # Supervision may await hooks: the mailbox task applies it before the next message.
        self._failure = (entry, delivery, exc)
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
            f"<ActorCell {self._node_id}/{self.name} {type(self.instance).__qualname__} "
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
        invoke = self._invoke
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
            delivery = popleft()
            reply_to = delivery.reply_to
            entry = type(self.instance)._handler_for(type(delivery.message))
            if entry is not None and not entry.is_async and reply_to is None:
                # The hot path, a tell to a synchronous handler: no coroutine per message.
                try:
                    invoke(entry, delivery)
                except Exception as exc:
                    await self._failed(entry, delivery, exc)
            elif type(reply_to) is TimerMark and not self.context._timers.take(reply_to.mark):
                continue  # from a timer cancelled after it fired
            else:
                try:
                    await self._handle(delivery)
                except Exception:
                    # Not the handler's exception (`_handle` catches those): answering,
                    # reporting or supervising failed. The actor carries on regardless.
                    logger.exception(
                        "actor %s/%s: internal error around %s; carrying on",
                        self._node_id,
                        self.name,
                        type(delivery.message).__qualname__,
                    )
            handled += 1
            if handled >= _FAIRNESS_BATCH:
                handled = 0
                await asyncio.sleep(0)

    async def _handle(self, delivery: Delivery) -> None:
        message = delivery.message
        entry = type(self.instance)._handler_for(type(message))
        if entry is None:
            self.host.dead_letter(
                "no_handler",
                self.name,
                message.__message_tag__,
                delivery.sender_node,
                f"{type(self.instance).__qualname__} has no handler for "
                f"{type(message).__qualname__}",
                delivery.reply_to,
            )
            return
        try:
            if entry.is_async:
                result = await self._invoke_async(entry, delivery)
            else:  # no coroutine for a synchronous handler (an ask, or a message after mail)
                result = self._invoke(entry, delivery)
        except Exception as exc:
            await self._failed(entry, delivery, exc)
            return
        if delivery.reply_to is not None:
            self._answer(entry, delivery, result)

    def _answer(self, entry: _Handler, delivery: Delivery, result: Any) -> None:
        """Send an ask's reply, the handler's return value whatever its type, through its
        reply capability (which answers an unserializable one as an ``EncodeError``)."""
        reply_to = delivery.reply_to
        assert reply_to is not None
        try:
            reply_to.reply(result)
        except Exception as exc:
            # The reply capability turns what it can foresee (too large, too deep, no msgpack
            # form) into a RemoteError itself; anything else still must not end the actor.
            logger.exception(
                "actor %s/%s: the reply of %s() could not be sent",
                self._node_id,
                self.name,
                entry.name,
            )
            reply_to.fail("EncodeError", f"the reply could not be sent: {type(exc).__name__}")

    async def _failed(self, entry: _Handler, delivery: Delivery, exc: Exception) -> None:
        """A handler raised: log and count it, tell the host (``actor_failed``), answer an ask
        with the error, apply supervision."""
        self.failed += 1
        logger.error(
            "actor %s/%s: %s() failed on %s",
            self._node_id,
            self.name,
            entry.name,
            type(delivery.message).__qualname__,
            exc_info=exc,
        )
        if delivery.reply_to is not None:
            delivery.reply_to.fail(type(exc).__name__, _exception_text(exc))
        self.host.actor_failed(self, type(delivery.message), exc)
        await self._supervise()

    async def _supervise(self) -> None:
        if self.supervision == "resume":
            return
        if self.supervision == "stop":
            logger.info("actor %s/%s stops (supervision=stop)", self._node_id, self.name)
            self._stopping = True
            return
        # restart: the old instance is done with; a fresh one from the factory takes over
        logger.info("actor %s/%s restarts (supervision=restart)", self._node_id, self.name)
        self.restarts += 1
        self.context._timers.cancel_all()  # the fresh instance schedules its own
        await self._call_hook(self.instance.on_stop, "on_stop")
        self._started = False
        assert self.factory is not None  # spawn() refuses restart without a factory
        try:
            fresh = self.factory()
            if not isinstance(fresh, Actor):
                raise TypeError(f"factory returned {type(fresh).__qualname__}, not an Actor")
        except Exception:
            logger.exception("actor %s/%s: factory failed; stopping", self._node_id, self.name)
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
            logger.exception("actor %s/%s: %s() failed", self._node_id, self.name, hook_name)
            return False
        return True

    async def _finish(self) -> None:
        self._stopping = True
        self.context._timers.cancel_all()
        self.host.cell_stopped(self)
        try:
            if self._started:
                await self._call_hook(self.instance.on_stop, "on_stop")
        finally:
            self.stopped = True
            self.context._timers.close()  # also those on_stop may have scheduled
            discarded = 0
            while self._queue:
                delivery = self._queue.popleft()
                if type(delivery.reply_to) is TimerMark:
                    continue  # the actor's own timer: it ended with the actor
                discarded += 1
                self.host.dead_letter(
                    "actor_stopped",
                    self.name,
                    delivery.message.__message_tag__,
                    delivery.sender_node,
                    f"actor {self.name!r} stopped before handling it",
                    delivery.reply_to,
                    log=False,  # the host logs one line for them all (cell_ended)
                )
            self.host.cell_ended(self, discarded)


def _exception_text(exc: BaseException) -> str:
    """``str(exc)``, cut to a sendable size; a ``__str__`` that itself fails is named."""
    try:
        text = str(exc)
    except Exception as failure:
        return f"<str() of the exception failed: {type(failure).__name__}>"
    return bounded_text(text, 4 * DESCRIBE_LIMIT)
