"""The seed flow through HTTP and a real SMTP server, on both databases (SPEC §1, issue 4)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.accounts import BROWSER, signup
from tests.support.mailbox import links_in, text_of, wait_for_mail
from tests.support.smtp import FakeSmtpServer
from tests.support.workflows import SEED_GOAL, create_workflow, wait_for_run

pytestmark = pytest.mark.postgres


@pytest.fixture
def settings_overrides(smtp_server: FakeSmtpServer) -> dict[str, Any]:
    return {"smtp_url": smtp_server.url}


async def test_seed_flow(client: httpx.AsyncClient, smtp_server: FakeSmtpServer) -> None:
    owner = await signup(client, "owner@example.com")
    await wait_for_mail(smtp_server, 1)  # the verification email signup sends
    smtp_server.messages.clear()
    created = await create_workflow(client, owner, SEED_GOAL)
    workflow_id = created["workflowId"]
    steps = created["steps"]
    post_index = [step["toolName"] for step in steps].index("format_post")

    # Approve the plan from the email: the workflow is active and run 1 starts.
    [plan_mail] = await wait_for_mail(smtp_server, 1)
    [approve_plan] = [link for link in links_in(plan_mail) if "/approve?" in link]
    assert (await client.post(approve_plan)).status_code == 303
    detail = (await client.get(f"/api/workflows/{workflow_id}", headers=owner.headers)).json()
    assert detail["status"] == "active"
    [run] = detail["workflowRuns"]
    assert run["runNumber"] == 1
    assert run["trigger"] == "approval"

    # The format_post step pauses with one email carrying the post preview.
    paused = await wait_for_run(client, owner, workflow_id, run["id"], "awaiting_approval")
    assert paused["currentStepIndex"] == post_index
    post_step = paused["steps"][post_index]
    assert post_step["status"] == "awaiting_approval"
    assert post_step["attempt"] == 1
    assert all(step["status"] == "completed" for step in paused["steps"][:post_index])
    first_post = post_step["output"]
    mails = await wait_for_mail(smtp_server, 2)
    step_mail = mails[1]
    assert "Approval needed" in str(step_mail["Subject"])
    assert first_post.splitlines()[0] in text_of(step_mail)
    approve_link, reject_link = (
        next(link for link in links_in(step_mail) if "action=approve" in link),
        next(link for link in links_in(step_mail) if "action=reject" in link),
    )

    # Reject with a note: the step runs again as attempt 2 with the feedback, a new email.
    rejected = await client.post(
        reject_link,
        data={"note": "Make it shorter and mention our webinar"},
        headers={"User-Agent": BROWSER},
    )
    assert rejected.status_code == 303
    revised = await wait_for_run(client, owner, workflow_id, run["id"], "awaiting_approval")
    revised_step = revised["steps"][post_index]
    assert revised_step["attempt"] == 2
    assert revised_step["feedback"] == "Make it shorter and mention our webinar"
    assert revised_step["output"] != first_post
    assert "webinar" in revised_step["output"].lower()
    mails = await wait_for_mail(smtp_server, 3)
    second_step_mail = mails[2]
    assert "attempt 2" in str(second_step_mail["Subject"])
    # The first email's links are dead now.
    stale = await client.post(approve_link)
    assert stale.status_code == 400
    assert stale.json()["code"] in ("already_decided", "stale_attempt")

    new_approve = next(link for link in links_in(second_step_mail) if "action=approve" in link)
    assert (await client.post(new_approve)).status_code == 303
    done = await wait_for_run(client, owner, workflow_id, run["id"], "completed")
    assert done["finishedAt"] is not None
    assert all(step["status"] == "completed" for step in done["steps"])

    # The approved text, byte for byte, is the social_post asset.
    assets = (
        await client.get(
            "/api/assets", params={"runId": run["id"], "type": "social_post"}, headers=owner.headers
        )
    ).json()
    final = [asset for asset in assets if asset["status"] == "final"]
    assert [asset["content"] for asset in final] == [revised_step["output"]]
    assert {asset["status"] for asset in assets} == {"final", "discarded"}

    # The conversation shows the rejection and the approval.
    texts = [message.get("text") or "" for message in done["messages"]]
    assert "Rejected. Feedback: Make it shorter and mention our webinar. Please revise." in texts
    assert "Approved. Please continue." in texts
    tool_calls = [m["toolName"] for m in done["messages"] if m["kind"] == "tool_call"]
    assert tool_calls.count("format_post") == 2

    # The completion email closes the flow: plan, two step emails, completion.
    mails = await wait_for_mail(smtp_server, 4)
    assert "completed" in str(mails[3]["Subject"])
    assert len(smtp_server.messages) == 4
