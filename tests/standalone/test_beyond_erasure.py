"""Beyond erasure in `erasure standalone`, as an officer and an approver use it against the
built-in sandbox: over HTTP an access request is retrieved, its export downloaded through the
expiring link and its certificate of disclosure verified with `erasure audit verify`; a
conversations-only erasure keeps the end user and is certified; on the console the admin places a
legal hold on a subject, sees that subject's erasure stopped before deletion and releases the hold,
after which the erasure completes with a certificate that says it waited. Every process standalone
started is gone afterwards."""

from __future__ import annotations

import hashlib
import re
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from erasure.salesforce.sandbox.seed import demo_phone
from tests.support.standalone import Standalone, running_standalone, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.timeout(900)]

# Demo subjects with no open session or blocking child (every 6th and 9th have one).
ACCESS_SUBJECT = demo_phone(2)  # one conversation of three entries
CONVERSATIONS_SUBJECT = demo_phone(7)  # two conversations
HELD_SUBJECT = demo_phone(4)
MATTER = "Matter 2026-77: Ana Example v. Company"


def _erasure_cli(sa: Standalone, *args: str) -> subprocess.CompletedProcess[str]:
    """`erasure --data-dir ... <args>`, as a person types it (no ERASURE_* set)."""
    return subprocess.run(
        [sys.executable, "-m", "erasure.cli", "--data-dir", str(sa.data_dir), *args],
        env=sa._env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _verify(sa: Standalone, document: bytes, name: str) -> None:
    """Check a certificate offline with the CLI and the standalone's verifier key."""
    path = sa.root / name
    path.write_bytes(document)
    public = _erasure_cli(sa, "signing-keys", "public")
    assert public.returncode == 0, public.stderr
    verified = _erasure_cli(sa, "audit", "verify", str(path), "--public-key", public.stdout.strip())
    assert verified.returncode == 0 and "VERIFIED" in verified.stdout, verified.stdout


def _certificate(sa: Standalone, path: str) -> requests.Response:
    """The certificate once its leaves are checkpointed (409 until then)."""

    def issued() -> requests.Response | None:
        answer = sa.get(path, headers=sa.headers)
        assert answer.status_code in (200, 409), answer.text
        return answer if answer.status_code == 200 else None

    response: requests.Response = wait_for(issued, f"{path} to be issued", timeout=120, every=1)
    return response


def _submit(sa: Standalone, path: str, body: dict[str, Any]) -> str:
    answer = requests.post(f"{sa.url}{path}", json=body, headers=sa.headers, timeout=15)
    assert answer.status_code == 202, answer.text
    return str(answer.json()["id"])


def _status_is(sa: Standalone, path: str, wanted: str) -> dict[str, Any] | None:
    body: dict[str, Any] = sa.get(path, headers=sa.headers).json()
    assert body["status"] not in ("failed", "cancelled", "rejected", "expired"), body
    return body if body["status"] == wanted else None


def _access_request(sa: Standalone) -> str:
    access_id = _submit(
        sa,
        "/v1/access-requests",
        {
            "subject": {"phone": ACCESS_SUBJECT},
            "regulation": "gdpr",
            "reference": {"system": "jira", "id": "PRIV-15"},
        },
    )
    path = f"/v1/access-requests/{access_id}"
    ready = wait_for(lambda: _status_is(sa, path, "ready"), "the export", timeout=180)
    assert (ready["end_users"], ready["conversations"], ready["entries"]) == (1, 1, 3)
    # The link alone downloads it (no API key); an altered link finds nothing.
    exported = requests.get(ready["links"]["export_json"], timeout=15)
    assert exported.status_code == 200 and exported.headers["Cache-Control"] == "no-store"
    assert hashlib.sha256(exported.content).hexdigest() == ready["export_sha256"]
    assert "message 0" in exported.text
    page = requests.get(ready["links"]["export_html"], timeout=15)
    assert page.headers["Content-Type"].startswith("text/html") and "message 2" in page.text
    token = ready["links"]["export_json"].rsplit("/", 1)[1].split("?")[0]
    altered = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    forged = ready["links"]["export_json"].replace(token, altered)
    assert requests.get(forged, timeout=15).status_code == 404

    response = _certificate(sa, f"{path}/certificate")
    document = response.json()
    assert document["type"] == "disclosure-certificate"
    assert document["request"]["disclosure"] == {
        "end_users": 1,
        "conversations": 1,
        "entries": 3,
        "export_sha256": ready["export_sha256"],
    }
    assert "message 0" not in response.text and ACCESS_SUBJECT not in response.text
    _verify(sa, response.content, "disclosure-certificate.json")
    return access_id


def _conversations_erasure(sa: Standalone) -> None:
    request_id = _submit(
        sa,
        "/v1/erasure-requests",
        {
            "subject": {"phone": CONVERSATIONS_SUBJECT},
            "regulation": "gdpr",
            "scope": "conversations",
        },
    )
    body = sa.wait_final(request_id)
    assert body["status"] == "completed", (body, sa.output())
    assert body["scope"] == "conversations" and body["targets"] == {"deleted": 2}, body
    response = _certificate(sa, f"/v1/erasure-requests/{request_id}/certificate")
    document = response.json()
    assert document["request"]["scope"] == "conversations"
    assert [t["kind"] for t in document["targets"]] == ["conversation", "conversation"]
    assert all(t["read_back"] == "absent" for t in document["targets"])
    assert CONVERSATIONS_SUBJECT not in response.text
    _verify(sa, response.content, "conversations-certificate.json")


class Console:
    """The web console over HTTP, signed in as the standalone's bootstrap admin."""

    def __init__(self, sa: Standalone) -> None:
        self.sa = sa
        self.http = requests.Session()
        login = dict(
            line.split(": ", 1)
            for line in (sa.data_dir / "admin-console-login").read_text().splitlines()
        )
        self.csrf = self._csrf(self.page("/ui/sign-in"))
        signed = self.post("/ui/sign-in", {"email": login["email"], "password": login["password"]})
        assert signed.url.rstrip("/").endswith("/ui"), signed.url
        self.csrf = self._csrf(self.page("/ui/"))

    @staticmethod
    def _csrf(html: str) -> str:
        match = re.search(r'name="csrf_token" value="([^"]+)"', html)
        assert match, "no CSRF token on the page"
        return match.group(1)

    def page(self, path: str) -> str:
        answer = self.http.get(f"{self.sa.url}{path}", timeout=15)
        assert answer.status_code == 200, (path, answer.status_code)
        return answer.text

    def post(self, path: str, form: dict[str, str]) -> requests.Response:
        answer = self.http.post(
            f"{self.sa.url}{path}", data={"csrf_token": self.csrf, **form}, timeout=15
        )
        assert answer.status_code == 200, (path, answer.status_code, answer.text[-2000:])
        return answer

    def close(self) -> None:
        self.http.close()


def _held_erasure(sa: Standalone, console: Console) -> None:
    ends_on = (datetime.now(UTC) + timedelta(days=30)).date().isoformat()
    placed = console.post(
        "/ui/holds",
        {
            "scope": "subject",
            "kind": "phone",
            "value": HELD_SUBJECT,
            "reason": MATTER,
            "ends_on": ends_on,
        },
    )
    assert "Legal hold placed." in placed.text and HELD_SUBJECT not in placed.text
    [hold_id] = re.findall(r'<tr data-hold="([0-9a-f-]+)"', placed.text)
    hold = sa.get(f"/v1/holds/{hold_id}", headers=sa.headers).json()
    assert hold["state"] == "active" and hold["reason"] == MATTER

    request_id = _submit(
        sa, "/v1/erasure-requests", {"subject": {"phone": HELD_SUBJECT}, "regulation": "gdpr"}
    )
    path = f"/v1/erasure-requests/{request_id}"
    shown = wait_for(lambda: _status_is(sa, path, "on_hold"), "the hold to stop it", timeout=180)
    assert [h["id"] for h in shown["legal_holds"]] == [hold_id] and shown["targets"], shown
    assert "deleted" not in shown["targets"], shown
    page = console.page(f"/ui/requests/{request_id}")
    assert "Stopped before deletion" in page and MATTER in page
    assert request_id in console.page("/ui/holds")

    released = console.post(f"/ui/holds/{hold_id}/release", {})
    assert "Legal hold released" in released.text
    body = sa.wait_final(request_id)
    assert body["status"] == "completed" and body["targets"] == {"deleted": 1}, body
    response = _certificate(sa, f"{path}/certificate")
    [waited] = response.json()["request"]["legal_holds"]
    assert waited["holds"] == [hold_id] and waited["how"] == "hold_ended"
    assert HELD_SUBJECT not in response.text and "Ana" not in response.text
    _verify(sa, response.content, "held-certificate.json")


def test_access_conversations_and_holds_work_end_to_end_in_standalone() -> None:
    with running_standalone() as sa:
        sa.start()
        sa.wait_ready()
        access_id = _access_request(sa)
        _conversations_erasure(sa)

        console = Console(sa)
        try:
            # The console shows the access request with its export and certificate.
            page = console.page(f"/ui/access-requests/{access_id}")
            assert "ready" in page.lower() and "certificate" in page.lower()
            _held_erasure(sa, console)
        finally:
            console.close()

        code, _ = sa.stop(signal.SIGTERM)
        assert code == 0
        assert sa.leftovers() == [], sa.leftovers()
        logs = "".join(p.read_text(errors="replace") for p in (sa.data_dir / "logs").glob("*"))
        for needle in (ACCESS_SUBJECT, CONVERSATIONS_SUBJECT, HELD_SUBJECT, MATTER):
            assert needle not in logs, needle
