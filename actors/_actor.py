"""`Actor`, the ``@handler`` marker, the per-class dispatch table, `Context` and `ActorRef`."""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, Union

from actors._message import Message
from actors.errors import ContextError, HandlerDefinitionError

if TYPE_CHECKING:
    from actors._envelope import Delivery
    from actors._system import ActorSystem

__all__ = ["Actor", "ActorRef", "Context", "handler"]

_F = TypeVar("_F", bound=Callable[..., Any])
_HANDLER_MARK = "__actor_handler__"


def handler(func: _F) -> _F:
    """Mark an `Actor` method as the handler for the message type its parameter is annotated with.

    The method takes one argument besides ``self``, annotated with a `Message` subclass (or a
    union of them). It may be a plain or an ``async`` method. When an actor is asked, the
    method's return value (a `Message` or None) is the reply.

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

    Refs are cheap values: build one with `ActorSystem.ref`, or get one from
    `Context.sender` / `Context.self_ref`. Two refs are equal when they name the same actor
    through the same system.

    Attributes:
        node_id: The id of the node hosting the actor.
        name: The actor's name on that node.
    """

    __slots__ = ("_system", "name", "node_id")

    def __init__(self, system: ActorSystem, node_id: str, name: str) -> None:
        """Build a ref; prefer `ActorSystem.ref`.

        Args:
            system: The system that sends on this ref's behalf.
            node_id: The id of the node hosting the actor.
            name: The actor's name on that node.
        """
        self._system = system
        self.node_id = node_id
        self.name = name

    @property
    def system(self) -> ActorSystem:
        """The `ActorSystem` this ref sends through."""
        return self._system

    def tell(self, message: Message) -> bool:
        """Send a message without waiting for an answer (see `ActorSystem.tell`).

        Args:
            message: The message to send.

        Returns:
            True when the message was handed to the local mailbox or to the transport.
        """
        return self._system.tell(self.node_id, self.name, message)

    async def ask(self, message: Message, *, timeout: float = 5.0) -> Message | None:
        """Send a message and wait for the handler's return value (see `ActorSystem.ask`).

        Args:
            message: The message to send.
            timeout: Seconds to wait for the reply.

        Returns:
            The reply message, or None when the handler returned None.
        """
        return await self._system.ask(self.node_id, self.name, message, timeout=timeout)

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
        return f"<ActorRef {self.node_id}/{self.name} via {self._system.id}>"


class Context:
    """What an actor knows about its situation; read it as ``self.context`` in a handler.

    Attributes:
        system: The `ActorSystem` hosting the actor.
        name: The actor's name in that system.
        self_ref: An `ActorRef` to the actor itself.
    """

    __slots__ = ("_current", "name", "self_ref", "system")

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
