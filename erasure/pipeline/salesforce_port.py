"""What the pipeline needs from Salesforce, and how it gets a client for an org's credential.

The real `SalesforceClient` satisfies `SalesforcePort` structurally; the composition root passes a
`ClientFactory` that builds one (with the fleet-wide Redis token and usage stores). `Clients`
caches one client per credential per process.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Protocol

from erasure.core.models import Credential, Org
from erasure.identifiers import Vault
from erasure.orgs import client_secret
from erasure.salesforce.config import CredentialSettings, OrgSettings
from erasure.salesforce.models import (
    ApiLog,
    ConversationRef,
    DeleteAccepted,
    EndUserRef,
    EntriesPage,
    SessionRef,
    Subject,
)


class SalesforcePort(Protocol):
    def find_end_users(self, subject: Subject) -> list[EndUserRef]: ...

    def open_sessions(self, end_user_ids: Collection[str]) -> list[SessionRef]: ...

    def delete_participants(self, end_user_ids: Iterable[str]) -> DeleteAccepted: ...

    def delete_conversations(self, conversation_ids: Iterable[str]) -> DeleteAccepted: ...

    def api_logs(
        self, *, log_ids: Collection[str] = (), entity_ids: Collection[str] = ()
    ) -> list[ApiLog]: ...

    def existing_end_users(self, ids: Collection[str]) -> set[str]: ...

    def existing_conversations(self, ids: Collection[str]) -> set[str]: ...

    def conversations_of(self, end_user_ids: Collection[str]) -> list[ConversationRef]: ...

    def entries_page(
        self,
        conversation_identifier: str,
        *,
        page_token: str | None = None,
        record_limit: int = 100,
    ) -> EntriesPage: ...

    def close(self) -> None: ...


ClientFactory = Callable[[OrgSettings, CredentialSettings], SalesforcePort]


def org_settings(org: Org) -> OrgSettings:
    return OrgSettings(
        org.my_domain_url,
        api_version=org.api_version,
        delete_ids_in=org.delete_ids_in,
        participant_ids_field=org.participants_body_field,
        conversation_ids_field=org.conversations_body_field,
        max_ids_per_delete=org.max_ids_per_call,
        ca_bundle=org.ca_bundle_path,
    )


@dataclass(frozen=True)
class _Key:
    credential_id: uuid.UUID
    org: OrgSettings
    client_id: str


class Clients:
    """One client per credential (and org settings) per process; rebuilt when settings change."""

    def __init__(self, factory: ClientFactory, vault: Vault) -> None:
        self._factory = factory
        self._vault = vault
        self._lock = threading.Lock()
        self._clients: dict[uuid.UUID, tuple[_Key, SalesforcePort]] = {}

    def for_credential(self, org: Org, credential: Credential) -> SalesforcePort:
        key = _Key(credential.id, org_settings(org), credential.client_id)
        with self._lock:
            cached = self._clients.get(credential.id)
            if cached is not None and cached[0] == key:
                return cached[1]
            if cached is not None:
                cached[1].close()
            settings = CredentialSettings(
                client_id=credential.client_id,
                client_secret=client_secret(self._vault, org, credential),
                name=credential.name,
            )
            client = self._factory(key.org, settings)
            self._clients[credential.id] = (key, client)
            return client

    def any_for_org(self, org: Org) -> SalesforcePort | None:
        """A client for reads (SOQL costs no delete quota): the first active credential's."""
        for credential in org.credentials:
            if credential.is_active:
                return self.for_credential(org, credential)
        return None

    def close(self) -> None:
        with self._lock:
            for _, client in self._clients.values():
                client.close()
            self._clients.clear()
