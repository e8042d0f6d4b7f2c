"""masterless actors: typed messages between named actors on a masterless TCP mesh.

```python
from actors import Actor, ActorSystem, Message, handler

class Count(Message):
    total: int

class Counter(Actor):
    @handler
    async def on_count(self, msg: Count) -> None:
        self.context.sender.tell(Count(total=msg.total + 1))

async with ActorSystem("node-a", port=9000) as system:
    system.spawn("counter", Counter())
    await system.connect("tcp://127.0.0.1:9001")
    system.tell("node-b", "counter", Count(total=0))
```

Everything public is importable from this package; the submodules starting with ``_`` are
private. Exceptions live in `actors.errors` and are re-exported here.
"""

from __future__ import annotations

import logging

from actors._actor import Actor, ActorRef, Context, Terminated, handler
from actors._deadletters import DeadLetter
from actors._envelope import EnvelopeKind
from actors._events import ActorFailed, NodeDown, NodeUp, SystemEvent
from actors._mailbox import Supervision
from actors._message import Message, encode_message, message_class, message_tag
from actors._system import ActorStats, ActorSystem, SystemStats
from actors._timers import Timer
from actors.errors import (
    ActorError,
    ActorNotFoundError,
    ActorUsageError,
    AskError,
    AskTimeoutError,
    ContextError,
    DeadLetterError,
    DuplicateTagError,
    EncodeError,
    HandlerDefinitionError,
    MessageDefinitionError,
    NodeDownError,
    NodeError,
    RemoteError,
    SpawnError,
    SystemClosedError,
)

__all__ = [
    "Actor",
    "ActorError",
    "ActorFailed",
    "ActorNotFoundError",
    "ActorRef",
    "ActorStats",
    "ActorSystem",
    "ActorUsageError",
    "AskError",
    "AskTimeoutError",
    "Context",
    "ContextError",
    "DeadLetter",
    "DeadLetterError",
    "DuplicateTagError",
    "EncodeError",
    "EnvelopeKind",
    "HandlerDefinitionError",
    "Message",
    "MessageDefinitionError",
    "NodeDown",
    "NodeDownError",
    "NodeError",
    "NodeUp",
    "RemoteError",
    "SpawnError",
    "Supervision",
    "SystemClosedError",
    "SystemEvent",
    "SystemStats",
    "Terminated",
    "Timer",
    "encode_message",
    "handler",
    "message_class",
    "message_tag",
]

logging.getLogger(__name__).addHandler(logging.NullHandler())
