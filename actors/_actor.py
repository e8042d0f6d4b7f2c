"""`Actor`, the ``@handler`` marker, the per-class dispatch table, `Context` and `ActorRef`."""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, Union, overload

from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema

from actors._message import Message
from actors._timers import Timer, Timers
from actors._values import receiving_system
from actors._watch import TerminationReason
from actors.errors import ActorUsageError, ContextError, HandlerDefinitionError

if TYPE_CHECKING:
    from actors._envelope import Delivery
    from actors._system import ActorSystem

__all__ = ["Actor", "ActorRef", "Context", "Terminated", "handler"]

_F = TypeVar("_F", bound=Callable[..., Any])
_T = TypeVar("_T")
_HANDLER_MARK = "__actor_handler__"


def handler(func: _F) -> _F:
    """Mark an `Actor` method as the handler for the message type its parameter is annotated with.

    The method takes one argument besides ``self``, annotated with a `Message` subclass (or a
    union of them). It may be a plain or an ``async`` method. When an actor is asked, the
    method's return value is the reply: a `Message`, None, a plain value (bool, int, float,
    str, bytes, list, tuple, dict) or anything else pydantic can serialize.

    Args:
        func: The method to mark.

    Returns:
        The same function, marked.

    Example:
        ```python
        class Counter(Actor):
            @handler
            async def on_count(self, msg: Count) -> None:
                ...
        ```
    """
    setattr(func, _HANDLER_MARK, True)
    return func


@dataclass(frozen=True, slots=True)
class _Handler:
    """One dispatch-table entry: the function to call and whether to await its result."""

    function: Callable[[Any, Any], Any]
    is_async: bool
    name: str


