"""Raw, read-only HTTP probes for `erasure salesforce check`.

Unlike `Transport`, nothing here classifies or retries: the check wants to see exactly what the org
answered. No probe ever sends a DELETE.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import requests

from erasure.salesforce.config import OrgSettings, Timeouts


@dataclass(frozen=True)
class ProbeResponse:
    #: None when no HTTP answer came back (DNS, TLS, refused, timeout); see `problem`.
    status: int | None
    body: Any = field(default=None, repr=False)
    problem: str | None = None

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
        except requests.exceptions.SSLError:
            return ProbeResponse(None, problem="TLS certificate could not be verified")
        except requests.Timeout:
            return ProbeResponse(None, problem="timed out")
        except requests.ConnectionError:
            return ProbeResponse(None, problem="could not connect")
        try:
            body = resp.json()
        except ValueError:
            body = None
        return ProbeResponse(resp.status_code, body)

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

    def get(
        self, url: str, access_token: str, params: dict[str, str] | None = None
    ) -> ProbeResponse:
        return self._send(
            "GET", url, params=params, headers={"Authorization": f"Bearer {access_token}"}
        )
