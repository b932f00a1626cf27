"""`SalesforceClient`: the operations the erasure pipeline calls, over `Transport`.

Each method takes plain values and returns the dataclasses of `erasure.salesforce.models`.
Deletes are sent as given (the caller batches and checks open sessions first, docs/salesforce.md rule 2).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from types import TracebackType
from typing import Any

from erasure.salesforce import errors, phones, soql
from erasure.salesforce import ids as sfids
from erasure.salesforce.client.rows import api_log, api_log_row, session_ref
from erasure.salesforce.client.transport import Transport
from erasure.salesforce.config import (
    CredentialSettings,
    DeleteIdsIn,
    OrgSettings,
    Timeouts,
    TokenPolicy,
)
from erasure.salesforce.models import (
    ApiLog,
    CallCounts,
    ConversationRef,
    DeleteAccepted,
    EndUserRef,
    EntriesPage,
    EntryRef,
    LogState,
    Route,
    SessionRef,
    Subject,
    SubjectKind,
)
from erasure.salesforce.tokens import CachedToken, InMemoryTokenStore, TokenStore
from erasure.salesforce.usage import InMemoryUsageStore, UsageStore

logger = logging.getLogger("erasure.salesforce")

ENGAGEMENT_PATH = "/platform/engagement/v1.0"
#: SOSL returns at most this many records, without a next page.
SOSL_MAX_RECORDS = 2000


class SalesforceClient:
    """One credential (execution user) of one org.

    Thread-safe enough to share within a process, but the usual shape is one client per worker
    process, all sharing `tokens` and `usage` (Redis stores) so the fleet fetches one token and
    honours one Retry-After. Close it (or use it as a context manager) to release connections.
    """

    def __init__(
        self,
        org: OrgSettings,
        credential: CredentialSettings,
        *,
        tokens: TokenStore | None = None,
        usage: UsageStore | None = None,
        timeouts: Timeouts | None = None,
        token_policy: TokenPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.org = org
        self.credential = credential
        self._usage = usage or InMemoryUsageStore()
        self._transport = Transport(
            org,
            credential,
            tokens=tokens or InMemoryTokenStore(),
            usage=self._usage,
            timeouts=timeouts or Timeouts(),
            token_policy=token_policy or TokenPolicy(),
            sleep=sleep,
        )

    @property
    def credential_key(self) -> str:
        """The non-secret key under which this credential's token and counters are stored."""
        return self._transport.key

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> SalesforceClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def usage(self) -> CallCounts:
        """Calls this credential has spent (all processes, when the usage store is shared)."""
        return self._usage.counts(self.credential_key)

    def token(self) -> CachedToken:
        """The current token (fetching it if needed); for diagnostics, never log it."""
        return self._transport.token()

    # -- SOQL ---------------------------------------------------------------------------------

    def query(self, statement: str) -> Iterator[dict[str, Any]]:
        """Every record of a SOQL query, following `nextRecordsUrl` pages.

        Build `statement` with `erasure.salesforce.soql.literal` for every value.
        """

        def first(token: CachedToken) -> str:
            return f"{token.instance_url}/services/data/v{self.org.api_version}/query"

        resp = self._transport.call(Route.QUERY, "GET", first, params={"q": statement})
        while True:
            body = resp.json()
            yield from body.get("records", [])
            next_url = body.get("nextRecordsUrl")
            if body.get("done", True) or not next_url:
                return

            def page(token: CachedToken, next_url: str = str(next_url)) -> str:
                return f"{token.instance_url}{next_url}"

            resp = self._transport.call(Route.QUERY, "GET", page)

    def search(self, statement: str) -> list[dict[str, Any]]:
        """The records a SOSL search returns (`GET .../search?q=`; at most 2000, no paging).

        Build `statement` with `erasure.salesforce.soql.phone_search`.
        """

        def url(token: CachedToken) -> str:
            return f"{token.instance_url}/services/data/v{self.org.api_version}/search"

        body = self._transport.call(Route.SEARCH, "GET", url, params={"q": statement}).json()
        records: list[dict[str, Any]] = body.get("searchRecords", [])
        if len(records) >= SOSL_MAX_RECORDS:
            logger.warning("salesforce search returned its maximum; results may be cut short")
        return records

    def _contacts_by_phone(self, phone: str) -> set[str]:
        """Contacts one of whose own phone fields is this number, however it was typed."""
        fields = self.org.contact_phone_fields
        found = self.search(soql.phone_search(phones.search_terms(phone), fields))
        return {
            str(r["Id"])
            for r in found
            if any(phones.same_number(r.get(field), phone) for field in fields)
        }

    def _query_in(
        self, template: str, values: Collection[str], *, size: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """Run `template` (with one `{ids}` slot) over chunks of `values`."""
        unique = sorted(set(values))
        for chunk in soql.chunks(unique, size or self.org.max_ids_per_query):
            yield from self.query(template.format(ids=soql.in_list(chunk)))

    # -- finding data -------------------------------------------------------------------------

    def find_end_users(self, subject: Subject) -> list[EndUserRef]:
        """MessagingEndUser records for a subject; [] means Salesforce holds nothing for it."""
        fields = soql.END_USER_FIELDS
        contact_ids: set[str] = set()
        platform_keys: list[str] = []
        if subject.kind is SubjectKind.PLATFORM_KEY:
            platform_keys = [subject.value]
        elif subject.kind is SubjectKind.CONTACT_ID:
            if not sfids.is_valid(subject.value):
                raise ValueError("contact id is not a Salesforce id")
            contact_ids.add(subject.value)
        elif subject.kind is SubjectKind.PHONE:
            # Salesforce writes platform keys in E.164; Contact phones are as people typed them.
            platform_keys = [prefix + subject.value for prefix in self.org.phone_key_prefixes]
            contact_ids.update(self._contacts_by_phone(subject.value))
        elif subject.kind is SubjectKind.EMAIL:
            contact_ids.update(
                str(r["Id"])
                for r in self.query(
                    soql.select("Id", "Contact", f"Email = {soql.literal(subject.value)}")
                )
            )
        found: dict[str, EndUserRef] = {}
        records: list[dict[str, Any]] = []
        if platform_keys:
            records += self.query(
                soql.select(
                    fields,
                    "MessagingEndUser",
                    f"MessagingPlatformKey IN {soql.in_list(platform_keys)}",
                )
            )
        if contact_ids:
            records += self._query_in(
                soql.select(fields, "MessagingEndUser", "ContactId IN {ids}"), contact_ids
            )
        for r in records:
            found[str(r["Id"])] = EndUserRef(
                id=str(r["Id"]), message_type=r.get("MessageType"), contact_id=r.get("ContactId")
            )
        return sorted(found.values(), key=lambda ref: ref.id)

    def sessions(self, end_user_ids: Collection[str]) -> list[SessionRef]:
        """Every MessagingSession of these end users (open or not)."""
        if not end_user_ids:
            return []
        rows = self._query_in(
            soql.select(soql.SESSION_FIELDS, "MessagingSession", "MessagingEndUserId IN {ids}"),
            end_user_ids,
        )
        return [session_ref(r) for r in rows]

    def open_sessions(self, end_user_ids: Collection[str]) -> list[SessionRef]:
        """Sessions that would make a participant delete fail with 412 (docs/salesforce.md, rule 2)."""
        if not end_user_ids:
            return []
        closed = soql.in_list(self.org.closed_session_statuses)
        rows = self._query_in(
            soql.select(
                soql.SESSION_FIELDS,
                "MessagingSession",
                f"MessagingEndUserId IN {{ids}} AND Status NOT IN {closed}",
            ),
            end_user_ids,
        )
        return [session_ref(r) for r in rows]

    def existing_end_users(self, ids: Collection[str]) -> set[str]:
        """The subset of `ids` (as given) whose MessagingEndUser still exists: the read-back."""
        if not ids:
            return set()
        found = {
            sfids.to15(str(r["Id"]))
            for r in self._query_in(soql.select("Id", "MessagingEndUser", "Id IN {ids}"), ids)
        }
        return {i for i in ids if sfids.to15(i) in found}

    def existing_conversations(self, ids: Collection[str]) -> set[str]:
        """The subset of `ids` (Conversation record ids, as given) that still exist."""
        if not ids:
            return set()
        found = {
            sfids.to15(str(r["Id"]))
            for r in self._query_in(soql.select("Id", "Conversation", "Id IN {ids}"), ids)
        }
        return {i for i in ids if sfids.to15(i) in found}

    # -- deleting -----------------------------------------------------------------------------

    def delete_participants(self, end_user_ids: Iterable[str]) -> DeleteAccepted:
        """DELETE conversation-participants for these MessagingEndUser ids (one call).

        Raises ValueError for an empty, duplicated, malformed or oversized batch (our bug, so no
        call is spent), OpenSessionError on 412, AmbiguousDeleteError on 5xx or timeout, and the
        rest of the SalesforceError tree.
        """
        return self._delete(
            Route.DELETE_PARTICIPANTS,
            "conversation-participants",
            self.org.participant_ids_field,
            end_user_ids,
        )

    def delete_conversations(self, conversation_ids: Iterable[str]) -> DeleteAccepted:
        """DELETE conversations for these Conversation record ids (one call); see above."""
        return self._delete(
            Route.DELETE_CONVERSATIONS,
            "conversations",
            self.org.conversation_ids_field,
            conversation_ids,
        )

    def _delete(
        self, route: Route, path: str, field: str, raw_ids: Iterable[str]
    ) -> DeleteAccepted:
        batch = tuple(raw_ids)
        if not batch:
            raise ValueError("a delete needs at least one id")
        if len(batch) > self.org.max_ids_per_delete:
            raise ValueError(f"at most {self.org.max_ids_per_delete} ids per delete call")
        if len({sfids.to15(i) for i in batch}) != len(batch):
            raise ValueError("duplicate ids in one delete call")
        if not all(sfids.is_valid(i) for i in batch):
            raise ValueError("malformed Salesforce id in delete batch")

        def url(token: CachedToken) -> str:
            if not token.api_instance_url:
                raise errors.ConfigurationError(
                    "the token has no api_instance_url: grant the sfap_api scope"
                )
            return f"{token.api_instance_url}{ENGAGEMENT_PATH}/{path}"

        if self.org.delete_ids_in is DeleteIdsIn.QUERY:
            resp = self._transport.call(
                route, "DELETE", url, params={field: ",".join(batch)}, ids=batch
            )
        else:
            resp = self._transport.call(
                route, "DELETE", url, json_body={field: list(batch)}, ids=batch
            )
        try:
            raw_logs = resp.json()["conversationApiLogs"]
            logs = tuple(api_log(item) for item in raw_logs)
        except (ValueError, KeyError, TypeError) as exc:
            # Salesforce said yes but we cannot read which logs it made: as ambiguous as a 5xx.
            raise errors.AmbiguousDeleteError(
                f"{route}: unreadable {resp.status_code} body", ids=batch, status=resp.status_code
            ) from exc
        logger.info(
            "salesforce delete accepted",
            extra={"route": str(route), "ids": list(batch), "log_ids": [log.id for log in logs]},
        )
        return DeleteAccepted(ids=batch, logs=logs, status=resp.status_code)

    # -- logs ---------------------------------------------------------------------------------

    def api_logs(
        self, *, log_ids: Collection[str] = (), entity_ids: Collection[str] = ()
    ) -> list[ApiLog]:
        """ConversationApiLog rows by log id and/or by requested entity id (15-char matching).

        After an AmbiguousDeleteError, call this with the ids sent: those with a log were accepted.
        """
        found: dict[str, ApiLog] = {}
        fields = soql.LOG_FIELDS
        if log_ids:
            for r in self._query_in(
                soql.select(fields, "ConversationApiLog", "Id IN {ids}"), log_ids
            ):
                found[str(r["Id"])] = api_log_row(r)
        if entity_ids:
            short = {sfids.to15(i) for i in entity_ids}
            for r in self._query_in(
                soql.select(fields, "ConversationApiLog", "RequestedEntityIdentifier IN {ids}"),
                short,
            ):
                found[str(r["Id"])] = api_log_row(r)
        for log in found.values():
            if log.state is LogState.UNKNOWN:
                logger.warning(
                    "unknown ConversationApiLog status, treated as not final",
                    extra={"log_id": log.id, "status": log.status},
                )
        return sorted(found.values(), key=lambda log: log.id)

    def conversations_of(self, end_user_ids: Collection[str]) -> list[ConversationRef]:
        """Every conversation of these end users (through their sessions, open or ended), with
        the ConversationIdentifier the entries call takes."""
        if not end_user_ids:
            return []
        owner: dict[str, str] = {}
        for r in self._query_in(
            soql.select(soql.SESSION_FIELDS, "MessagingSession", "MessagingEndUserId IN {ids}"),
            end_user_ids,
        ):
            if r.get("ConversationId"):
                owner.setdefault(
                    sfids.to18(str(r["ConversationId"])), sfids.to18(str(r["MessagingEndUserId"]))
                )
        if not owner:
            return []
        rows = self._query_in(
            soql.select("Id, ConversationIdentifier", "Conversation", "Id IN {ids}"), list(owner)
        )
        return sorted(
            (
                ConversationRef(
                    id=sfids.to18(str(r["Id"])),
                    identifier=str(r["ConversationIdentifier"]),
                    end_user_id=owner[sfids.to18(str(r["Id"]))],
                )
                for r in rows
            ),
            key=lambda ref: ref.id,
        )

    # -- entries (optional, sparingly: each call marks the conversation active for 30 min) -----

    def entries_page(
        self,
        conversation_identifier: str,
        *,
        page_token: str | None = None,
        record_limit: int = 100,
    ) -> EntriesPage:
        """One call: one page of a conversation's entries WITH their content, for an access
        export only (the caller counts the call against the 90-per-minute window and keeps the
        content sealed). Never logged."""

        def url(token: CachedToken) -> str:
            return f"{token.api_instance_url}{ENGAGEMENT_PATH}/conversation-entries"

        params = {
            "conversationIdentifier": conversation_identifier,
            "recordLimit": str(record_limit),
        }
        if page_token:
            params["pageToken"] = page_token
        body = self._transport.call(Route.ENTRIES, "GET", url, params=params).json()
        entries = [dict(e) for e in body.get("conversationEntries", []) if isinstance(e, dict)]
        next_token = body.get("nextPageToken")
        return EntriesPage(entries=entries, next_page_token=str(next_token) if next_token else None)

    def conversation_entries(
        self, conversation_identifier: str, *, record_limit: int = 100
    ) -> list[EntryRef]:
        """Entry metadata of one conversation (by its ConversationIdentifier UUID), every page."""
        entries: list[EntryRef] = []
        token: str | None = None
        while True:
            page = self.entries_page(
                conversation_identifier, page_token=token, record_limit=record_limit
            )
            entries.extend(
                EntryRef(
                    identifier=str(e.get("identifier")),
                    entry_type=e.get("entryType"),
                    sender_role=(e.get("sender") or {}).get("role"),
                    server_received_at_ms=e.get("serverReceivedTimestamp"),
                )
                for e in page.entries
            )
            if not page.next_page_token:
                return entries
            token = page.next_page_token
