"""The canary run's inputs: canary identifiers and free text, and every entry point they are sent
through (the API, each ticketing webhook, OpenDSR, the console form, bulk CSV, subject lookups,
cancel and extend, legal holds and their overrides), each answer kept to be scanned."""

from __future__ import annotations

import io
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import Engine, select

from erasure.accounts.models import Role, User
from erasure.api_keys import create_api_key
from erasure.db import make_sessionmaker
from erasure.ui import accounts
from tests.support.console import PASSWORD, sign_in
from tests.support.senders import SENDERS, dumps

TOKEN = "qz7canary"  # in every canary that can hold letters
PHONES = {  # E.164 numbers cannot: each is looked for by its digits
    "api": "+14155550001",  # the sandbox's demo WhatsApp user: found, deleted, confirmed
    "opendsr": "+14155558301",
    "zendesk": "+14155558302",
    "bulk": "+14155558303",
    "console": "+14155558304",
    "lookup": "+14155558305",
    "hold": "+14155550002",  # demo SMS users: resolved, held, then released or overridden
    "hold-override": "+14155550004",
}
POSITIVE = "pos7marker"  # written on purpose where the scans look: proves each scan reads data
LOOPBACK = ("127.0.0.0/8", "::1/128")
#: Loggers of the outside world the run stands up (receivers' servers, the sandbox, the SMTP
#: server that gets the notices, whose log holds the mail it receives): not ours to scan.
OUTSIDE = ("werkzeug", "erasure.salesforce.sandbox", "tests.", "mail.log")


def email(where: str) -> str:
    return f"{where}.{TOKEN}@example.org"


def text_canary(what: str) -> str:
    """Free text naming the subject, as people write it."""
    return f"{what}: subject {TOKEN}-{what} (phone {PHONES['lookup']}) asked us"


NEEDLES = [TOKEN, *(phone.removeprefix("+") for phone in PHONES.values())]
NEEDLES += [phone[2:] for phone in PHONES.values()]  # national form, in case it is reformatted


def leaks(text: str) -> list[str]:
    lowered = text.lower()
    return [needle for needle in NEEDLES if needle.lower() in lowered]


@dataclass
class Run:
    """What the run saw: answers to scan, and the allowed decrypted free text."""

    answers: list[tuple[str, str]] = field(default_factory=list)
    request_ids: dict[str, str] = field(default_factory=dict)

    def keep(self, where: str, response: Any, *, expect: int | tuple[int, ...]) -> Any:
        expected = (expect,) if isinstance(expect, int) else expect
        assert response.status_code in expected, (where, response.get_data(as_text=True))
        self.answers.append((where, response.get_data(as_text=True)))
        # Closing ends the request (a streamed one, like the bulk upload, ends only then), so its
        # database session goes back to the pool now, not when it is collected.
        response.close()
        return response


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@dataclass
class Keys:
    officer: str
    integration: str
    admin: str
    auditor: str


def make_keys(engine: Engine) -> Keys:
    with make_sessionmaker(engine)() as session:
        made = {
            role: create_api_key(session, name=f"canary {role.value}", role=role).secret
            for role in (Role.OFFICER, Role.INTEGRATION, Role.ADMIN, Role.AUDITOR)
        }
        for role in (Role.OFFICER, Role.AUDITOR):
            accounts.create_user(
                session,
                email=f"staff-{role.value}@example.com",
                name=f"Staff {role.value}",
                role=role,
                password=PASSWORD,
            )
        session.commit()
    return Keys(made[Role.OFFICER], made[Role.INTEGRATION], made[Role.ADMIN], made[Role.AUDITOR])


