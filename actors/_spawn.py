"""The checks `ActorSystem.spawn` makes before an actor runs: name, policy, instance or factory."""

from __future__ import annotations

from collections.abc import Callable

from actors._actor import Actor
from actors._mailbox import SUPERVISION_POLICIES
from actors.errors import HandlerDefinitionError, SpawnError

__all__ = ["checked_spawn"]


def checked_spawn(
    name: object, actor: object, supervision: str
) -> tuple[Actor, Callable[[], Actor] | None]:
    """Check spawn's arguments and build the instance.

    Args:
        name: The actor's name (must be a non-empty str).
        actor: An `Actor` instance, or a factory that builds one.
        supervision: The supervision policy.

    Returns:
        The instance, and the factory (None when an instance was passed).

    Raises:
        SpawnError: Bad name, unknown policy, ``"restart"`` without a factory, a failing or
            wrong factory, or an instance already spawned.
        HandlerDefinitionError: The actor's class has a malformed ``@handler``.
    """
    if not isinstance(name, str) or not name:
        raise SpawnError(f"actor name must be a non-empty str, not {name!r}")
    if supervision not in SUPERVISION_POLICIES:
        raise SpawnError(
            f"unknown supervision policy {supervision!r}; use one of {sorted(SUPERVISION_POLICIES)}"
        )
    factory: Callable[[], Actor] | None
    if isinstance(actor, Actor):
        instance, factory = actor, None
        if supervision == "restart":
            raise SpawnError(
                f"supervision='restart' needs a factory to build fresh instances; pass "
                f"{type(actor).__qualname__} (or a function) instead of an instance"
            )
        if instance._actor_context is not None:
            raise SpawnError(f"{instance!r} is already spawned")
    elif callable(actor):
        factory = actor
        try:
            instance = factory()
        except Exception as exc:
            raise SpawnError(f"factory for actor {name!r} failed: {exc!r}") from exc
        if not isinstance(instance, Actor):
            raise SpawnError(
                f"factory for actor {name!r} returned {type(instance).__qualname__}, not an Actor"
            )
    else:
        raise SpawnError(f"spawn() needs an Actor or a factory, not {actor!r}")
    try:
        type(instance)._handler_table()  # surface malformed handlers now
    except NameError as exc:
        raise HandlerDefinitionError(str(exc)) from exc
    return instance, factory
