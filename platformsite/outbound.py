"""Outbound HTTP to addresses users give (webhooks): no loopback, link-local or private targets (SSRF).

A URL a caller registers must not make the platform reach what only the platform can reach: its
own loopback services, the cloud metadata endpoint (169.254.169.254), the private network behind
it.  Two checks:

- when the URL is written, :func:`refused_host` refuses a literal address of those ranges and
  ``localhost`` names (a clear 400 at once);
- when connecting, :class:`GuardedBackend` resolves the host once, refuses the connection if any
  of its addresses is not a global unicast address, and connects to the very address it checked,
  so a name that resolved to a public address when checked cannot resolve to a private one for
  the connection (DNS rebinding).  TLS still verifies the certificate against the host name.

``PLATFORM_ALLOW_PRIVATE_TARGETS=true`` lifts both (a platform whose receivers live on its own
private network, the test suite's local receivers).  The setting is read at each connection.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import httpcore
import httpx
from django.conf import settings

SETTING = "PLATFORM_ALLOW_PRIVATE_TARGETS"


def private_allowed() -> bool:
    return bool(getattr(settings, SETTING, False))


def refused_address(address: str) -> str | None:
    """Why ``address`` (an IP literal) is no allowed target, or None when it is a global address."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return f"{address!r} is not an IP address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return f"{ip} is a loopback address"
    if ip.is_link_local:
        return f"{ip} is a link-local address"
    if ip.is_multicast or ip.is_unspecified or ip.is_reserved or not ip.is_global:
        return f"{ip} is a private or reserved address"
    return None


def refused_host(host: str) -> str | None:
    """Why a URL's ``host`` is refused as written (an address or a localhost name), before any lookup."""
    if private_allowed():
        return None
    name = host.strip("[]").rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return f"{host} is a loopback name"
    try:
        ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        try:  # the legacy IPv4 forms resolvers still take: 2130706433, 0x7f000001, 127.1
            name = socket.inet_ntoa(socket.inet_aton(name))
        except (OSError, UnicodeError, ValueError):
            return None  # a name: checked when connecting
    return refused_address(name)


def checked_address(host: str, port: int) -> str:
    """The address to connect to for ``host``: resolved once, every answer checked."""
    try:
        answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
    addresses = [str(answer[4][0]) for answer in answers]
    for address in addresses:
        reason = refused_address(address)
        if reason is not None:
            why = f"{host} resolves to {address}; {reason}"
            raise httpcore.ConnectError(f"target refused: {why} ({SETTING} is off)")
    if not addresses:
        raise httpcore.ConnectError(f"cannot resolve {host}")
    return addresses[0]


class GuardedBackend(httpcore.SyncBackend):
    """httpcore's socket backend, connecting only to checked addresses (unless allowed)."""

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        if not private_allowed():
            host = checked_address(host, port)
        return super().connect_tcp(host, port, timeout, local_address, socket_options)


class GuardedTransport(httpx.HTTPTransport):
    """An httpx transport whose connections go through :class:`GuardedBackend` (no proxy)."""

    def __init__(self) -> None:
        super().__init__()
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(), network_backend=GuardedBackend()
        )


def client(**kwargs: Any) -> httpx.Client:
    """An httpx client for user-given URLs: guarded connections, no environment proxies."""
    return httpx.Client(transport=GuardedTransport(), trust_env=False, **kwargs)
