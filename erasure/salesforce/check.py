"""`erasure salesforce check`: diagnose an org's setup step by step.

The steps follow Salesforce's "Get Started with Conversation Data API". Each failing step says what
to change in Setup. Nothing here deletes anything: the one DELETE it sends (the request-shape
probe, `delete_probe.py`) names an id no org holds. The token and secret are never printed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from erasure.salesforce.check_report import CheckReport, Outcome, Step, render
from erasure.salesforce.client.probe import Failure, OrgProbe
from erasure.salesforce.config import (
    MIN_API_VERSION,
    CredentialSettings,
    OrgSettings,
    Timeouts,
)
from erasure.salesforce.delete_probe import (
    DELETE_STEP,
    IMPOSSIBLE_ID,
    find_delete_shape,
    shape_step,
)
from erasure.salesforce.tokens import jwt_claims

__all__ = ["IMPOSSIBLE_ID", "CheckReport", "Outcome", "Step", "render", "run_check"]

APP = "Setup > External Client App Manager > (your app)"


def _version_tuple(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in text.split("."))
    except ValueError:
        return (0,)


@dataclass
class _Context:
    probe: OrgProbe
    org: OrgSettings
    credential: CredentialSettings
    report: CheckReport
    delete_probe: bool = True
    token: dict[str, Any] = field(default_factory=dict)
    latest_version: str | None = None


_UNREACHABLE_FIX = {
    Failure.CERTIFICATE: "Salesforce's certificates are publicly trusted: a certificate that "
    "does not verify means TLS inspection on your network (pass its CA with --ca-bundle) or a "
    "private server such as the sandbox (pass the certificate it printed with --ca-bundle).",
    Failure.PLAIN_HTTP: "Something answers at this host and port, but in plain HTTP: Salesforce "
    "is served over https only. Check the host and port (the sandbox prints its https URL).",
}
_MY_DOMAIN_FIX = (
    "Use the org's My Domain URL from Setup > My Domain (https://<name>.my.salesforce.com); "
    "login.salesforce.com and test.salesforce.com do not support the client credentials flow."
)


def _my_domain(ctx: _Context) -> Step:
    resp = ctx.probe.versions()
    name = "My Domain reachable"
    if resp.status is None:
        fix = _UNREACHABLE_FIX.get(resp.failure) if resp.failure else None
        return Step(
            name, Outcome.FAIL, f"{ctx.org.my_domain_url}: {resp.problem}", fix or _MY_DOMAIN_FIX
        )
    if resp.status == 200 and isinstance(resp.body, list) and resp.body:
        ctx.latest_version = str(resp.body[-1].get("version"))
        return Step(name, Outcome.PASS, f"answers; latest API version {ctx.latest_version}")
    return Step(name, Outcome.PASS, f"answers (HTTP {resp.status})")


def _credentials(ctx: _Context) -> Step:
    name = "Client credentials accepted"
    resp = ctx.probe.token(ctx.credential.client_id, ctx.credential.client_secret)
    if resp.status == 200 and isinstance(resp.body, dict) and resp.body.get("access_token"):
        ctx.token = resp.body
        return Step(name, Outcome.PASS, f"token issued to {ctx.credential.client_id}")
    if resp.status is None:
        return Step(
            name,
            Outcome.FAIL,
            f"token endpoint: {resp.problem}",
            "Check network access to My Domain.",
        )
    body = resp.body if isinstance(resp.body, dict) else {}
    error = str(body.get("error") or f"HTTP {resp.status}")
    description = str(body.get("error_description") or "")
    detail = f"{error}: {description}" if description else error
    if error in ("invalid_client", "invalid_client_id", "invalid_client_credentials"):
        fix = (
            f"Bad client id or secret. Copy both from {APP} > Settings > OAuth Settings > "
            "Consumer Key and Secret, and make sure the secret file holds only the secret."
        )
    elif error == "unsupported_grant_type":
        fix = (
            f"The client credentials flow is not enabled. In {APP} > Settings > OAuth Settings > "
            "Flow Enablement, check 'Enable Client Credentials Flow'."
        )
    elif error == "invalid_grant" and "user" in description.lower():
        fix = (
            f"No Run As user. In {APP} > Policies > OAuth Policies, enable 'Client Credentials "
            "Flow' and set 'Run As' to an integration user with the 'API Only User' permission."
        )
    elif error == "invalid_grant" and "domain" in description.lower():
        fix = "Request the token from the My Domain URL, not login.salesforce.com."
    else:
        fix = f"Salesforce refused the token request; review {APP} > Policies."
    return Step(name, Outcome.FAIL, detail, fix)


def _scopes(ctx: _Context) -> Step:
    name = "Scopes sfap_api and api"
    scopes = set(str(ctx.token.get("scope") or "").split())
    missing = [s for s in ("sfap_api", "api") if s not in scopes]
    if not missing:
        return Step(name, Outcome.PASS, f"scope: {' '.join(sorted(scopes))}")
    labels = {
        "sfap_api": "'Access the Salesforce API Platform (sfap_api)'",
        "api": "'Manage user data via APIs (api)' (needed to read ConversationApiLog by SOQL)",
    }
    return Step(
        name,
        Outcome.FAIL,
        f"missing: {', '.join(missing)}",
        f"In {APP} > Settings > OAuth Settings > Selected OAuth Scopes, add "
        + " and ".join(labels[m] for m in missing)
        + ".",
    )


def _jwt(ctx: _Context) -> Step:
    name = "JWT-based access token"
    claims = jwt_claims(str(ctx.token.get("access_token") or ""))
    if ctx.token.get("token_format") == "jwt" and claims is not None:
        return Step(name, Outcome.PASS, "token_format jwt")
    return Step(
        name,
        Outcome.FAIL,
        f"token_format {ctx.token.get('token_format') or 'absent'}: an opaque session id",
        f"In {APP} > Settings > Security (or OAuth Settings), check 'Issue JSON Web Token "
        "(JWT)-based access tokens for named users'. api.salesforce.com answers 404 otherwise.",
    )


def _timeout(ctx: _Context) -> Step:
    name = "Token timeout"
    claims = jwt_claims(str(ctx.token.get("access_token") or ""))
    if not claims or "exp" not in claims or "iat" not in claims:
        return Step(name, Outcome.SKIP, "no JWT exp/iat to read")
    minutes = (float(claims["exp"]) - float(claims["iat"])) / 60
    if minutes < 5:
        return Step(
            name,
            Outcome.WARN,
            f"{minutes:.0f} minutes",
            f"Tokens this short cost a token request per few calls; {APP} > Policies > "
            "'JWT-based access token settings' > Token Timeout of 30 minutes is advised.",
        )
    return Step(name, Outcome.PASS, f"{minutes:.0f} minutes")


def _api_toggle(ctx: _Context) -> Step:
    name = "Conversation Service API toggle"
    api = str(ctx.token.get("api_instance_url") or "").rstrip("/")
    if not api:
        return Step(
            name, Outcome.FAIL, "the token has no api_instance_url", "Grant the sfap_api scope."
        )
    # Read-only probe: entries without a conversationIdentifier. A served path answers 400 for
    # the missing parameter; a switched-off API answers 404. No conversation is touched.
    resp = ctx.probe.get(
        f"{api}/platform/engagement/v1.0/conversation-entries", str(ctx.token["access_token"])
    )
    if resp.status in (200, 400, 429):
        return Step(name, Outcome.PASS, f"engagement API answers (HTTP {resp.status})")
    if resp.status == 404:
        not_jwt = ctx.token.get("token_format") != "jwt"
        return Step(
            name,
            Outcome.FAIL,
            "404 from the engagement API" + (" (the token is not a JWT)" if not_jwt else ""),
            "Turn on Setup > Conversation Service API (also listed as Conversation Data API); "
            "a non-JWT token or a wrong host also gives 404.",
        )
    if resp.status == 401:
        return Step(name, Outcome.FAIL, "401 from the engagement API", "Grant the sfap_api scope.")
    return Step(name, Outcome.FAIL, f"engagement API: {resp.problem or f'HTTP {resp.status}'}")


def _api_version(ctx: _Context) -> Step:
    name = f"API version >= {MIN_API_VERSION} (ConversationApiLog)"
    version = ctx.org.api_version
    url = f"{str(ctx.token.get('instance_url') or ctx.org.my_domain_url).rstrip('/')}/services/data/v{version}/query"
    resp = ctx.probe.get(
        url, str(ctx.token["access_token"]), {"q": "SELECT Id FROM ConversationApiLog LIMIT 1"}
    )
    if resp.status == 200:
        return Step(name, Outcome.PASS, f"ConversationApiLog readable with v{version}")
    if ctx.latest_version and _version_tuple(ctx.latest_version) < _version_tuple(MIN_API_VERSION):
        return Step(
            name,
            Outcome.FAIL,
            f"the org serves at most v{ctx.latest_version}",
            "ConversationApiLog needs API 63.0 (Spring '25) or later; the org's release is older.",
        )
    if resp.status == 400 and resp.error_code == "INVALID_TYPE":
        return Step(
            name,
            Outcome.FAIL,
            f"ConversationApiLog is not a type in v{version}",
            f"Use API version {MIN_API_VERSION} or later (--api-version, and the org setting).",
        )
    if resp.status == 404:
        return Step(
            name,
            Outcome.FAIL,
            f"v{version} is not served by this org",
            f"Use a version the org serves (latest: {ctx.latest_version or 'unknown'}).",
        )
    if resp.status == 401:
        return Step(name, Outcome.FAIL, "401 on SOQL", "Grant the api scope.")
    return Step(
        name, Outcome.FAIL, f"SOQL: {resp.problem or f'HTTP {resp.status} {resp.error_code}'}"
    )


def _delete_shape(ctx: _Context) -> Step:
    if not ctx.delete_probe:
        return Step(DELETE_STEP, Outcome.SKIP, "not probed (--skip-delete-probe)")
    if any(step.outcome is Outcome.FAIL for step in ctx.report.steps):
        return Step(
            DELETE_STEP,
            Outcome.SKIP,
            "probed once the steps above pass (the probe may cost a delete call)",
        )
    finding = find_delete_shape(
        ctx.probe,
        ctx.org,
        api_url=str(ctx.token.get("api_instance_url") or "").rstrip("/"),
        token=str(ctx.token["access_token"]),
    )
    ctx.report.notes.append(
        f"The delete-shape probe sent {finding.calls} DELETE call(s) naming {IMPOSSIBLE_ID}, an "
        "id no org holds. Salesforce may count each against this execution user's 10 delete "
        "calls per hour; --skip-delete-probe leaves the probe out."
    )
    return shape_step(finding, ctx.org)


STEPS: tuple[tuple[Callable[[_Context], Step], bool], ...] = (
    # (step, later steps need it to pass)
    (_my_domain, True),
    (_credentials, True),
    (_scopes, False),
    (_jwt, False),
    (_timeout, False),
    (_api_toggle, False),
    (_api_version, False),
    (_delete_shape, False),
)
STEP_NAMES = (
    "My Domain reachable",
    "Client credentials accepted",
    "Scopes sfap_api and api",
    "JWT-based access token",
    "Token timeout",
    "Conversation Service API toggle",
    f"API version >= {MIN_API_VERSION} (ConversationApiLog)",
    DELETE_STEP,
)


def run_check(
    org: OrgSettings,
    credential: CredentialSettings,
    *,
    timeouts: Timeouts | None = None,
    delete_probe: bool = True,
) -> CheckReport:
    """Run every step; a failed prerequisite marks the following steps skipped.

    `delete_probe=False` leaves out the request-shape probe (it may cost a delete call).
    """
    report = CheckReport()
    probe = OrgProbe(org, timeouts=timeouts)
    ctx = _Context(
        probe=probe, org=org, credential=credential, report=report, delete_probe=delete_probe
    )
    try:
        blocked = False
        for (step, is_prerequisite), name in zip(STEPS, STEP_NAMES, strict=True):
            if blocked:
                report.steps.append(Step(name, Outcome.SKIP, "needs the steps above"))
                continue
            result = step(ctx)
            report.steps.append(result)
            blocked = is_prerequisite and result.outcome is Outcome.FAIL
    finally:
        probe.close()
    return report
