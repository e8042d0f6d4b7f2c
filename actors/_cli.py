"""The ``masterless`` command (also ``python -m actors``): run a node, ask one for its status.

```text
masterless run MODULE:FACTORY --id ID [--host H] [--port P] [--seed URI ...] ...
masterless status URI [--cookie-file F] [--json]
masterless ping URI [-n N]
```

Bad input (a module that does not import, a malformed uri, a wrong cookie, a port in use) ends
the command with one line on stderr naming the problem and exit status 2, never a traceback.
`reference_markdown` renders the parser as the CLI reference page (``docs/cli.md``).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import json
import logging
import os
import secrets
import ssl
import statistics
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from actors._control import CONTROL_ACTOR, NodeStatus, Ping, Pong, StatusRequest
from actors._limits import describe
from actors._logging import LOG_FORMATS, configure_logging, parse_level
from actors._running import SignalStop
from actors._system import ActorSystem
from actors.errors import ActorError, AskTimeoutError, DeadLetterError, NodeError
from transport import AuthenticationError, HandshakeError, TransportError, parse_uri

__all__ = [
    "EXIT_BAD_INPUT",
    "CommandError",
    "build_parser",
    "format_status",
    "load_factory",
    "main",
    "reference_markdown",
    "write_reference",
]

logger = logging.getLogger(__name__)

EXIT_BAD_INPUT = 2
"""Exit status for bad input: a bad module, uri, cookie, port or option."""
PROG = "masterless"


class CommandError(Exception):
    """A problem with the command's input; printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    # argparse's own errors (unknown option, missing argument) are one line too, pointing at
    # --help instead of printing the usage; the status is 2 as for every other bad input.
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# --- the parser -------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The ``masterless`` argument parser, with the ``run``, ``status`` and ``ping`` commands.

    Returns:
        The parser; ``parse_args`` gives a namespace whose ``handler`` runs the command.
    """
    parser = _Parser(
        prog=PROG,
        description="Run and inspect masterless actor nodes.",
        epilog="Run 'masterless COMMAND --help' for a command's options.",
    )
    commands = parser.add_subparsers(
        title="commands", dest="command", required=True, metavar="COMMAND", parser_class=_Parser
    )

    run = commands.add_parser(
        "run",
        help="run a node hosting the actors a factory spawns, until SIGINT/SIGTERM",
        description=(
            "Start an actor system, call FACTORY(system) (a function or coroutine function) to "
            "spawn its actors, and serve until SIGINT or SIGTERM; then stop gracefully (every "
            "actor's on_stop runs, peers see a clean leave) and exit with status 0."
        ),
    )
    run.add_argument(
        "factory",
        metavar="MODULE:FACTORY",
        help="the factory to call, e.g. myapp.nodes:worker (the current directory is importable)",
    )
    run.add_argument("--id", required=True, help="this node's id, unique in the mesh")
    run.add_argument(
        "--host",
        default="127.0.0.1",
        metavar="H",
        help="address to listen on (default: %(default)s)",
    )
    run.add_argument(
        "--port",
        type=_port,
        default=0,
        metavar="P",
        help="port to listen on; 0 picks a free one (default: 0)",
    )
    run.add_argument(
        "--seed",
        action="append",
        default=[],
        metavar="URI",
        help="uri of a cluster member to join through at start (repeatable); re-dialed with "
        "back-off until it answers",
    )
    run.add_argument(
        "--advertise",
        metavar="URI",
        help="uri announced to peers (NAT, 0.0.0.0 binds); default: the bound address",
    )
    _add_security_options(run)
    run.add_argument(
        "--insecure",
        action="store_true",
        help="allow an open mesh (no cookie) on a non-loopback --host",
    )
    run.add_argument(
        "--log-level",
        default="info",
        type=_level,
        metavar="L",
        help="debug, info, warning, error or critical (default: %(default)s)",
    )
    run.add_argument(
        "--log-format",
        default="text",
        choices=LOG_FORMATS,
        help="text, or json: one JSON object per line (default: %(default)s)",
    )
    run.add_argument(
        "--metrics-port",
        type=_port,
        metavar="P",
        help="serve Prometheus metrics on port P at /metrics (needs the metrics extra)",
    )
    run.add_argument(
        "--metrics-host",
        default="127.0.0.1",
        metavar="H",
        help="address of the metrics endpoint (default: %(default)s)",
    )
    run.set_defaults(handler=_run_command)

    status = commands.add_parser(
        "status",
        help="print a running node's members, peers, actors, groups and counters",
        description=(
            "Connect to the node at URI (as a short-lived node of its own), ask its control "
            "actor for a snapshot, print it and disconnect."
        ),
    )
    status.add_argument("uri", metavar="URI", help="the node's uri, e.g. tcp://10.0.0.5:9000")
    _add_security_options(status)
    status.add_argument("--json", action="store_true", help="print the snapshot as JSON")
    status.add_argument(
        "--timeout", type=_seconds, default=5.0, help="seconds to wait (default: %(default)s)"
    )
    status.set_defaults(handler=_status_command)

    ping = commands.add_parser(
        "ping",
        help="print round-trip times to a running node",
        description=(
            "Connect to the node at URI, ask its control actor N times, print each round-trip "
            "time and then the minimum, median and maximum."
        ),
    )
    ping.add_argument("uri", metavar="URI", help="the node's uri, e.g. tcp://10.0.0.5:9000")
    ping.add_argument(
        "-n", "--count", type=_positive, default=5, help="how many pings (default: %(default)s)"
    )
    ping.add_argument(
        "--interval",
        type=_seconds,
        default=0.2,
        help="seconds between pings (default: %(default)s)",
    )
    _add_security_options(ping)
    ping.add_argument(
        "--timeout", type=_seconds, default=5.0, help="seconds to wait (default: %(default)s)"
    )
    ping.set_defaults(handler=_ping_command)
    return parser


def _add_security_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("security")
    group.add_argument(
        "--cookie-file",
        metavar="F",
        help="file holding the mesh's shared secret (surrounding whitespace is ignored); "
        "default: $MASTERLESS_COOKIE_FILE, else no cookie",
    )
    group.add_argument("--tls-cert", metavar="C", help="this node's certificate (PEM)")
    group.add_argument("--tls-key", metavar="K", help="the certificate's private key (PEM)")
    group.add_argument(
        "--tls-ca", metavar="A", help="CA certificate(s) that sign the mesh's nodes (PEM)"
    )


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be in 0..65535, not {value}")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, not {text}")
    return value


def _level(text: str) -> str:
    try:
        parse_level(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


# --- entry point -------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``masterless`` command.

    Args:
        argv: The arguments after the program name; ``sys.argv[1:]`` when None.

    Returns:
        The exit status: 0 on success, 2 for bad input (the reason printed on stderr).
    """
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except CommandError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return 130


