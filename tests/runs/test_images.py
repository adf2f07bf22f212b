"""Images a run produces: stored in the database, shown through the link's own token, served
to team members only."""

from __future__ import annotations

import io
from typing import Any

import httpx
import pytest
from PIL import Image

from signoff.approvals import tokens
from signoff.config import Settings
from tests.fakes.smtp import FakeSmtpServer
from tests.support import BROWSER, signup, wait_for_run, wait_for_subject

pytestmark = pytest.mark.postgres


async def test_image_step_through_link_and_assets(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    owner = await signup(client)
    stranger = await signup(client)
    created = await client.post(
        "/api/workflows", json={"goal": "Draw a banner for our launch"}, headers=owner.headers
    )
    workflow_id = created.json()["workflowId"]
    await client.post(
        f"/api/workflows/{workflow_id}/steps",
        json={
            "mode": "replace",
            "steps": [
                {
                    "description": "Draw the banner",
                    "toolName": "generate_image",
                    "toolInput": {"prompt": "A rocket over a city at dawn"},
                }
            ],
        },
        headers=owner.headers,
    )
    activated = await client.post(f"/api/workflows/{workflow_id}/activate", headers=owner.headers)
    run_id = activated.json()["workflowRuns"][0]["id"]
    run = await wait_for_run(client, owner, workflow_id, run_id, "awaiting_approval")
    token = tokens.issue_step_token(
        settings,
        workflow_id=workflow_id,
        run_id=run_id,
        conversation_id=run["conversationId"],
        step_index=0,
        attempt=1,
    )
    page = await client.get(
        f"/api/workflows/resume?token={token}&action=approve",
        headers={"User-Agent": BROWSER, "Accept": "text/html"},
    )
    assert f'src="/api/workflows/resume/image?token={token}"' in page.text
    image = await client.get(f"/api/workflows/resume/image?token={token}")
    assert image.status_code == 200
    assert image.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(image.content)).size[0] > 100
    bad = await client.get("/api/workflows/resume/image?token=forged")
    assert bad.status_code == 400

    [asset] = (
        await client.get("/api/assets", params={"type": "image"}, headers=owner.headers)
    ).json()
    assert asset["status"] == "pending"
    assert asset["url"] == f"/api/assets/{asset['id']}/content"
    mine = await client.get(asset["url"], headers=owner.headers)
    assert mine.content == image.content
    assert (await client.get(asset["url"], headers=stranger.headers)).status_code == 404
    assert (await client.get(asset["url"])).status_code == 401


@pytest.fixture
def settings_overrides(smtp_server: FakeSmtpServer) -> dict[str, Any]:
    return {"smtp_url": smtp_server.url}


async def test_the_approval_email_shows_the_image_inline(
    client: httpx.AsyncClient, smtp_server: FakeSmtpServer
) -> None:
    owner = await signup(client)
    created = await client.post(
        "/api/workflows", json={"goal": "Draw a banner for our launch"}, headers=owner.headers
    )
    workflow_id = created.json()["workflowId"]
    await client.post(
        f"/api/workflows/{workflow_id}/steps",
        json={
            "mode": "replace",
            "steps": [{"description": "Draw the banner", "toolName": "generate_image"}],
        },
        headers=owner.headers,
    )
    activated = await client.post(f"/api/workflows/{workflow_id}/activate", headers=owner.headers)
    run_id = activated.json()["workflowRuns"][0]["id"]
    await wait_for_run(client, owner, workflow_id, run_id, "awaiting_approval")
    message = await wait_for_subject(smtp_server, "Approval needed")
    html_part = message.get_body(preferencelist=("html",))
    assert html_part is not None
    [image] = [part for part in message.walk() if part.get_content_maintype() == "image"]
    content_id = str(image["Content-ID"]).strip("<>")
    assert f'src="cid:{content_id}"' in str(html_part.get_content())
    assert Image.open(io.BytesIO(image.get_content())).format == "PNG"