def api_entry_points(run: Run, client: FlaskClient, keys: Keys, org: str) -> None:
    """Intake API (two submitters), bad input carrying canaries, extend, cancel, lookups."""
    created = run.keep(
        "api create",
        client.post(
            "/v1/erasure-requests",
            json={
                "subject": {"phone": PHONES["api"], "email": email("api")},
                "regulation": "gdpr",
                "org": org,
                "reference": {"system": "jira", "id": f"REF-{POSITIVE}-api"},
                "notes": text_canary("api-notes"),
            },
            headers=bearer(keys.integration) | {"Idempotency-Key": '"canary-1"'},
        ),
        expect=202,
    )
    run.request_ids["api"] = created.get_json()["id"]
    officer = bearer(keys.officer)
    to_cancel = run.keep(
        "api create (to cancel)",
        client.post(
            "/v1/erasure-requests",
            json={
                "subject": {"email": email("api-cancel"), "messaging_platform_key": f"wa:{TOKEN}"},
                "regulation": "gdpr",
                "org": org,
                "notes": text_canary("api-notes-2"),
            },
            headers=officer,
        ),
        expect=202,
    ).get_json()["id"]
    url = f"/v1/erasure-requests/{to_cancel}"
    run.keep(
        "api extend",
        client.post(f"{url}/extend", json={"reason": text_canary("api-extend")}, headers=officer),
        expect=200,
    )
    run.keep("api notices", client.get(f"{url}/notices", headers=officer), expect=200)
    run.keep(
        "api acknowledgement",
        client.post(
            f"/v1/erasure-requests/{run.request_ids['api']}/notices",
            json={"kind": "acknowledgement"},
            headers=officer,
        ),
        expect=201,
    )
    run.keep(
        "api cancel",
        client.post(f"{url}/cancel", json={"reason": text_canary("api-cancel")}, headers=officer),
        expect=200,
    )
    run.request_ids["api cancelled"] = to_cancel
    conversation = f"0dw{TOKEN}000"  # a well-formed Conversation id that carries the token
    run.request_ids["api conversations"] = run.keep(
        "api conversations",
        client.post(
            "/v1/erasure-requests",
            json={
                "subject": {"email": email("api-conversations")},
                "regulation": "gdpr",
                "org": org,
                "conversations": [conversation],
            },
            headers=officer,
        ),
        expect=202,
    ).get_json()["id"]
    run.keep(
        "api bad conversation",
        client.post(
            "/v1/erasure-requests",
            json={
                "subject": {"email": email("api-conversations")},
                "regulation": "gdpr",
                "conversations": [f"0PA{TOKEN}000"],
            },
            headers=officer,
        ),
        expect=422,
    )
    for where, body in (
        ("api unknown key", {"subject": {email("bad-key"): 1}, "regulation": "gdpr"}),
        ("api bad email", {"subject": {"email": f"{TOKEN}@@x"}, "regulation": "gdpr"}),
        ("api bad phone", {"subject": {"phone": PHONES["lookup"] + "9"}, "regulation": "gdpr"}),
        ("api bad lookup", {"subject": {"email": email("lookup"), TOKEN: 1}}),
    ):
        path = "/v1/subject-lookups" if "lookup" in where else "/v1/erasure-requests"
        run.keep(where, client.post(path, json=body, headers=officer), expect=422)
    run.keep(
        "api subject lookup",
        client.post(
            "/v1/subject-lookups",
            json={"subject": {"email": email("api"), "phone": PHONES["lookup"]}},
            headers=officer,
        ),
        expect=200,
    )
    run.keep("api list", client.get("/v1/erasure-requests", headers=officer), expect=200)


def webhook_entry_points(run: Run, client: FlaskClient, keys: Keys, org: str, jira: str) -> None:
    """A source per ticketing system (Jira with comment-back), and one signed ticket each."""
    admin = bearer(keys.admin)
    for name, sender in SENDERS.items():
        body: dict[str, Any] = {"name": f"canary-{name}", "system": sender.system.value, "org": org}
        if name == "jira":
            body["comment_back"] = {"base_url": jira, "user": "bot@example.com", "token": "t0k"}
        source = run.keep(
            f"webhook source {name}",
            client.post("/v1/webhook-sources", json=body, headers=admin),
            expect=201,
        ).get_json()
        at = datetime.now(UTC)
        document = sender.restamp(
            sender.payload(email=email(f"webhook-{name}"), ticket=f"T-{POSITIVE}-{name}"), at
        )
        if name == "zendesk":
            document["ticket"]["requester"]["phone"] = PHONES["zendesk"]
            document["ticket"]["subject"] = text_canary("zendesk-ticket-text")
        if name == "jira":
            document["issue"]["fields"]["summary"] = text_canary("jira-ticket-text")
        raw = dumps(document)
        headers = sender.sign(raw, secret=source["secret"], at=at, delivery_id=str(uuid.uuid4()))
        delivered = run.keep(
            f"webhook {name}",
            client.post(f"/v1/webhooks/canary-{name}", data=raw, headers=headers),
            expect=202,
        )
        assert delivered.get_json()["outcome"] == "created", (name, delivered.get_json())
        run.request_ids[f"webhook {name}"] = delivered.get_json()["request_id"]
        replay = client.post(f"/v1/webhooks/canary-{name}", data=raw, headers=headers)
        run.keep(f"webhook {name} replay", replay, expect=200)


