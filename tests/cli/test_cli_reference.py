"""docs/cli.md is the parser's help, rendered by actors._cli.reference_markdown()."""

from __future__ import annotations

from cli_helpers import ROOT, masterless

from actors._cli import REFERENCE_WIDTH, _commands, build_parser, reference_markdown

PAGE = ROOT / "docs" / "cli.md"
REGENERATE = "python -c 'from actors._cli import write_reference; write_reference()'"


def test_the_reference_page_is_up_to_date() -> None:
    assert PAGE.read_text(encoding="utf-8") == reference_markdown(), (
        f"docs/cli.md is stale: regenerate it from the repository root with {REGENERATE}"
    )


def test_the_page_covers_every_command_and_option() -> None:
    page = reference_markdown()
    for command in ("run", "status", "ping"):
        assert f"## masterless {command}" in page
    run = _commands(build_parser())["run"]
    options = {option for action in run._actions for option in action.option_strings}
    assert {"--seed", "--cookie-file", "--tls-ca", "--metrics-port", "--log-format"} <= options
    for option in options:
        assert option in page, option


def test_the_page_matches_what_the_command_prints() -> None:
    # The page renders at a fixed width; argparse wraps at $COLUMNS - 2.
    printed = masterless("run", "--help", COLUMNS=str(REFERENCE_WIDTH + 2)).stdout
    assert printed.strip() in reference_markdown()
