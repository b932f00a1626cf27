"""Raw, read-only HTTP probes for `erasure salesforce check`.

Unlike `Transport`, nothing here classifies or retries: the check wants to see exactly what the org
answered. The one DELETE (`delete`) is the check's request-shape probe, with an id no org holds.
"""

from __future__ import annotations

import enum
import socket
import ssl
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests

from erasure.salesforce.config import OrgSettings, Timeouts


class Failure(enum.StrEnum):
    """Why no HTTP answer came back."""

    CERTIFICATE = "certificate"  # TLS spoken, but the certificate is not trusted
    PLAIN_HTTP = "plain_http"  # the server answers in plain HTTP where https was asked for
    TLS = "tls"  # another TLS handshake failure
    TIMEOUT = "timeout"
    CONNECT = "connect"  # DNS, refused, unreachable


@dataclass(frozen=True)
class ProbeResponse:
    #: None when no HTTP answer came back (DNS, TLS, refused, timeout); see `problem`.
    status: int | None
    body: Any = field(default=None, repr=False)
    problem: str | None = None
    failure: Failure | None = None
    retry_after: str | None = None

    @property
    def error_code(self) -> str | None:
        body = self.body
        if isinstance(body, list) and body and isinstance(body[0], dict):
            return body[0].get("errorCode")
        if isinstance(body, dict):
            return body.get("error") or body.get("errorCode")
        return None


class OrgProbe:
    def __init__(self, org: OrgSettings, *, timeouts: Timeouts | None = None) -> None:
        self.org = org
        self._timeouts = (timeouts or Timeouts(connect_s=5.0, read_s=15.0)).as_tuple()
        self._session = requests.Session()
        self._verify: str | bool = org.ca_bundle or True

    def close(self) -> None:
        self._session.close()

    def _send(self, method: str, url: str, **kw: Any) -> ProbeResponse:
        try:
            resp = self._session.request(
                method, url, timeout=self._timeouts, verify=self._verify, **kw
            )
        except requests.exceptions.SSLError as exc:
            return self._tls_problem(url, exc)
        except requests.Timeout:
            return ProbeResponse(None, problem="timed out", failure=Failure.TIMEOUT)
        except requests.ConnectionError:
            return ProbeResponse(None, problem="could not connect", failure=Failure.CONNECT)
        try:
            body = resp.json()
        except ValueError:
            body = None
        return ProbeResponse(resp.status_code, body, retry_after=resp.headers.get("Retry-After"))

    def _tls_problem(self, url: str, exc: BaseException) -> ProbeResponse:
        """Name a failed handshake: an untrusted certificate, or no TLS at all."""
        untrusted = _find_cause(exc, ssl.SSLCertVerificationError)
        if untrusted is not None:
            reason = getattr(untrusted, "verify_message", None) or "untrusted"
            return ProbeResponse(
                None,
                problem=f"TLS certificate could not be verified ({reason})",
                failure=Failure.CERTIFICATE,
            )
        if _speaks_plain_http(url, timeout_s=self._timeouts[0]):
            return ProbeResponse(
                None,
                problem="the server answers in plain HTTP, not HTTPS",
                failure=Failure.PLAIN_HTTP,
            )
        return ProbeResponse(None, problem="the TLS handshake failed", failure=Failure.TLS)

    def versions(self) -> ProbeResponse:
        """`GET /services/data/`: served without a token by every org."""
        return self._send("GET", f"{self.org.my_domain_url}/services/data/")

    def token(self, client_id: str, client_secret: str) -> ProbeResponse:
        return self._send(
            "POST",
            self.org.token_url,
            data={
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": client_secret,
            },
        )

    def delete(
        self,
        url: str,
        access_token: str,
        *,
        params: dict[str, str] | None = None,
        json_body: dict[str, list[str]] | None = None,
    ) -> ProbeResponse:
        """One DELETE, ids in `params` or in `json_body`, as the client would send them."""
        return self._send(
            "DELETE",
            url,
            params=params,
            json=json_body,
            headers={"Authorization": f"Bearer {access_token}"},
        )

    def get(
        self, url: str, access_token: str, params: dict[str, str] | None = None
    ) -> ProbeResponse:
        return self._send(
            "GET", url, params=params, headers={"Authorization": f"Bearer {access_token}"}
        )


def _find_cause(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    """`exc` or an exception it wraps (requests and urllib3 nest them) of type `kind`."""
    seen: set[int] = set()
    pending: list[object] = [exc]
    while pending:
        current = pending.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, kind):
            return current
        pending += [current.__cause__, current.__context__, getattr(current, "reason", None)]
        pending += list(current.args)
    return None


def _speaks_plain_http(url: str, *, timeout_s: float) -> bool:
    """Whether the server at `url`'s host and port answers a plain HTTP request: OpenSSL's
    handshake error for that case differs between versions, the server's answer does not."""
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or 443
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as conn:
            conn.sendall(f"HEAD / HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
            return conn.recv(5) == b"HTTP/"
    except OSError:
        return False