def opendsr_entry_points(run: Run, client: FlaskClient, keys: Keys) -> None:
    controller = bearer(keys.integration)
    for srid in ("dsr-kept", "dsr-cancelled"):
        body = {
            "api_version": "2.0",
            "regulation": "gdpr",
            "subject_request_id": f"{srid}-{POSITIVE}",
            "subject_request_type": "erasure",
            "subject_identities": [
                {"identity_type": "email", "identity_value": email(f"opendsr-{srid}")},
                {"identity_type": "phone_number", "identity_value": PHONES["opendsr"]},
            ],
            "extensions": {"example.com": {"note": text_canary("opendsr-extension")}},
        }
        created = run.keep(
            f"opendsr create {srid}",
            client.post("/opendsr/v2/requests", json=body, headers=controller),
            expect=201,
        )
        run.request_ids[f"opendsr {srid}"] = created.get_json()["processor_request_id"]
        run.keep(
            f"opendsr status {srid}",
            client.get(f"/opendsr/v2/requests/{srid}-{POSITIVE}", headers=controller),
            expect=200,
        )
    run.keep(
        "opendsr cancel",
        client.delete(f"/opendsr/v2/requests/dsr-cancelled-{POSITIVE}", headers=controller),
        expect=202,
    )
    bad = {
        "subject_request_id": "x",
        "subject_request_type": "erasure",
        "subject_identities": [{"identity_type": "email", "identity_value": f"{TOKEN}@@"}],
    }
    run.keep(
        "opendsr bad", client.post("/opendsr/v2/requests", json=bad, headers=controller), expect=400
    )


def console_entry_points(run: Run, app_client: FlaskClient, engine: Engine, org: str) -> None:
    """The console form, subject search, bulk CSV, extend and cancel, as an officer."""
    with make_sessionmaker(engine)() as session:
        officer = session.scalar(select(User).where(User.email == "staff-officer@example.com"))
        assert officer is not None
        token = sign_in(app_client, officer)
    form = {
        "csrf_token": token,
        "email": email("console"),
        "phone": PHONES["console"],
        "regulation": "gdpr",
        "org": org,
        "notes": text_canary("console-notes"),
    }
    created = run.keep("console new", app_client.post("/ui/requests/new", data=form), expect=302)
    request_id = created.headers["Location"].rsplit("/", 1)[-1]
    run.request_ids["console"] = request_id
    invalid = app_client.post("/ui/requests/new", data=form | {"email": f"{TOKEN}@@"})
    assert invalid.status_code == 422
    # The officer's own notes come back in their field so they are not lost; nothing else of
    # what was typed does (the identifiers least of all).
    page = invalid.get_data(as_text=True)
    notes = re.search(r'<textarea id="notes"[^>]*>(.*?)</textarea>', page, re.DOTALL)
    assert notes is not None and notes.group(1) == form["notes"]
    run.answers.append(("console new (invalid), notes removed", page.replace(notes.group(0), "")))
    extend = {"csrf_token": token, "reason": text_canary("console-extend")}
    run.keep(
        "console extend",
        app_client.post(f"/ui/requests/{request_id}/extend", data=extend),
        expect=303,
    )
    selected = {
        "csrf_token": token,
        "action": "extend",
        "reason": text_canary("console-selected"),
        "ids": [request_id],
        "confirm": "1",
        "back": "/ui/requests",
    }
    run.keep(
        "console selected rows extend (refused: already extended)",
        app_client.post("/ui/requests/selected", data=selected),
        expect=303,
    )
    run.keep("console list after a selection", app_client.get("/ui/requests"), expect=200)
    cancel = {"csrf_token": token, "reason": text_canary("console-cancel"), "confirm": "1"}
    run.keep(
        "console cancel",
        app_client.post(f"/ui/requests/{request_id}/cancel", data=cancel),
        expect=303,
    )
    for kind, value in (("email", email("console")), ("phone", PHONES["lookup"])):
        search = {"csrf_token": token, "kind": kind, "value": value}
        run.keep(
            f"console search {kind}", app_client.post("/ui/subject-search", data=search), expect=200
        )
    csv_text = (
        "email,phone,regulation,reference_system,reference_id\n"
        f"{email('bulk-1')},,gdpr,csv,B-{POSITIVE}-1\n"
        f",{PHONES['bulk']},ccpa,csv,B-{POSITIVE}-2\n"
        f"{email('bulk-bad')}@@,,gdpr,,\n"
    )
    upload = {"csrf_token": token, "file": (io.BytesIO(csv_text.encode()), "canary.csv")}
    preview = run.keep(
        "console bulk (check)",
        app_client.post("/ui/requests/bulk", data=upload, content_type="multipart/form-data"),
        expect=200,
    )
    # The check carries the file sealed; confirming it submits the rows.
    sealed = dict(
        re.findall(
            r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">',
            preview.get_data(as_text=True),
        )
    )
    run.keep(
        "console bulk (confirmed)",
        app_client.post(
            "/ui/requests/bulk/confirm", data=sealed, content_type="multipart/form-data"
        ),
        expect=200,
    )
    headerless = {
        "csrf_token": token,
        "file": (io.BytesIO(f"{email('bulk-noheader')},{PHONES['bulk']},gdpr\n".encode()), "x.csv"),
    }
    run.keep(
        "console bulk without header",
        app_client.post("/ui/requests/bulk", data=headerless, content_type="multipart/form-data"),
        expect=200,
    )
    for path in ("/ui/", "/ui/requests", "/ui/requests.csv"):
        run.keep(f"console {path}", app_client.get(path), expect=200)


