"""Which request shape an org's DELETE calls accept, found without deleting anything.

Salesforce does not document whether the Conversation Data API deletes take their ids in a JSON
body or in the query string. The probe asks the org itself: one `DELETE conversation-participants`
per shape with a MessagingEndUser id that no org can hold, judged against what the client relies
on (docs/salesforce.md, "The contract"):

- 202: the shape is understood; Salesforce logged a request for an id that does not exist (its
  ConversationApiLog will end FAILED). Nothing is deleted.
- 404: the shape is understood and the id reported unknown. Only meaningful because the check has
  just seen the engagement API answer (a switched-off API answers 404 to everything).
- 400: this shape is not understood: try the other one.
- 429: this execution user's delete quota is used up: nothing can be learnt now.

The configured shape is tried first, so an org set up right costs one call. Salesforce may count
each probe against the execution user's delete quota (10 calls per hour): the check says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from erasure.salesforce.check_report import Outcome, Step
from erasure.salesforce.client.probe import OrgProbe, ProbeResponse
from erasure.salesforce.config import DeleteIdsIn, OrgSettings

#: A MessagingEndUser id (prefix 0PA, valid checksum) that no org holds: instance "00" and record
#: number 0 are never issued.
IMPOSSIBLE_ID = "0PA000000000000GAA"
PATH = "/platform/engagement/v1.0/conversation-participants"


@dataclass
class ShapeFinding:
    """What the probe learnt: the accepted shape (None: none, or could not tell) and each answer."""

    accepted: DeleteIdsIn | None = None
    answers: list[tuple[DeleteIdsIn, ProbeResponse]] = field(default_factory=list)

    @property
    def calls(self) -> int:
        return len(self.answers)

    @property
    def last(self) -> ProbeResponse:
        return self.answers[-1][1]


def _send(
    probe: OrgProbe, org: OrgSettings, api_url: str, token: str, shape: DeleteIdsIn
) -> ProbeResponse:
    name = org.participant_ids_field
    if shape is DeleteIdsIn.QUERY:
        return probe.delete(api_url + PATH, token, params={name: IMPOSSIBLE_ID})
    return probe.delete(api_url + PATH, token, json_body={name: [IMPOSSIBLE_ID]})


def find_delete_shape(
    probe: OrgProbe, org: OrgSettings, *, api_url: str, token: str
) -> ShapeFinding:
    """Probe the configured shape, then the other one if the org did not understand it."""
    finding = ShapeFinding()
    others = [shape for shape in DeleteIdsIn if shape is not org.delete_ids_in]
    for shape in (org.delete_ids_in, *others):
        resp = _send(probe, org, api_url, token, shape)
        finding.answers.append((shape, resp))
        if resp.status in (202, 404):
            finding.accepted = shape
            return finding
        if resp.status != 400:
            return finding  # 429, 401, 5xx, no answer: nothing more to learn from the other
    return finding


DELETE_STEP = "Delete request shape"
_SHAPE = {DeleteIdsIn.BODY: "ids in a JSON body", DeleteIdsIn.QUERY: "ids in the query string"}
_HOW = {
    202: "202: Salesforce logged a request for an id that does not exist; that "
    "ConversationApiLog ends FAILED and nothing is deleted",
    404: "404: the id is reported unknown; nothing is deleted",
}


def shape_step(finding: ShapeFinding, org: OrgSettings) -> Step:
    """The check's step for what the probe learnt, against the org's configured shape."""
    configured, accepted, last = org.delete_ids_in, finding.accepted, finding.last
    if accepted is configured:
        return Step(DELETE_STEP, Outcome.PASS, f"{_SHAPE[accepted]} ({_HOW[last.status or 0]})")
    if accepted is not None:
        return Step(
            DELETE_STEP,
            Outcome.FAIL,
            f"the org takes {_SHAPE[accepted]}, not {_SHAPE[configured]}",
            f"Set the org: `erasure orgs set <org> --delete-ids-in {accepted.value}` (and pass "
            f"--delete-ids-in {accepted.value} to this check).",
        )
    if last.status == 400:
        return Step(
            DELETE_STEP,
            Outcome.FAIL,
            f"neither {_SHAPE[DeleteIdsIn.BODY]} nor {_SHAPE[DeleteIdsIn.QUERY]} under the name "
            f"{org.participant_ids_field} was understood (HTTP 400 to both)",
            f"Salesforce documents neither the shape nor the name {org.participant_ids_field}: "
            "find the org's own in a Flow's deleteConversationParticipantsByParticipantEntityId "
            "action and set it with `erasure orgs set <org> --participants-field NAME`.",
        )
    if last.status == 429:
        return Step(
            DELETE_STEP,
            Outcome.WARN,
            f"HTTP 429 (Retry-After {last.retry_after or '?'} s): this execution user's delete "
            "quota is used up, so the shape is unknown",
            "Run the check again once the hour has passed, or with another execution user.",
        )
    if last.status == 401:
        return Step(DELETE_STEP, Outcome.FAIL, "401 on DELETE", "Grant the sfap_api scope.")
    return Step(
        DELETE_STEP,
        Outcome.WARN,
        f"could not tell: {last.problem or f'HTTP {last.status}'}",
        "Run the check again; a 5xx from Salesforce is usually brief.",
    )
