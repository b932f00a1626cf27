"""Salesforce orgs and their pools of execution-user credentials. Secrets are sealed at rest."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from erasure.core.models import Credential, Org
from erasure.identifiers import Sealed, Vault
from erasure.salesforce.config import DeleteIdsIn, OrgSettings


def secret_context(org_name: str, credential_name: str) -> str:
    return f"credential:{org_name}:{credential_name}"


def add_org(
    session: Session,
    *,
    name: str,
    my_domain_url: str,
    api_version: str = "63.0",
    requires_approval: bool = False,
    max_ids_per_call: int = 200,
    delete_calls_per_window: int = 10,
    window_s: int = 3600,
    delete_ids_in: DeleteIdsIn = DeleteIdsIn.BODY,
) -> Org:
    """Add an org (caller commits). Raises ValueError if the name is taken or the My Domain URL
    is not one the client can use (https, no path)."""
    if session.scalar(select(Org).where(Org.name == name)) is not None:
        raise ValueError(f"an org named {name!r} already exists")
    OrgSettings(my_domain_url)  # the client's own checks, at the door rather than at first use
    org = Org(
        name=name,
        my_domain_url=my_domain_url.rstrip("/"),
        api_version=api_version,
        requires_approval=requires_approval,
        max_ids_per_call=max_ids_per_call,
        delete_calls_per_window=delete_calls_per_window,
        window_s=window_s,
        delete_ids_in=delete_ids_in,
    )
    session.add(org)
    session.flush()
    return org


def add_credential(
    session: Session, vault: Vault, org: Org, *, name: str, client_id: str, client_secret: str
) -> Credential:
    """Add an execution user to the org's pool; the client secret is stored encrypted."""
    sealed = vault.seal(client_secret, context=secret_context(org.name, name))
    credential = Credential(
        org_id=org.id,
        name=name,
        client_id=client_id,
        client_secret_ciphertext=sealed.ciphertext,
        key_id=sealed.key_id,
    )
    session.add(credential)
    session.flush()
    return credential


def client_secret(vault: Vault, org: Org, credential: Credential) -> str:
    return vault.open(
        Sealed(credential.key_id, credential.client_secret_ciphertext),
        context=secret_context(org.name, credential.name),
    )


def find_org(session: Session, name: str) -> Org | None:
    return session.scalar(select(Org).where(Org.name == name))