class ActorRef:
    """An address of an actor, local or on a peer node, to send it messages.

    Refs are cheap, immutable values: build one with `ActorSystem.ref`, or get one from
    `Context.sender` / `Context.self_ref`. Two refs are equal when they name the same actor
    through the same system.

    A ref is also a field type: a `Message` may carry refs (``reply_to: ActorRef``,
    ``ActorRef | None``, ``list[ActorRef]``, ``dict[str, ActorRef]``). On the wire a ref is
    ``[node_id, name]``; the node that receives the message validates it back into a ref
    bound to its own system, so ``tell`` and ``ask`` through it work there, to this node, the
    sender's node or any node the receiver is connected to.

    Attributes:
        node_id: The id of the node hosting the actor.
        name: The actor's name on that node.
    """

    __slots__ = ("_system", "name", "node_id")

    def __init__(self, system: ActorSystem | None, node_id: str, name: str) -> None:
        """Build a ref; prefer `ActorSystem.ref`.

        Args:
            system: The system that sends on this ref's behalf. None makes an unbound ref,
                which sends through the system of the actor using it (see `system`).
            node_id: The id of the node hosting the actor.
            name: The actor's name on that node.
        """
        self._system = system
        self.node_id = node_id
        self.name = name

    @property
    def system(self) -> ActorSystem:
        """The `ActorSystem` this ref sends through.

        A ref validated outside any system's receive path (``Msg.model_validate(...)`` in
        plain code) is unbound; inside a handler it sends through that actor's system.

        Raises:
            ContextError: The ref is unbound and is used outside any actor's handler.
        """
        system = self._system
        if system is not None:
            return system
        from actors._mailbox import current_actor  # a cycle at import time

        running = current_actor.get()
        if running is None:
            raise ContextError(
                f"{self!r} is not bound to an actor system: make refs with system.ref(), "
                "or use a ref received in a message inside a handler"
            )
        return running[0]

    def tell(self, message: Message) -> bool:
        """Send a message without waiting for an answer (see `ActorSystem.tell`).

        Args:
            message: The message to send.

        Returns:
            True when the message was handed to the local mailbox or to the transport.
        """
        return self.system.tell(self.node_id, self.name, message)

    @overload
    async def ask(
        self, message: Message, *, timeout: float | None = 5.0, reply_type: None = None
    ) -> Any: ...

    @overload
    async def ask(
        self, message: Message, *, timeout: float | None = 5.0, reply_type: type[_T]
    ) -> _T: ...

    @overload
    async def ask(
        self, message: Message, *, timeout: float | None = 5.0, reply_type: types.UnionType
    ) -> Any: ...

    async def ask(
        self, message: Message, *, timeout: float | None = 5.0, reply_type: Any = None
    ) -> Any:
        """Send a message and wait for the handler's return value (see `ActorSystem.ask`).

        Args:
            message: The message to send.
            timeout: Seconds to wait for the reply; None waits forever.
            reply_type: Validate the reply into this type on arrival (``int``,
                ``list[Point]``, a model...); None returns it as it came.

        Returns:
            The reply: a `Message` as its class, a plain value as returned, anything else in
            its msgpack-native form (or validated into ``reply_type``).
        """
        return await self.system.ask(
            self.node_id, self.name, message, timeout=timeout, reply_type=reply_type
        )

    @staticmethod
    def __wire_form__(ref: ActorRef) -> list[str]:
        """The msgpack-native form of a ref: ``[node_id, name]``."""
        return [ref.node_id, ref.name]

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        """Make `ActorRef` usable as a pydantic field type (see the class docstring)."""
        from_wire = core_schema.no_info_after_validator_function(
            _ref_from_wire,
            core_schema.tuple_schema([core_schema.str_schema(), core_schema.str_schema()]),
        )
        return core_schema.json_or_python_schema(
            json_schema=from_wire,
            python_schema=core_schema.union_schema(
                [core_schema.is_instance_schema(cls), from_wire]
            ),
            serialization=core_schema.plain_serializer_function_ser_schema(
                cls.__wire_form__, when_used="always"
            ),
        )

    def __copy__(self) -> ActorRef:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> ActorRef:
        return self

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ActorRef):
            return NotImplemented
        return (
            self._system is other._system
            and self.node_id == other.node_id
            and self.name == other.name
        )

    def __hash__(self) -> int:
        return hash((id(self._system), self.node_id, self.name))

    def __repr__(self) -> str:
        via = self._system.id if self._system is not None else "unbound"
        return f"<ActorRef {self.node_id}/{self.name} via {via}>"


def _ref_from_wire(value: tuple[str, str]) -> ActorRef:
    # The receive path names the system that is validating; outside it the ref is unbound.
    return ActorRef(receiving_system.get(), value[0], value[1])


class Terminated(Message, tag="masterless.Terminated"):
    """Delivered once to an actor that watches ``ref`` (`Context.watch`) when that actor ends.

    Attributes:
        ref: The watched actor.
        reason: ``"stopped"`` (it stopped), ``"not_found"`` (no such actor when the watch
            arrived), or ``"node_down"`` (its node is not connected, went down or restarted).
    """

    ref: ActorRef
    reason: TerminationReason


