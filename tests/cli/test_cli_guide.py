"""The masterless commands shown on docs/guides/running.md are valid commands.

The flows they show run for real elsewhere in tests/cli (run and a signal, status, ping, the
worker pool through ``make demo-cluster``'s driver); here every ``$ masterless ...`` line of the
guide's console blocks must parse, and its factory (for ``run``) must load.
"""

from __future__ import annotations

import shlex

import pytest
from cli_helpers import ROOT

from actors._cli import build_parser, load_factory

GUIDE = ROOT / "docs" / "guides" / "running.md"


def guide_commands() -> list[str]:
    commands, in_console = [], False
    for line in GUIDE.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_console = line.startswith("```console")
        elif in_console and line.startswith("$ masterless "):
            commands.append(line[2:])
    return commands


def test_the_guide_shows_each_command() -> None:
    shown = {command.split()[1] for command in guide_commands()}
    assert shown == {"run", "status", "ping"}


@pytest.mark.parametrize("command", guide_commands())
def test_every_masterless_command_on_the_guide_is_valid(
    command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = build_parser().parse_args(shlex.split(command)[1:])
    if args.command == "run":
        monkeypatch.chdir(ROOT)
        assert callable(load_factory(args.factory))