def hold_entry_points(run: Run, client: FlaskClient, keys: Keys, org: str) -> list[str]:
    """A legal hold on each of two subjects (reasons naming them), with a request for each, and
    bad hold input carrying canaries. Returns the holds' ids. The hold answers carry the reason
    decrypted for the admin who placed it: kept with it removed, after checking it is there."""
    admin = bearer(keys.admin)
    hold_ids = []
    for name in ("hold", "hold-override"):
        body = {
            "scope": "subject",
            "subject": {"phone": PHONES[name]},
            "org": org,
            "reason": text_canary(f"{name}-reason"),
            "ends_at": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
        }
        placed = client.post("/v1/holds", json=body, headers=admin)
        assert placed.status_code == 201, placed.get_data(as_text=True)
        document = placed.get_json()
        assert TOKEN in document["reason"]
        run.answers.append((f"hold {name} (reason removed)", json.dumps(document | {"reason": ""})))
        hold_ids.append(document["id"])
        created = run.keep(
            f"api create ({name})",
            client.post(
                "/v1/erasure-requests",
                json={"subject": {"phone": PHONES[name]}, "regulation": "gdpr", "org": org},
                headers=bearer(keys.officer),
            ),
            expect=202,
        )
        run.request_ids[name] = created.get_json()["id"]
    for where, body in (
        ("hold bad phone", {"scope": "subject", "subject": {"phone": PHONES["lookup"] + "9"}}),
        ("hold bad email", {"scope": "subject", "subject": {"email": f"{TOKEN}@@x"}}),
        ("hold unknown key", {"scope": "org", TOKEN: 1}),
    ):
        document = body | {"reason": text_canary("hold-bad"), "ends_at": "2099-01-01T00:00:00Z"}
        run.keep(where, client.post("/v1/holds", json=document, headers=admin), expect=422)
    return hold_ids


def hold_actions(run: Run, client: FlaskClient, keys: Keys, hold_ids: list[str]) -> None:
    """Once both requests wait on their holds: the first hold is released, the other request
    is overridden with a reason naming the subject."""
    admin = bearer(keys.admin)
    shown = run.keep(
        "api get (held)",
        client.get(f"/v1/erasure-requests/{run.request_ids['hold']}", headers=admin),
        expect=200,
    )
    assert shown.get_json()["status"] == "on_hold"
    run.keep(
        "api override hold",
        client.post(
            f"/v1/erasure-requests/{run.request_ids['hold-override']}/override-hold",
            json={"reason": text_canary("hold-override")},
            headers=admin,
        ),
        expect=200,
    )
    released = client.post(f"/v1/holds/{hold_ids[0]}/release", json={}, headers=admin)
    assert released.status_code == 200, released.get_data(as_text=True)
    run.answers.append(
        ("hold release (reason removed)", json.dumps(released.get_json() | {"reason": ""}))
    )
    released.close()