# --- shared input checks -----------------------------------------------------------------------


def _read_cookie(path: str | None) -> bytes | None:
    path = path or os.environ.get("MASTERLESS_COOKIE_FILE") or None
    if path is None:
        return None
    try:
        cookie = Path(path).read_bytes().strip()
    except OSError as exc:
        raise CommandError(f"cannot read cookie file {path}: {exc.strerror or exc}") from None
    if not cookie:
        raise CommandError(f"cookie file {path} is empty")
    return cookie


def _tls_contexts(args: argparse.Namespace) -> tuple[ssl.SSLContext | None, ssl.SSLContext | None]:
    """The listening and dialing TLS contexts (mutual TLS against ``--tls-ca``)."""
    given = [args.tls_cert, args.tls_key, args.tls_ca]
    if not any(given):
        return None, None
    if not all(given):
        raise CommandError("TLS needs all three of --tls-cert, --tls-key and --tls-ca")
    try:
        listen = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=args.tls_ca)
        listen.load_cert_chain(args.tls_cert, args.tls_key)
        listen.verify_mode = ssl.CERT_REQUIRED
        dial = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=args.tls_ca)
        dial.load_cert_chain(args.tls_cert, args.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise CommandError(f"cannot load the TLS certificate, key or CA: {exc}") from None
    return listen, dial


def _check_uri(uri: str, what: str) -> str:
    try:
        parse_uri(uri)
    except TransportError as exc:
        raise CommandError(f"bad {what}: {exc}") from None
    return uri


def _handshake_error(uri: str, cause: BaseException) -> CommandError:
    if isinstance(cause, AuthenticationError):
        return CommandError(f"authentication with {uri} failed: {cause}")
    return CommandError(f"handshake with {uri} failed: {cause}")


def _connect_error(uri: str, exc: BaseException) -> CommandError:
    cause = exc.__cause__ if isinstance(exc, NodeError) and exc.__cause__ else exc
    if isinstance(cause, ssl.SSLError | HandshakeError):
        return _handshake_error(uri, cause)
    os_error = cause.__cause__
    if isinstance(os_error, OSError) and os_error.errno:
        return CommandError(f"cannot connect to {uri}: {os.strerror(os_error.errno)}")
    return CommandError(str(cause))


# --- masterless run ----------------------------------------------------------------------------


def load_factory(spec: str) -> Callable[[ActorSystem], Any]:
    """Import ``MODULE:FACTORY`` and return the callable.

    The current directory is put first on ``sys.path``, as ``python -m`` does, so a module
    beside the command is found.

    Args:
        spec: ``package.module:function`` (the function may be a dotted attribute path).

    Returns:
        The factory.

    Raises:
        CommandError: The spec is malformed, the module does not import, or the attribute is
            missing or not callable.
    """
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise CommandError(
            f"factory must be MODULE:FACTORY (e.g. myapp.nodes:worker), not {spec!r}"
        )
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise CommandError(f"cannot import module {module_name!r}: not found") from None
        raise CommandError(
            f"importing module {module_name!r} failed: ModuleNotFoundError: {exc}"
        ) from None
    except Exception as exc:
        raise CommandError(
            f"importing module {module_name!r} failed: {type(exc).__name__}: {exc}"
        ) from None
    target: Any = module
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise CommandError(f"module {module_name!r} has no attribute {attribute!r}") from None
    if not callable(target):
        raise CommandError(f"{spec} is not callable (it is a {type(target).__name__})")
    factory: Callable[[ActorSystem], Any] = target
    return factory


def _run_command(args: argparse.Namespace) -> int:
    configure_logging(args.log_level, args.log_format, node=args.id)
    factory = load_factory(args.factory)
    cookie = _read_cookie(args.cookie_file)
    listen_ssl, dial_ssl = _tls_contexts(args)
    seeds = [_check_uri(uri, "--seed") for uri in args.seed]
    if args.advertise is not None:
        _check_uri(args.advertise, "--advertise")
    try:
        system = ActorSystem(
            args.id,
            host=args.host,
            port=args.port,
            cookie=cookie,
            ssl=listen_ssl,
            dial_ssl=dial_ssl,
            advertise=args.advertise,
            insecure=args.insecure,
            # Always in the cluster, so that other nodes can join through this one.
            cluster=True,
            seeds=seeds,
        )
    except (TransportError, ActorError) as exc:
        raise CommandError(str(exc)) from None
    return asyncio.run(_serve(system, factory, args))


async def _serve(
    system: ActorSystem, factory: Callable[[ActorSystem], Any], args: argparse.Namespace
) -> int:
    # Signals are caught from the start: a SIGTERM during start-up still stops cleanly.
    with SignalStop() as stop:
        metrics = None
        failure: list[CommandError] = []

        def seed_refused(uri: str, error: HandshakeError) -> None:
            # The cluster re-dials a seed that refused; for the command a refusal (a wrong
            # cookie, a TLS mismatch) is bad input, so it ends the node.
            if not failure:
                failure.append(_handshake_error(uri, error))
            stop.set()

        system.node.on("seed_refused", seed_refused)
        try:
            try:
                await system.start()
            except NodeError as exc:
                raise CommandError(str(exc.__cause__ or exc)) from None
            if args.metrics_port is not None:
                metrics = _start_metrics(system, args.metrics_host, args.metrics_port)
            await _call_factory(factory, system, args.factory)
            logger.info(
                "node %s running at %s with actors %s",
                system.id,
                system.info(),
                ", ".join(system.actors) or "(none)",
            )
            await stop.wait()
            if failure:
                raise failure[0]
        finally:
            await system.close()
            if metrics is not None:
                metrics.close()
    logger.info("node %s stopped", system.id)
    return 0


def _start_metrics(system: ActorSystem, host: str, port: int) -> Any:
    from actors._metrics import MetricsUnavailableError, serve_metrics

    try:
        return serve_metrics(system, host, port)
    except MetricsUnavailableError as exc:
        raise CommandError(str(exc)) from None
    except OSError as exc:
        raise CommandError(
            f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}"
        ) from None


