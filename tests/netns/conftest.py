"""The multi-host suite: the ``netns`` marker."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "netns: hosts in network namespaces (needs root, ip and iptables)"
    )
