"""The public surface of the actors package: façade, exceptions, typing marker, logging."""

from __future__ import annotations

import inspect
import logging
import types
from pathlib import Path

import actors
import actors.errors


def test_all_is_complete_and_importable() -> None:
    exported = set(actors.__all__)
    assert len(exported) == len(actors.__all__), "duplicates in __all__"
    for name in actors.__all__:
        assert getattr(actors, name) is not None, name
    public = {
        name
        for name, value in vars(actors).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and name not in {"annotations", "logging"}
    }
    assert public == exported
    namespace: dict[str, object] = {}
    exec("from actors import *", namespace)
    assert exported <= set(namespace)


def test_every_error_is_exported_and_rooted_at_actor_error() -> None:
    errors = {
        name: value
        for name, value in vars(actors.errors).items()
        if inspect.isclass(value) and issubclass(value, Exception)
    }
    assert set(errors) == set(actors.errors.__all__)
    for name, error in errors.items():
        assert issubclass(error, actors.ActorError), name
        assert getattr(actors, name) is error, f"{name} missing from the façade"
        assert name in (actors.errors.__doc__ or ""), f"{name} missing from the drawn tree"
    assert issubclass(actors.AskTimeoutError, TimeoutError)


def test_public_names_have_docstrings() -> None:
    for name in actors.__all__:
        value = getattr(actors, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert inspect.getdoc(value), f"{name} has no docstring"


def test_package_is_typed_and_silent_by_default() -> None:
    assert (Path(actors.__file__).parent / "py.typed").is_file()
    handlers = logging.getLogger("actors").handlers
    assert any(isinstance(handler, logging.NullHandler) for handler in handlers)