async def _call_factory(
    factory: Callable[[ActorSystem], Any], system: ActorSystem, spec: str
) -> None:
    try:
        result = factory(system)
        if inspect.isawaitable(result):
            await result
    except CommandError:
        raise
    except Exception as exc:
        logger.debug("factory %s failed", spec, exc_info=True)
        raise CommandError(f"factory {spec} failed: {type(exc).__name__}: {exc}") from None


# --- masterless status / ping -------------------------------------------------------------------


async def _client(args: argparse.Namespace, work: Callable[[ActorSystem, str], Any]) -> int:
    uri = _check_uri(args.uri, "uri")
    cookie = _read_cookie(args.cookie_file)
    listen_ssl, dial_ssl = _tls_contexts(args)
    system = ActorSystem(
        f"masterless-cli-{secrets.token_hex(4)}",
        cookie=cookie,
        ssl=listen_ssl,
        dial_ssl=dial_ssl,
        handshake_timeout=args.timeout or 5.0,
    )
    async with system:
        try:
            peer = await system.connect(uri)
        except NodeError as exc:
            raise _connect_error(uri, exc) from None
        try:
            result: int = await work(system, peer)
        except DeadLetterError as exc:
            if exc.reason == "unknown_actor":
                raise CommandError(
                    f"{uri} ({peer}) has no control actor: it runs a masterless version without one"
                ) from None
            raise CommandError(f"{uri} ({peer}) did not answer: {exc}") from None
        except AskTimeoutError:
            raise CommandError(f"{uri} ({peer}) did not answer within {args.timeout} s") from None
        except ActorError as exc:
            raise CommandError(f"{uri} ({peer}): {exc}") from None
        return result


