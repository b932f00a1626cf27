"""`erasure salesforce check` against the sandbox, configured right and wrong in each way."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from werkzeug.serving import WSGIRequestHandler, make_server

from erasure.salesforce import CredentialSettings, DeleteIdsIn, OrgSettings, Route
from erasure.salesforce.check import IMPOSSIBLE_ID, Outcome, run_check
from erasure.salesforce.commands import salesforce_group
from erasure.salesforce.sandbox import SandboxHandle, seed_demo
from tests.support.salesforce import CLIENT_A


def _check(
    sandbox: SandboxHandle, tmp_path: Path, *extra: str, secret: str = CLIENT_A[1]
) -> Result:
    secret_file = tmp_path / "secret"
    secret_file.write_text(secret + "\n")
    args = [
        "check",
        "--my-domain",
        sandbox.url,
        "--client-id",
        CLIENT_A[0],
        "--client-secret-file",
        str(secret_file),
        "--ca-bundle",
        sandbox.ca_path,
        *extra,
    ]
    return CliRunner(env={"COLUMNS": "250"}).invoke(salesforce_group, args)


def _records(sandbox: SandboxHandle) -> dict[str, int]:
    with sandbox.org.lock:
        return {name: len(rows) for name, rows in sandbox.org.data.tables.items()}


def test_a_correct_org_passes_every_step(sandbox: SandboxHandle, tmp_path: Path) -> None:
    with sandbox.org.lock:
        seed_demo(sandbox.org.data)
    before = _records(sandbox)
    result = _check(sandbox, tmp_path)
    assert result.exit_code == 0, result.output
    assert "All checks passed" in result.output
    assert CLIENT_A[1] not in result.output
    # One DELETE, the shape probe, with an id no org can hold: nothing is deleted, and the
    # output says the call may count against the hourly delete quota.
    assert sandbox.org.call_count(Route.DELETE_PARTICIPANTS) == 1
    assert sandbox.org.call_count(Route.DELETE_CONVERSATIONS) == 0
    assert sandbox.org.accepted_ids[Route.DELETE_PARTICIPANTS] == [IMPOSSIBLE_ID]
    sandbox.org.advance(60)
    assert _records(sandbox) == before
    assert "10 delete calls per hour" in result.output
    assert "ids in a JSON body" in result.output


def test_the_delete_probe_can_be_skipped(sandbox: SandboxHandle, tmp_path: Path) -> None:
    result = _check(sandbox, tmp_path, "--skip-delete-probe")
    assert result.exit_code == 0, result.output
    assert re.search(r"Delete request shape[^│]*│\s*skip", result.output), result.output
    assert sandbox.org.call_count(Route.DELETE_PARTICIPANTS) == 0


@pytest.mark.parametrize(
    ("org_mode", "configured", "outcome", "calls", "says"),
    [
        ("body", "body", Outcome.PASS, 1, "ids in a JSON body"),
        ("query", "query", Outcome.PASS, 1, "ids in the query string"),
        ("either", "body", Outcome.PASS, 1, "ids in a JSON body"),
        ("query", "body", Outcome.FAIL, 2, "--delete-ids-in query"),
        ("body", "query", Outcome.FAIL, 2, "--delete-ids-in body"),
    ],
)
def test_the_delete_probe_finds_the_shape_the_org_accepts(
    sandbox: SandboxHandle,
    org_mode: str,
    configured: str,
    outcome: Outcome,
    calls: int,
    says: str,
) -> None:
    sandbox.org.configure(delete_ids_in=org_mode)
    org = OrgSettings(sandbox.url, ca_bundle=sandbox.ca_path, delete_ids_in=DeleteIdsIn(configured))
    step = run_check(org, CredentialSettings(*CLIENT_A)).step("Delete request shape")
    assert step.outcome is outcome, step
    assert says in f"{step.detail} {step.fix}"
    assert sandbox.org.call_count(Route.DELETE_PARTICIPANTS) == calls


def test_an_org_that_reports_unknown_ids_as_404_still_shows_its_shape(
    sandbox: SandboxHandle,
) -> None:
    sandbox.org.configure(unknown_id_mode="not_found")
    org = OrgSettings(sandbox.url, ca_bundle=sandbox.ca_path)
    step = run_check(org, CredentialSettings(*CLIENT_A)).step("Delete request shape")
    assert step.outcome is Outcome.PASS and "ids in a JSON body" in step.detail


def test_neither_shape_accepted_points_at_the_field_name(sandbox: SandboxHandle) -> None:
    sandbox.org.configure(participant_ids_field="entityIds")
    org = OrgSettings(sandbox.url, ca_bundle=sandbox.ca_path)
    step = run_check(org, CredentialSettings(*CLIENT_A)).step("Delete request shape")
    assert step.outcome is Outcome.FAIL
    assert "participantEntityIds" in (step.fix or "")


def test_a_used_up_delete_quota_leaves_the_shape_unknown(sandbox: SandboxHandle) -> None:
    sandbox.org.configure(delete_limit=1)
    org = OrgSettings(sandbox.url, ca_bundle=sandbox.ca_path)
    first = run_check(org, CredentialSettings(*CLIENT_A)).step("Delete request shape")
    assert first.outcome is Outcome.PASS  # and it spent this execution user's only call
    report = run_check(org, CredentialSettings(*CLIENT_A))
    step = report.step("Delete request shape")
    assert step.outcome is Outcome.WARN
    assert "429" in step.detail and "Retry-After 36" in step.detail
    assert report.ok  # a warning: the rest of the setup is fine
    assert sandbox.org.call_count(Route.DELETE_PARTICIPANTS) == 2  # the refused one included


def test_the_delete_probe_is_skipped_when_the_api_is_off(sandbox: SandboxHandle) -> None:
    sandbox.org.configure(api_enabled=False)
    org = OrgSettings(sandbox.url, ca_bundle=sandbox.ca_path)
    step = run_check(org, CredentialSettings(*CLIENT_A)).step("Delete request shape")
    assert step.outcome is Outcome.SKIP
    assert sandbox.org.call_count(Route.DELETE_PARTICIPANTS) == 0


@pytest.mark.parametrize(
    ("app_change", "org_change", "extra", "failing", "advice"),
    [
        (
            {"client_secret": "rotated"},
            {},
            (),
            "Client credentials accepted",
            "Consumer Key and Secret",
        ),
        (
            {"client_credentials_enabled": False},
            {},
            (),
            "Client credentials accepted",
            "Enable Client Credentials Flow",
        ),
        ({"run_as_user_id": None}, {}, (), "Client credentials accepted", "Run As"),
        ({"scopes": ["api"]}, {}, (), "Scopes sfap_api and api", "sfap_api"),
        ({"scopes": ["sfap_api"]}, {}, (), "Scopes sfap_api and api", "Manage user data via APIs"),
        ({"jwt_tokens": False}, {}, (), "JWT-based access token", "JSON Web Token"),
        (
            {},
            {"api_enabled": False},
            (),
            "Conversation Service API toggle",
            "Conversation Service API",
        ),
        ({}, {}, ("--api-version", "62.0"), "API version >= 63.0", "63.0 or later"),
        (
            {},
            {"latest_api_version": "62.0"},
            ("--api-version", "63.0"),
            "API version >= 63.0",
            "release is older",
        ),
    ],
)
def test_each_misconfiguration_is_named_with_its_fix(
    sandbox: SandboxHandle,
    tmp_path: Path,
    app_change: dict[str, object],
    org_change: dict[str, object],
    extra: tuple[str, ...],
    failing: str,
    advice: str,
) -> None:
    if app_change:
        sandbox.org.configure_app(CLIENT_A[0], **app_change)
    if org_change:
        sandbox.org.configure(**org_change)
    result = _check(sandbox, tmp_path, *extra)
    assert result.exit_code == 1, result.output
    assert re.search(rf"{re.escape(failing)}[^│]*│\s*fail", result.output), result.output
    assert advice in result.output
    assert sandbox.org.call_count(Route.DELETE_PARTICIPANTS) == 0


def test_short_token_timeout_is_a_warning(sandbox: SandboxHandle) -> None:
    sandbox.org.configure_app(CLIENT_A[0], token_timeout_s=120)
    org = OrgSettings(sandbox.url, ca_bundle=sandbox.ca_path)
    report = run_check(org, CredentialSettings(*CLIENT_A))
    assert report.step("Token timeout").outcome is Outcome.WARN
    assert report.ok


def test_unreachable_my_domain_skips_the_rest(sandbox: SandboxHandle) -> None:
    org = OrgSettings("https://127.0.0.1:9")
    report = run_check(org, CredentialSettings(*CLIENT_A))
    assert report.steps[0].outcome is Outcome.FAIL
    assert "My Domain" in (report.steps[0].fix or "")
    assert {s.outcome for s in report.steps[1:]} == {Outcome.SKIP}
    assert not report.ok


def test_untrusted_certificate_is_reported(sandbox: SandboxHandle) -> None:
    report = run_check(OrgSettings(sandbox.url), CredentialSettings(*CLIENT_A))
    assert "TLS" in report.steps[0].detail


def test_secret_from_environment_and_usage_errors(sandbox: SandboxHandle) -> None:
    """The secret comes from a file or from ERASURE_NEW_CLIENT_SECRET (read by click, the same
    variable `orgs add-credential` takes), never from the command line."""
    base = [
        "check",
        "--my-domain",
        sandbox.url,
        "--client-id",
        CLIENT_A[0],
        "--ca-bundle",
        sandbox.ca_path,
    ]
    with_secret = CliRunner(env={"COLUMNS": "250", "ERASURE_NEW_CLIENT_SECRET": CLIENT_A[1]})
    ok = with_secret.invoke(salesforce_group, base)
    assert ok.exit_code == 0, ok.output
    assert CLIENT_A[1] not in ok.output

    without = CliRunner(env={"COLUMNS": "250", "ERASURE_NEW_CLIENT_SECRET": None})
    missing = without.invoke(salesforce_group, base)
    assert missing.exit_code == 2
    assert "ERASURE_NEW_CLIENT_SECRET" in missing.output
    assert "--client-secret-file" in missing.output

    typed = without.invoke(salesforce_group, [*base, "--client-secret", CLIENT_A[1]])
    assert typed.exit_code == 2
    assert "never on the command line" in typed.output
    assert CLIENT_A[1] not in typed.output

    # the old indirection (an option naming another variable) is gone
    assert without.invoke(salesforce_group, [*base, "--client-secret-env", "X"]).exit_code == 2

    http = ["check", "--my-domain", "http://example.com", "--client-id", "x"]
    assert with_secret.invoke(salesforce_group, http).exit_code == 2


@pytest.fixture
def sandbox_process(tmp_path: Path) -> Iterator[dict[str, str]]:
    """`erasure sandbox --port 0 --seed demo` in a subprocess; yields the lines it printed."""
    code = "from erasure.salesforce.commands import sandbox_command; sandbox_command()"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            code,
            "--port",
            "0",
            "--seed",
            "demo",
            "--hour-seconds",
            "60",
            "--credentials",
            "2",
            "--cert-dir",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    printed: dict[str, str] = {}
    for line in proc.stdout:
        if line.strip() == "ready":
            break
        key, _, value = line.partition(": ")
        printed.setdefault(key, value.strip())
    try:
        yield printed
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


def test_sandbox_command_prints_what_check_needs(
    sandbox_process: dict[str, str], tmp_path: Path
) -> None:
    assert sandbox_process["url"].startswith("https://127.0.0.1:")
    assert sandbox_process["client id"] == "erasure-sandbox-1"
    secret_file = tmp_path / "secret"
    secret_file.write_text(sandbox_process["client secret"])
    args = [
        "check",
        "--my-domain",
        sandbox_process["url"],
        "--client-id",
        sandbox_process["client id"],
        "--client-secret-file",
        str(secret_file),
        "--ca-bundle",
        sandbox_process["ca bundle"],
    ]
    result = CliRunner(env={"COLUMNS": "250"}).invoke(salesforce_group, args)
    assert result.exit_code == 0, result.output


def _invoke_check(args: list[str], env: dict[str, str] | None = None) -> Result:
    return CliRunner(env={"COLUMNS": "250", **(env or {})}).invoke(salesforce_group, args)


@pytest.mark.parametrize(
    ("suffix", "named"),
    [("/lightning", "/lightning"), ("/lightning/page/home", "/lightning/page/home")],
)
def test_a_my_domain_with_a_path_is_refused_before_any_call(
    sandbox: SandboxHandle, tmp_path: Path, suffix: str, named: str
) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text(CLIENT_A[1])
    result = _invoke_check(
        [
            "check",
            "--my-domain",
            sandbox.url + suffix,
            "--client-id",
            CLIENT_A[0],
            "--client-secret-file",
            str(secret_file),
            "--ca-bundle",
            sandbox.ca_path,
        ]
    )
    assert result.exit_code == 2, result.output
    assert named in result.output and "without a path" in result.output
    assert sandbox.org.call_count(Route.TOKEN) == 0


def test_a_lightning_host_is_named_with_the_my_domain_to_use() -> None:
    with pytest.raises(ValueError, match=r"https://acme\.my\.salesforce\.com"):
        OrgSettings("https://acme.lightning.force.com")


@pytest.mark.parametrize("content", ["", "\n", "   \n\t\n"])
def test_an_empty_secret_file_is_refused_before_any_call(
    sandbox: SandboxHandle, tmp_path: Path, content: str
) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text(content)
    result = _invoke_check(
        [
            "check",
            "--my-domain",
            sandbox.url,
            "--client-id",
            CLIENT_A[0],
            "--client-secret-file",
            str(secret_file),
            "--ca-bundle",
            sandbox.ca_path,
        ]
    )
    assert result.exit_code == 2, result.output
    assert "is empty" in result.output
    assert sandbox.org.call_count(Route.TOKEN) == 0


@pytest.fixture
def plain_http_server() -> Iterator[str]:
    """A server that answers in plain HTTP where https was expected (a wrong port or scheme)."""

    def app(environ: dict[str, object], start_response: Callable[..., object]) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"plain"]

    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.port}"
    server.shutdown()
    server.server_close()


class _Quiet(WSGIRequestHandler):
    def log(self, type: str, message: str, *args: object) -> None:
        pass


def test_a_plain_http_server_is_not_called_a_certificate_problem(plain_http_server: str) -> None:
    report = run_check(OrgSettings(f"https://{plain_http_server}"), CredentialSettings(*CLIENT_A))
    first = report.steps[0]
    assert first.outcome is Outcome.FAIL
    assert "plain HTTP" in first.detail
    assert "certificate" not in first.detail.lower()
    assert "--ca-bundle" not in (first.fix or "")


def test_an_untrusted_certificate_is_named_as_such(sandbox: SandboxHandle) -> None:
    report = run_check(OrgSettings(sandbox.url), CredentialSettings(*CLIENT_A))
    first = report.steps[0]
    assert "certificate" in first.detail and "plain HTTP" not in first.detail
    assert "--ca-bundle" in (first.fix or "")
