"""Every public name of `actors` and `transport` has a docstring for the API reference.

The API pages render each package's ``__all__`` with mkdocstrings; a name without a docstring
would show up as a bare signature. This test reads the packages the way mkdocstrings does
(with griffe, statically), so it also sees docstrings of module attributes such as type
aliases.
"""

from __future__ import annotations

from pathlib import Path

import griffe
import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("transport", "actors")

# Public module attributes (type aliases, a constant) that have no attribute docstring yet.
# Their owners should add one (a string literal right after the assignment) and drop the name.
KNOWN_UNDOCUMENTED: set[str] = set()


def _undocumented(package: str) -> set[str]:
    module = griffe.load(package, search_paths=[str(ROOT)], resolve_aliases=True)
    exports = module.exports
    assert exports, f"{package} has no __all__"
    missing: set[str] = set()
    for name in exports:
        obj = module[name]
        target = obj.final_target if obj.is_alias else obj
        if not target.docstring:
            missing.add(f"{package}.{name}")
        if target.is_class:
            for member_name, member in target.members.items():
                if member_name.startswith("_") or member.is_alias or member.inherited:
                    continue
                if member.is_function and not member.docstring:
                    missing.add(f"{package}.{name}.{member_name}")
    return missing


@pytest.mark.parametrize("package", PACKAGES)
def test_public_names_have_docstrings(package: str) -> None:
    missing = _undocumented(package) - KNOWN_UNDOCUMENTED
    assert not missing, f"public names without a docstring: {sorted(missing)}"