def _status_command(args: argparse.Namespace) -> int:
    async def work(system: ActorSystem, peer: str) -> int:
        reply = await system.ask(peer, CONTROL_ACTOR, StatusRequest(), timeout=args.timeout)
        if not isinstance(reply, NodeStatus):
            raise CommandError(f"{args.uri} answered with {type(reply).__name__}, not a status")
        if args.json:
            print(json.dumps(reply.model_dump(mode="json"), indent=2))
        else:
            print(format_status(reply))
        return 0

    return asyncio.run(_client(args, work))


def format_status(status: NodeStatus) -> str:
    """The text ``masterless status`` prints for a snapshot.

    Args:
        status: The snapshot.

    Returns:
        Several lines, without a trailing newline.
    """

    def figure(value: int | None) -> str:
        return "-" if value is None else str(value)

    lines = [
        f"node:         {status.node_id}",
        f"uri:          {status.uri or '-'}",
        f"members:      {len(status.members)}",
    ]
    width = max([20, *(len(m.id) for m in status.members)])
    lines += [f"  {m.id:<{width}} {m.status:<8} {m.uri or '-'}" for m in status.members]
    lines.append(f"peers:        {len(status.peers)}")
    width = max([20, *(len(p.id) for p in status.peer_stats)])
    if status.peer_stats:
        lines.append(
            f"  {'peer':<{width}} {'up':<3} {'pkts in':>9} {'pkts out':>9} {'bytes in':>11}"
            f" {'bytes out':>11} {'dropped':>8} {'queued':>7} {'reconn':>7}"
        )
    for p in status.peer_stats:
        lines.append(
            f"  {p.id:<{width}} {'yes' if p.connected else 'no':<3}"
            f" {figure(p.packets_in):>9} {figure(p.packets_out):>9}"
            f" {figure(p.bytes_in):>11} {figure(p.bytes_out):>11} {figure(p.dropped):>8}"
            f" {figure(p.queued):>7} {figure(p.reconnects):>7}"
        )
    lines.append(f"actors:       {len(status.actors)}")
    width = max([20, *(len(a.name) for a in status.actors)])
    if status.actors:
        lines.append(
            f"  {'actor':<{width}} {'handled':>9} {'failed':>9} {'restarts':>9} {'mailbox':>9}"
        )
    for a in status.actors:
        lines.append(
            f"  {a.name:<{width}} {figure(a.handled):>9} {figure(a.failed):>9}"
            f" {figure(a.restarts):>9} {figure(a.mailbox):>9}"
        )
    lines.append(f"groups:       {len(status.groups)}")
    lines += [f"  {name}: {', '.join(refs) or '-'}" for name, refs in status.groups.items()]
    lines.append(f"pending asks: {status.pending_asks}")
    dead = ", ".join(f"{reason}={count}" for reason, count in status.dead_letters.items())
    total = sum(status.dead_letters.values())
    lines.append(f"dead letters: {total}" + (f" ({dead})" if dead else ""))
    return "\n".join(lines)


