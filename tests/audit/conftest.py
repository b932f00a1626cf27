"""Shared fixtures for the audit tests: a fixed signing key and a signed 10,000-leaf log."""

from __future__ import annotations

from pathlib import Path

import pytest

from erasure.audit.bundle import write_bundle
from erasure.audit.checkpoint import SigningKey

from .support import ORIGIN, SIZES_10K, SignedLog, signed_log


@pytest.fixture(scope="session")
def signing_key() -> SigningKey:
    return SigningKey.from_seed(ORIGIN, bytes(range(32)))


@pytest.fixture(scope="session")
def log_10k(signing_key: SigningKey) -> SignedLog:
    return signed_log(10_000, SIZES_10K, signing_key)


@pytest.fixture(scope="session")
def bundle_10k(tmp_path_factory: pytest.TempPathFactory, log_10k: SignedLog) -> Path:
    path = tmp_path_factory.mktemp("bundles") / "b10k"
    write_bundle(
        path, leaves=log_10k.leaves, checkpoints=log_10k.notes, verifier_key=log_10k.key.verifier()
    )
    return path
