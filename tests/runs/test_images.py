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
from tests.support.accounts import BROWSER, Account, signup
from tests.support.mailbox import mail_to
from tests.support.smtp import FakeSmtpServer
from tests.support.workflows import activate, create_workflow, wait_for_run

pytestmark = pytest.mark.postgres


async def paused_image_run(
    client: httpx.AsyncClient, owner: Account, tool_input: dict[str, str] | None = None
) -> dict[str, Any]:
    """A workflow whose one step draws the banner, approved: its run 1 waiting at the image."""
    workflow_id = (await create_workflow(client, owner, "Draw a banner for our launch"))[
        "workflowId"
    ]
    step = {"description": "Draw the banner", "toolName": "generate_image"}
    await client.post(
        f"/api/workflows/{workflow_id}/steps",
        json={
            "mode": "replace",
            "steps": [step | ({"toolInput": tool_input} if tool_input else {})],
        },
        headers=owner.headers,
    )
    run_id = await activate(client, owner, workflow_id)
    return await wait_for_run(client, owner, workflow_id, run_id, "awaiting_approval")


async def test_image_step_through_link_and_assets(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    owner = await signup(client)
    stranger = await signup(client)
    run = await paused_image_run(client, owner, {"prompt": "A rocket over a city at dawn"})
    workflow_id, run_id = run["workflowId"], run["id"]
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
    await paused_image_run(client, owner)
    message = await mail_to(smtp_server, owner.email, "Approval needed")
    html_part = message.get_body(preferencelist=("html",))
    assert html_part is not None
    [image] = [part for part in message.walk() if part.get_content_maintype() == "image"]
    content_id = str(image["Content-ID"]).strip("<>")
    assert f'src="cid:{content_id}"' in str(html_part.get_content())
    assert Image.open(io.BytesIO(image.get_content())).format == "PNG"
