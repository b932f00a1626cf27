"""The OpenAPI 3.1 document is generated from the code and valid."""

from flask.testing import FlaskClient
from openapi_spec_validator import validate


def test_openapi_document_is_valid_3_1_and_describes_the_api(client: FlaskClient) -> None:
    document = client.get("/openapi.json").get_json()
    validate(document)
    assert document["openapi"] == "3.1.0"
    create = document["paths"]["/v1/erasure-requests"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErasureSubmissionIn"
    }
    erasure_in = document["components"]["schemas"]["ErasureSubmissionIn"]
    assert {"subject", "regulation", "scope", "conversations"} <= set(erasure_in["properties"])
    assert set(create["responses"]) >= {"202", "400", "401", "403", "409", "413", "415", "422"}
    assert create["responses"]["422"]["content"]["application/problem+json"]["schema"][
        "$ref"
    ].endswith("/ProblemOut")
    assert "Idempotency-Key" in [p["name"] for p in create["parameters"]]
    subject = document["components"]["schemas"]["SubjectIn"]
    assert set(subject["properties"]) == {
        "phone",
        "email",
        "messaging_platform_key",
        "contact_id",
        "messaging_end_user_ids",
    }
    assert subject["additionalProperties"] is False
    get = document["paths"]["/v1/erasure-requests/{request_id}"]["get"]
    assert get["parameters"][0] == {
        "name": "request_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "format": "uuid"},
    }
    assert "officer" in get["description"]