class Context:
    """What an actor knows about its situation; read it as ``self.context`` in a handler.

    Attributes:
        system: The `ActorSystem` hosting the actor.
        name: The actor's name in that system.
        self_ref: An `ActorRef` to the actor itself.
    """

    __slots__ = ("_current", "_timers", "name", "self_ref", "system")

    def __init__(self, system: ActorSystem, name: str) -> None:
        """Build a context; the system does this at spawn.

        Args:
            system: The hosting system.
            name: The actor's name.
        """
        self.system = system
        self.name = name
        self.self_ref = ActorRef(system, system.id, name)
        # The delivery being handled; only ActorCell._invoke sets and clears it.
        self._current: Delivery | None = None
        # The cell replaces the delivery function with one into its own mailbox.
        self._timers = Timers(lambda message, mark: self.self_ref.tell(message))

    @property
    def sender(self) -> ActorRef | None:
        """The actor that sent the message being handled, or None.

        None when the message came from outside any actor (``system.tell`` from plain code),
        or outside a handler.
        """
        current = self._current
        if current is None or current.sender_name is None or current.sender_node is None:
            return None
        return ActorRef(self.system, current.sender_node, current.sender_name)

    def schedule(self, delay: float, message: Message, *, every: float | None = None) -> Timer:
        """Send ``message`` to this actor after ``delay`` seconds (then every ``every``).

        The timer ends when it is cancelled, when a one-shot timer fired, and when the actor
        stops or is restarted: after that no message from it is handled (even one already
        waiting in the mailbox), and none becomes a dead letter.

        Args:
            delay: Seconds until the first delivery.
            message: The message to deliver to this actor.
            every: Repeat at this rate (seconds); None delivers once.

        Returns:
            A `Timer`; call ``cancel()`` on it to stop it.

        Raises:
            ActorUsageError: ``message`` is not a `Message`, ``delay`` is negative or
                ``every`` is not positive.
        """
        return self._timers.schedule(delay, message, every)

    def watch(self, ref: ActorRef) -> None:
        """Be told once when the actor behind ``ref`` ends: a `Terminated` message arrives.

        Works for local and remote refs. Watching the same ref again changes nothing. The
        reason is ``"stopped"``, ``"not_found"`` or ``"node_down"`` (see `Terminated`).

        Args:
            ref: The actor to watch.

        Raises:
            ActorUsageError: ``ref`` is not an `ActorRef`.
        """
        if not isinstance(ref, ActorRef):
            raise ActorUsageError(f"watch() needs an ActorRef, not {type(ref).__qualname__}")
        self.system._watch(self.name, ref)

    def unwatch(self, ref: ActorRef) -> None:
        """Stop watching ``ref``; no `Terminated` for it is delivered after this call.

        Args:
            ref: A ref passed to `watch` before (any other ref is ignored).

        Raises:
            ActorUsageError: ``ref`` is not an `ActorRef`.
        """
        if not isinstance(ref, ActorRef):
            raise ActorUsageError(f"unwatch() needs an ActorRef, not {type(ref).__qualname__}")
        self.system._unwatch(self.name, ref)

    def __repr__(self) -> str:
        return f"<Context {self.system.id}/{self.name}>"


class Actor:
    """Base class of actors.

    Subclass it and mark methods with ``@handler``; each handles the `Message` type its
    parameter is annotated with. A message whose exact type has no handler goes to the handler
    of its nearest base class along the MRO, and to dead letters when there is none.

    An actor handles one message at a time, in arrival order, so its state needs no locks.
    Override `on_start` / `on_stop` (plain or ``async``) for setup and teardown.

    Example:
        ```python
        class Counter(Actor):
            def __init__(self) -> None:
                self.seen = 0

            @handler
            def on_count(self, msg: Count) -> Count:
                self.seen += 1
                return Count(total=msg.total + 1)
        ```
    """

    __handler_table: ClassVar[dict[type[Message], _Handler] | None] = None
    __dispatch_cache: ClassVar[dict[type[Message], _Handler | None]]
    _actor_context: Context | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.__handler_table = None
        cls.__dispatch_cache = {}
        # Report a missing or wrong annotation at class definition; annotations that refer to
        # names defined later (forward references) are resolved at first spawn instead.
        try:
            cls._handler_table()
        except NameError:
            cls.__handler_table = None

    @property
    def context(self) -> Context:
        """The actor's `Context` (sender, system, self_ref, name).

        Raises:
            ContextError: The actor has not been spawned yet (e.g. read in ``__init__``).
        """
        context = self._actor_context
        if context is None:
            raise ContextError(
                f"{type(self).__qualname__}.context is available once the actor is spawned"
            )
        return context

    def on_start(self) -> Awaitable[None] | None:
        """Run before the first message is handled; override as a plain or ``async`` method.

        Returns:
            None, or an awaitable when overridden with ``async def``.
        """
        return None

    def on_stop(self) -> Awaitable[None] | None:
        """Run once after the last message is handled; override as a plain or ``async`` method.

        Returns:
            None, or an awaitable when overridden with ``async def``.
        """
        return None

    @classmethod
    def handled_types(cls) -> tuple[type[Message], ...]:
        """The message types this class has a handler for, not counting subclasses.

        Returns:
            The annotated types of all ``@handler`` methods.

        Raises:
            HandlerDefinitionError: A handler is not annotated with a `Message` type.
        """
        return tuple(cls._handler_table())

    @classmethod
    def _handler_table(cls) -> dict[type[Message], _Handler]:
        table = cls.__handler_table
        if table is None:
            table = cls.__handler_table = _build_handler_table(cls)
        return table

    @classmethod
    def _handler_for(cls, message_type: type[Message]) -> _Handler | None:
        cache = cls.__dispatch_cache
        try:
            return cache[message_type]
        except KeyError:
            pass
        table = cls._handler_table()
        found: _Handler | None = None
        for base in message_type.__mro__:
            entry = table.get(base)
            if entry is not None:
                found = entry
                break
        cache[message_type] = found
        return found

    def __repr__(self) -> str:
        context = self._actor_context
        where = f"{context.system.id}/{context.name}" if context is not None else "not spawned"
        return f"<{type(self).__qualname__} {where}>"


