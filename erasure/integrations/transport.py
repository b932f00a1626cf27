"""Outbound HTTP for callbacks and ticket comments, behind a small Protocol so the domain code
never imports an HTTP client. The real one uses `requests` with timeouts and no redirects (a
redirect would let a receiver point our signed POST at another host)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import requests

TIMEOUT_S = (5.0, 15.0)  # connect, read


class TransportError(Exception):
    """The request did not get an HTTP answer. The message holds no URL and no body."""


class Transport(Protocol):
    def send(self, method: str, url: str, *, body: bytes, headers: Mapping[str, str]) -> int:
        """The HTTP status of the answer; raises TransportError when there was none."""
        ...


class RequestsTransport:
    def __init__(self, *, timeout_s: tuple[float, float] = TIMEOUT_S) -> None:
        self._session = requests.Session()
        self._session.trust_env = False  # no proxy or netrc from the environment
        self._timeout_s = timeout_s

    def send(self, method: str, url: str, *, body: bytes, headers: Mapping[str, str]) -> int:
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
