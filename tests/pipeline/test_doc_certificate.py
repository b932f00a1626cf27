"""docs/audit.md shows a real certificate, checkpoint and verifier key, and they cannot drift.

The examples were made by this test: a demo subject erased through the real pipeline against the
sandbox, in a database of its own, signed with a documentation-only key (its seed is below, so
it must never sign a real log). The test checks that the documented examples verify with the
documented key, and that a certificate the code issues today has exactly the documented fields.
When the certificate format changes on purpose, regenerate the examples:

    ERASURE_TEST_UPDATE_DOCS=1 pytest tests/pipeline/test_doc_certificate.py
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import create_engine

from erasure import schema
from erasure.audit import store
from erasure.audit.certificate import dump_certificate, verify_certificate
from erasure.audit.certify import certificate_for
from erasure.audit.checkpoint import SigningKey, VerifierKey, open_checkpoint
from erasure.config import Settings
from erasure.db import make_sessionmaker
from erasure.identifiers import Vault
from erasure.pipeline.context import Pipeline
from erasure.pipeline.salesforce_port import Clients
from erasure.salesforce.sandbox import SandboxHandle
from tests.support.databases import database_url_for
from tests.support.pipeline import FAST, World, client_factory, make_org

DOC = Path(__file__).resolve().parents[2] / "docs" / "audit.md"
DOC_KEY = SigningKey.from_seed(
    "erasure.example.com/audit", hashlib.sha256(b"erasure documentation-only key").digest()
)
BLOCK = re.compile(
    r"(<!-- generated:(?P<name>[a-z-]+) -->\n```(?:json)?\n)(?P<body>.*?)(```)", re.S
)


def _blocks(text: str) -> dict[str, str]:
    return {m["name"]: m["body"] for m in BLOCK.finditer(text)}


def _replace(text: str, blocks: dict[str, str]) -> str:
    return BLOCK.sub(lambda m: m[1] + blocks[m["name"]] + m[4], text)


@pytest.fixture
def doc_world(
    admin_url: str, settings: Settings, sandbox: SandboxHandle
) -> Iterator[tuple[World, str]]:
    """The pipeline on a database of its own, so the example's log is small and signed only by
    the documentation key."""
    name = f"erasure_doc_{uuid.uuid4().hex[:8]}_{os.getpid()}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = database_url_for(admin_url, name)
    schema.upgrade(url)
    engine = create_engine(url)
    maker = make_sessionmaker(engine)
    vault = Vault(settings.encryption_key_bytes)
    org_id, org_name, credential_ids = make_org(maker, vault, sandbox)
    ctx = Pipeline(
        sessionmaker=maker,
        clients=Clients(client_factory(), vault),
        vault=vault,
        pseudonym_key=settings.pseudonym_key_bytes,
        tunables=FAST,
    )
    try:
        yield World(ctx, org_id, org_name, sandbox, settings, credential_ids), url
    finally:
        ctx.clients.close()
        engine.dispose()
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _fresh_certificate(world: World) -> dict[str, object]:
    request_id = world.submit("+14155550001")
    world.wait_for([request_id])
    with world.session() as session:
        while store.sequence(session):
            pass
        store.sign_checkpoint(session, DOC_KEY)
        session.commit()
        return certificate_for(session, request_id, signing_key=DOC_KEY)


def _shape(value: object) -> object:
    """Field names and value types, recursively: what a reader of the example relies on."""
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in sorted(value.items())}
    if isinstance(value, list):
        shapes = {json.dumps(_shape(item), sort_keys=True) for item in value}
        return sorted(shapes)
    return "null" if value is None else type(value).__name__


def _leaf_shapes(document: dict[str, object]) -> dict[str, object]:
    entries = document["leaves"]
    assert isinstance(entries, list)
    return {entry["leaf"]["kind"]: _shape(entry) for entry in entries}


def test_the_documented_certificate_is_real_and_current(doc_world: tuple[World, str]) -> None:
    world, _ = doc_world
    fresh = _fresh_certificate(world)
    text = DOC.read_text()
    if os.environ.get("ERASURE_TEST_UPDATE_DOCS"):
        text = _replace(
            text,
            {
                "checkpoint": str(fresh["checkpoint"]),
                "verifier-key": f"{DOC_KEY.verifier()}\n",
                "certificate": dump_certificate(fresh).decode(),
            },
        )
        DOC.write_text(text)
    blocks = _blocks(text)
    assert set(blocks) == {"checkpoint", "verifier-key", "certificate"}, "markers missing"
    key = VerifierKey.parse(blocks["verifier-key"])
    assert key == DOC_KEY.verifier()
    documented = json.loads(blocks["certificate"])
    report = verify_certificate(blocks["certificate"].encode(), key)
    assert report.ok, [f.message for f in report.findings]
    assert documented["checkpoint"] == blocks["checkpoint"]
    open_checkpoint(blocks["checkpoint"], key)
    # The fields a reader sees are the fields the code issues today.
    for part in ("type", "version", "request", "targets", "signature"):
        assert _shape(documented[part]) == _shape(fresh[part]), part
    assert set(documented) == set(fresh)
    now, then = _leaf_shapes(fresh), _leaf_shapes(documented)
    for kind in set(now) & set(then):
        assert then[kind] == now[kind], f"leaf {kind}"
    assert {"request.received", "request.completed"} <= set(then)
