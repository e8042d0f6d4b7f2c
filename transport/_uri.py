"""Node addresses: ``tcp://host:port`` uris."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from .errors import ConfigurationError

__all__ = ["format_uri", "is_loopback", "parse_uri"]


def parse_uri(uri: str) -> tuple[str, int]:
    """Split ``tcp://host:port`` (IPv6 as ``tcp://[::1]:port``) into host and port.

    Raises:
        ConfigurationError: the uri is not of that form.
    """
    try:
        parts = urlsplit(uri)
        port = parts.port
    except (ValueError, TypeError, AttributeError) as exc:
        raise ConfigurationError(f"invalid uri {uri!r}: {exc}") from exc
    if parts.scheme != "tcp" or not parts.hostname or port is None:
        raise ConfigurationError(f"invalid uri {uri!r}: expected tcp://host:port")
    return parts.hostname, port


def format_uri(host: str, port: int) -> str:
    return f"tcp://[{host}]:{port}" if ":" in host else f"tcp://{host}:{port}"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