def _build_handler_table(cls: type[Actor]) -> dict[type[Message], _Handler]:
    table: dict[type[Message], _Handler] = {}
    for attribute in dir(cls):
        function = inspect.getattr_static(cls, attribute, None)
        if isinstance(function, staticmethod | classmethod):
            function = function.__func__
        if not callable(function) or not getattr(function, _HANDLER_MARK, False):
            continue
        for message_type in _handled_message_types(cls, attribute, function):
            previous = table.get(message_type)
            if previous is not None:
                raise HandlerDefinitionError(
                    f"{cls.__qualname__}: both {previous.name}() and {attribute}() handle "
                    f"{message_type.__qualname__}"
                )
            table[message_type] = _Handler(
                function=function,
                is_async=inspect.iscoroutinefunction(function),
                name=attribute,
            )
    return table


def _handled_message_types(
    cls: type[Actor], attribute: str, function: Callable[..., Any]
) -> list[type[Message]]:
    where = f"{cls.__qualname__}.{attribute}"
    parameters = list(inspect.signature(function).parameters.values())
    if len(parameters) != 2:
        raise HandlerDefinitionError(
            f"{where}() must take exactly one message argument besides self"
        )
    annotation = _message_annotation(function, parameters[1], where)
    if annotation is None:
        raise HandlerDefinitionError(
            f"{where}(): annotate the message parameter {parameters[1].name!r} with the "
            "Message type it handles"
        )
    origin = typing.get_origin(annotation)
    candidates = (
        typing.get_args(annotation)
        if origin is Union or origin is types.UnionType
        else (annotation,)
    )
    for candidate in candidates:
        if not (isinstance(candidate, type) and issubclass(candidate, Message)):
            raise HandlerDefinitionError(
                f"{where}(): {candidate!r} is not a Message subclass; handlers are chosen by "
                "the annotated Message type"
            )
    return list(candidates)


def _message_annotation(
    function: Callable[..., Any], parameter: inspect.Parameter, where: str
) -> Any:
    """The evaluated annotation of a handler's message parameter, or None if it has none."""
    try:
        return typing.get_type_hints(function).get(parameter.name)
    except NameError:
        pass
    # Another annotation (often the return type) names something not importable from the
    # module; evaluate only the message parameter's own annotation.
    annotation = parameter.annotation
    if annotation is inspect.Parameter.empty:
        return None
    if not isinstance(annotation, str):
        return annotation
    try:
        return eval(annotation, getattr(function, "__globals__", {}))
    except NameError as exc:
        raise NameError(
            f"{where}(): cannot resolve the annotation {annotation!r}; define the message "
            "class at module level so handlers can find it"
        ) from exc
