"""The OpenAPI document is a contract a client can be generated from (docs/api.md).

``STATUSES`` is the table of every operation and the statuses it documents; the tests that
trigger each are listed in docs/api-status-table.md.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from signoff.app import create_app
from signoff.approvals.guard import BOT_USER_AGENT_MARKERS
from signoff.config import Settings
from signoff.errors import ErrorCode

ROOT = Path(__file__).resolve().parents[1]
ERROR_REF = "#/components/schemas/ErrorResponse"

AUTH = [401, 403, 404, 422]  # a session (401/403), X-Team-Id (404), parameters (422)
STATUSES: dict[tuple[str, str], tuple[str, list[int]]] = {
    ("POST", "/api/auth/signup"): ("signup", [201, 409, 413, 422]),
    ("POST", "/api/auth/login"): ("login", [200, 401, 404, 413, 422, 429]),
    ("POST", "/api/auth/logout"): ("logout", [204, 401, 403, 413]),
    ("GET", "/api/me"): ("getMe", [200, *AUTH]),
    ("POST", "/api/me/verification-email"): ("sendVerificationEmail", [200, *AUTH, 409, 413, 429]),
    ("POST", "/api/workflows"): ("createWorkflow", [201, *AUTH, 413, 429, 502]),
    ("GET", "/api/workflows"): ("listWorkflows", [200, *AUTH]),
    ("GET", "/api/approvals"): ("listApprovals", [200, *AUTH]),
    ("GET", "/api/workflows/{workflow_id}"): ("getWorkflow", [200, *AUTH]),
    ("PATCH", "/api/workflows/{workflow_id}"): ("changeSchedule", [200, *AUTH, 409, 413]),
    ("POST", "/api/workflows/{workflow_id}/steps"): ("editSteps", [200, *AUTH, 409, 413]),
    ("POST", "/api/workflows/{workflow_id}/activate"): ("activateWorkflow", [200, *AUTH, 409, 413]),
    ("POST", "/api/workflows/{workflow_id}/archive"): ("archiveWorkflow", [200, *AUTH, 409, 413]),
    ("POST", "/api/workflows/{workflow_id}/approval-email"): (
        "resendPlanEmail",
        [200, *AUTH, 409, 413],
    ),
    ("GET", "/api/workflows/{workflow_id}/fires"): ("listFires", [200, *AUTH]),
    ("POST", "/api/workflows/{workflow_id}/run"): ("startRun", [201, *AUTH, 409, 413, 429]),
    ("GET", "/api/workflows/{workflow_id}/runs"): ("listRuns", [200, *AUTH]),
    ("GET", "/api/workflows/{workflow_id}/runs/{run_id}"): ("getRun", [200, *AUTH]),
    ("POST", "/api/workflows/{workflow_id}/runs/{run_id}/stop"): (
        "stopRun",
        [200, *AUTH, 409, 413],
    ),
    ("POST", "/api/workflows/{workflow_id}/runs/{run_id}/decision"): (
        "decideStep",
        [200, *AUTH, 409, 413],
    ),
    ("POST", "/api/workflows/{workflow_id}/runs/{run_id}/approval-email"): (
        "resendStepEmail",
        [200, *AUTH, 409, 413],
    ),
    ("GET", "/api/workflows/{workflow_id}/approve"): ("openPlanLink", [200, 303, 400, 422]),
    ("POST", "/api/workflows/{workflow_id}/approve"): (
        "approvePlanLink",
        [303, 400, 403, 413, 422],
    ),
    ("GET", "/api/runs"): ("listTeamRuns", [200, *AUTH]),
    ("POST", "/api/workflows/{workflow_id}/runs/{run_id}/rerun"): (
        "rerunRun",
        [201, *AUTH, 409, 413, 429],
    ),
    ("POST", "/api/workflows/{workflow_id}/runs/{run_id}/retry"): (
        "retryRun",
        [201, *AUTH, 409, 413, 429],
    ),
    ("GET", "/api/workflows/resume"): ("openStepLink", [200, 303, 400, 422]),
    ("POST", "/api/workflows/resume"): ("decideStepLink", [303, 400, 403, 413, 422]),
    ("GET", "/api/assets"): ("listAssets", [200, *AUTH]),
    ("GET", "/api/audit"): ("listAuditEvents", [200, *AUTH]),
    ("GET", "/api/assets/{asset_id}/content"): ("getAssetContent", [200, *AUTH]),
    ("GET", "/api/memory"): ("listMemory", [200, *AUTH]),
    ("GET", "/api/memory/{key}"): ("getMemory", [200, *AUTH]),
    ("PUT", "/api/memory/{key}"): ("putMemory", [200, *AUTH, 413]),
    ("DELETE", "/api/memory/{key}"): ("deleteMemory", [204, *AUTH, 413]),
    ("GET", "/api/teams/{team_id}/members"): ("listMembers", [200, *AUTH]),
    ("PATCH", "/api/teams/{team_id}/members/{user_id}"): ("changeRole", [200, *AUTH, 409, 413]),
    ("DELETE", "/api/teams/{team_id}/members/{user_id}"): ("removeMember", [204, *AUTH, 409, 413]),
    ("POST", "/api/teams/{team_id}/leave"): ("leaveTeam", [204, *AUTH, 409, 413]),
    ("POST", "/api/teams/{team_id}/invitations"): ("inviteMember", [201, *AUTH, 409, 413, 429]),
    ("GET", "/api/teams/{team_id}/invitations"): ("listInvitations", [200, *AUTH]),
    ("DELETE", "/api/teams/{team_id}/invitations/{invitation_id}"): (
        "revokeInvitation",
        [204, *AUTH, 409, 413],
    ),
}
LINK_OPERATIONS = ["openPlanLink", "approvePlanLink", "openStepLink", "decideStepLink"]


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    workdir = tmp_path_factory.mktemp("openapi")
    app = create_app(Settings(_env_file=None, data_dir=workdir, token_secret="x" * 40))  # type: ignore[call-arg]
    return app.openapi()


def operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method.upper(), path): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }


def test_every_operation_has_its_id_summary_one_tag_and_statuses(document: dict[str, Any]) -> None:
    found = operations(document)
    assert set(found) == set(STATUSES)
    for key, operation in found.items():
        operation_id, statuses = STATUSES[key]
        assert operation["operationId"] == operation_id
        assert re.fullmatch(r"[a-z]+(?:[A-Z][a-z]+)*", operation_id)
        assert operation["summary"], key
        assert len(operation["tags"]) == 1, key
        assert sorted(int(status) for status in operation["responses"]) == sorted(statuses), key
    tags = {tag["name"]: tag["description"] for tag in document["tags"]}
    assert {operation["tags"][0] for operation in found.values()} <= set(tags)
    assert all(tags.values())


def test_every_error_answer_is_the_one_error_model(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    assert "ValidationError" not in schemas
    error = schemas["ErrorResponse"]
    assert error["required"] == ["error", "code"]
    assert set(error["properties"]) == {"error", "code", "details"}
    assert schemas["ErrorCode"]["enum"] == [code.value for code in ErrorCode]
    for key, operation in operations(document).items():
        for status, answer in operation["responses"].items():
            if int(status) >= 400:
                schema = answer["content"]["application/json"]["schema"]
                assert schema == {"$ref": ERROR_REF}, (key, status)


def test_response_schemas_are_named_and_list_every_field_as_required(
    document: dict[str, Any],
) -> None:
    schemas = document["components"]["schemas"]
    for key, operation in operations(document).items():
        for status, answer in operation["responses"].items():
            for media_type, content in answer.get("content", {}).items():
                schema = content["schema"]
                if media_type == "application/json":
                    assert set(schema) == {"$ref"}, (key, status)
                else:  # HTML pages and the bytes or text of an asset
                    assert schema["type"] == "string", (key, status, media_type)
    for name, schema in schemas.items():
        if name.endswith(("Out", "Response", "Detail", "Summary", "Pending")) and "properties" in (
            schema
        ):
            optional = set(schema["properties"]) - set(schema.get("required", []))
            assert optional <= {"details"}, (name, optional)


def test_links_document_their_redirect_pages_and_the_scanner_list(
    document: dict[str, Any],
) -> None:
    by_id = {operation["operationId"]: operation for operation in operations(document).values()}
    for operation_id in LINK_OPERATIONS:
        operation = by_id[operation_id]
        assert "Location" in operation["responses"]["303"]["headers"]
        assert "text/html" in operation["responses"]["400"]["content"]
        for marker in BOT_USER_AGENT_MARKERS:
            assert f"`{marker}`" in operation["description"], (operation_id, marker)
        assert "decides with `POST`" in operation["description"]
    assert "text/html" in by_id["openPlanLink"]["responses"]["200"]["content"]
    assert "text/html" in by_id["openStepLink"]["responses"]["200"]["content"]
    assert set(by_id["getAssetContent"]["responses"]["200"]["content"]) == {
        "image/png",
        "image/jpeg",
        "image/webp",
        "text/plain",
        "text/markdown",
    }


def test_the_seed_endpoints_have_examples(document: dict[str, Any]) -> None:
    by_id = {operation["operationId"]: operation for operation in operations(document).values()}
    create = by_id["createWorkflow"]
    assert create["requestBody"]["content"]["application/json"]["examples"]
    for operation_id, status in [
        ("createWorkflow", "201"),
        ("listWorkflows", "200"),
        ("listApprovals", "200"),
        ("getWorkflow", "200"),
        ("editSteps", "200"),
        ("startRun", "201"),
        ("stopRun", "200"),
        ("listTeamRuns", "200"),
        ("rerunRun", "201"),
        ("retryRun", "201"),
        ("openPlanLink", "400"),
        ("openStepLink", "400"),
    ]:
        assert by_id[operation_id]["responses"][status]["content"]["application/json"]["example"]


def test_browser_clients_learn_how_to_send_the_csrf_token(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    assert schemes["sessionCookie"]["name"] == "signoff_session"
    assert "X-CSRF-Token" in schemes["sessionCookie"]["description"]
    assert "csrfToken" in document["components"]["schemas"]["MeResponse"]["required"]
    assert "X-CSRF-Token" in document["info"]["description"]


def test_the_readme_publishes_the_guards_scanner_list() -> None:
    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- scanner-markers -->")[1].split("<!-- /scanner-markers -->")[0]
    listed = re.findall(r"`([^`]+)`", block)
    assert listed == list(BOT_USER_AGENT_MARKERS), "README's scanner list differs from guard.py"


def _examples(content: dict[str, Any]) -> list[tuple[str, Any]]:
    found = [("example", content["example"])] if "example" in content else []
    return found + [(name, e["value"]) for name, e in content.get("examples", {}).items()]


def test_every_example_is_valid_against_its_schema(document: dict[str, Any]) -> None:
    """A client generated from the document, or a reader copying an example, gets what the
    schema promises: each request and response example validates against its schema."""
    invalid = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            bodies = [("request", operation.get("requestBody", {}).get("content", {}))]
            bodies += [
                (status, r.get("content", {})) for status, r in operation["responses"].items()
            ]
            for where, contents in bodies:
                content = contents.get("application/json")
                if not content or "schema" not in content:
                    continue
                schema = {**content["schema"], "components": document["components"]}
                validator = Draft202012Validator(schema)
                for name, value in _examples(content):
                    for error in validator.iter_errors(value):
                        invalid.append(f"{method.upper()} {path} {where} {name}: {error.message}")
    assert not invalid, "\n".join(invalid)
