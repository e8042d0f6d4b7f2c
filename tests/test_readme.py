"""Every Python block in README.md runs as shown (fragments are wrapped in an async main)."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


def runnable(block: str) -> str:
    if "asyncio.run(" in block:
        return block
    return (
        "import asyncio\n\nasync def _main() -> None:\n"
        + textwrap.indent(block, "    ")
        + ("\n\nasyncio.run(_main())\n")
    )


def test_the_readme_has_python_blocks() -> None:
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("block", BLOCKS, ids=[f"block-{i}" for i in range(len(BLOCKS))])
def test_a_readme_block_runs(block: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", runnable(block)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    if "Count(total=41)" in block:
        assert "total=42" in result.stdout
    if "inbox" in block:
        assert "('a', {'hello': 'world'}) ('a', {'to': 'many'})" in result.stdout
