"""A module whose import fails, for the bad-input tests."""

raise ImportError("broken_module fails to import on purpose")
