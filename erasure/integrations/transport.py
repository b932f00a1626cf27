"""Outbound HTTP for callbacks and ticket comments, behind a small Protocol so the domain code
never imports an HTTP client. The real one uses `requests` with timeouts and no redirects (a
redirect would let a receiver point our signed POST at another host), and an SSRF guard: it
refuses to connect to private, loopback, link-local, metadata or otherwise non-public addresses
unless a network is explicitly allowed. The guard checks the address each socket actually
connects to, before a byte is sent, so a name that is re-pointed after it was checked (DNS
rebinding) is still refused."""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from http.cookiejar import DefaultCookiePolicy
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NewConnectionError

#: (connect, read): a receiver that does not answer costs an attempt this long at most. The
#: settings `callback_connect_timeout_s` and `callback_read_timeout_s` override them.
TIMEOUT_S = (3.0, 10.0)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Cloud metadata services (besides 169.254.169.254, already link-local).
METADATA = (
    ipaddress.ip_network("fd00:ec2::254/128"),  # AWS IMDS over IPv6
    ipaddress.ip_network("100.100.100.200/32"),  # Alibaba Cloud
)

#: IPv6 forms whose last 32 bits are the IPv4 address actually reached: IPv4-mapped, IPv4-compatible
#: (deprecated, still routed by some stacks), IPv4-translated (RFC 2765) and the NAT64 well-known
#: prefix (RFC 6052, where a gateway connects to the IPv4 address). 6to4 (2002::/16) embeds its
#: IPv4 address in bits 16-48 (`IPv6Address.sixtofour`).
EMBEDDED_IPV4 = (
    ipaddress.ip_network("::ffff:0:0/96"),
    ipaddress.ip_network("::/96"),
    ipaddress.ip_network("::ffff:0:0:0/96"),
    ipaddress.ip_network("64:ff9b::/96"),
)
#: NAT64 local-use prefix (RFC 8215): where the IPv4 address sits depends on the operator's
#: prefix length, so the destination is unknown: refused unless explicitly allowed.
NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")


def embedded_ipv4(ip: Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, compatible, translated, NAT64, 6to4)."""
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    if ip.sixtofour is not None:
        return ip.sixtofour
    if any(ip in network for network in EMBEDDED_IPV4):
        return ipaddress.IPv4Address(int(ip) & 0xFFFF_FFFF)
    return None


class TransportError(Exception):
    """The request did not get an HTTP answer. The message holds no URL and no body."""


class BlockedAddress(TransportError):
    """The destination is not a public address, and no allowed network holds it."""


@dataclass(frozen=True)
class AddressGuard:
    """Which destination addresses outbound calls may reach: public ones, plus `allowed`
    networks (tests, on-premise receivers: `ERASURE_CALLBACK_ALLOWED_NETWORKS`)."""

    allowed: tuple[Network, ...] = ()

    @classmethod
    def allowing(cls, networks: Iterable[str]) -> AddressGuard:
        return cls(tuple(ipaddress.ip_network(n, strict=False) for n in networks))

    def permits(self, address: str | Address) -> bool:
        """An IPv6 address carrying an IPv4 one is judged by the IPv4 address it reaches
        (`::ffff:10.0.0.1`, `::127.0.0.1`, `64:ff9b::a9fe:a9fe` and `2002:7f00:1::` are private,
        loopback, metadata and loopback), unless the IPv6 address itself is allowed."""
        ip = ipaddress.ip_address(address) if isinstance(address, str) else address
        if any(ip in network for network in self.allowed):
            return True
        if ip in NAT64_LOCAL:
            return False
        reached = embedded_ipv4(ip) or ip
        if reached is not ip and any(reached in network for network in self.allowed):
            return True
        if any(candidate in network for candidate in (ip, reached) for network in METADATA):
            return False
        return reached.is_global and not reached.is_multicast

    def check_host(self, host: str, port: int) -> None:
        """Raise BlockedAddress when `host` is, or resolves to, an address not permitted (every
        address it resolves to must be). A name that does not resolve passes: nothing can be
        sent to it, and the connection-time check stays authoritative."""
        try:
            addresses = {ipaddress.ip_address(host.strip("[]"))}
        except ValueError:
            try:
                infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
            except (socket.gaierror, UnicodeError):
                return
            addresses = {ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos}
        if not all(self.permits(a) for a in addresses):
            raise BlockedAddress("the destination is not a public address")


def destination_of(url: str) -> str:
    """The destination a URL reaches, `scheme://host:port` (default port filled in, lower case):
    what a circuit breaker is kept for. Every callback to one receiver shares it, whichever
    subscription or request it belongs to."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    port = port or (443 if scheme == "https" else 80)
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


class Transport(Protocol):
    def send(self, method: str, url: str, *, body: bytes, headers: Mapping[str, str]) -> int:
        """The HTTP status of the answer; raises TransportError when there was none."""
        ...


_C = TypeVar("_C", bound=HTTPConnection)


def _guarded_connection(base: type[_C], guard: AddressGuard) -> type[_C]:
    class Guarded(base):  # type: ignore[valid-type,misc]
        def _new_conn(self) -> socket.socket:
            sock: socket.socket = super()._new_conn()
            peer = str(sock.getpeername()[0]).split("%")[0]
            if not guard.permits(peer):
                sock.close()
                raise NewConnectionError(self, "BlockedAddress: not a public address")
            return sock

    return Guarded


class _GuardedAdapter(HTTPAdapter):
    def __init__(self, guard: AddressGuard) -> None:
        self._guard = guard
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        guard = self._guard

        class HttpPool(HTTPConnectionPool):
            ConnectionCls = _guarded_connection(HTTPConnection, guard)

        class HttpsPool(HTTPSConnectionPool):
            ConnectionCls = _guarded_connection(HTTPSConnection, guard)

        self.poolmanager.pool_classes_by_scheme = {"http": HttpPool, "https": HttpsPool}


class RequestsTransport:
    """Safe to share between threads: each thread gets its own `requests.Session`."""

    def __init__(
        self, *, timeout_s: tuple[float, float] = TIMEOUT_S, guard: AddressGuard | None = None
    ) -> None:
        self._guard = guard or AddressGuard()
        self._timeout_s = timeout_s
        self._local = threading.local()

    @property
    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.trust_env = False  # no proxy or netrc from the environment
            # A receiver's Set-Cookie must never ride along on the next receiver's callback.
            session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
            for prefix in ("http://", "https://"):
                session.mount(prefix, _GuardedAdapter(self._guard))
            self._local.session = session
        return session

    def send(self, method: str, url: str, *, body: bytes, headers: Mapping[str, str]) -> int:
        parts = urlsplit(url)
        self._guard.check_host(
            parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
        )
        try:
            response = self._session.request(
                method,
                url,
                data=body,
                headers=dict(headers),
                timeout=self._timeout_s,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            raise TransportError(type(exc).__name__) from None
        response.close()
        return response.status_code