def _ping_command(args: argparse.Namespace) -> int:
    async def work(system: ActorSystem, peer: str) -> int:
        loop = asyncio.get_running_loop()
        times: list[float] = []
        for seq in range(1, args.count + 1):
            if seq > 1 and args.interval:
                await asyncio.sleep(args.interval)
            started = loop.time()
            reply = await system.ask(peer, CONTROL_ACTOR, Ping(seq=seq), timeout=args.timeout)
            elapsed = (loop.time() - started) * 1000
            if not isinstance(reply, Pong) or reply.seq != seq:
                raise CommandError(f"{args.uri} answered ping {seq} with {describe(reply)}")
            times.append(elapsed)
            print(f"reply from {reply.node_id}: seq={seq} time={elapsed:.3f} ms", flush=True)
        print(
            f"{len(times)} pings to {peer}: min {min(times):.3f} ms, "
            f"median {statistics.median(times):.3f} ms, max {max(times):.3f} ms"
        )
        return 0

    return asyncio.run(_client(args, work))


# --- the reference page -----------------------------------------------------------------------

REFERENCE_WIDTH = 100
"""Line width of the help text on the reference page (independent of the terminal)."""


def reference_markdown() -> str:
    """The CLI reference page (``docs/cli.md``), rendered from `build_parser`.

    Returns:
        Markdown text: the help of ``masterless`` and of each of its commands.
    """
    parser = build_parser()
    sections = [
        "# CLI reference",
        "",
        "<!-- Generated from the argparse parser in actors/_cli.py by write_reference(); "
        "tests/cli/test_cli_reference.py fails when this page is stale. Do not edit by hand. -->",
        "",
        "The `masterless` command (also `python -m actors`) is installed with the package. "
        "The [running nodes guide](guides/running.md) shows it at work; this page is each "
        "command's `--help`.",
    ]
    for name, command in [("masterless", parser), *_commands(parser).items()]:
        title = name if command is parser else f"masterless {name}"
        sections += ["", f"## {title}", "", "```text", _help_text(command), "```"]
    return "\n".join(sections) + "\n"


def write_reference(path: str | os.PathLike[str] = "docs/cli.md") -> None:
    """Write `reference_markdown` to ``path`` (run from the repository root).

    Args:
        path: The page to write.
    """
    Path(path).write_text(reference_markdown(), encoding="utf-8")


def _commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _help_text(parser: argparse.ArgumentParser) -> str:
    def fixed_width(prog: str) -> argparse.HelpFormatter:
        return argparse.HelpFormatter(prog, width=REFERENCE_WIDTH)

    parser.formatter_class = fixed_width
    return parser.format_help().rstrip()
