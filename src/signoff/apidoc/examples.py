"""Example requests and answers of the seed API's workflow endpoints, for the OpenAPI document
(they show in /docs and /redoc). Shapes only: ids and times are made up."""

from __future__ import annotations

from typing import Any

WORKFLOW_ID = "0b9f3c1e-6a55-4d8e-9a51-2f1c7f3f9e10"
_GOAL = "Publish a weekly LinkedIn post about AI news every Monday morning"

STEPS: list[dict[str, Any]] = [
    {
        "stepIndex": 0,
        "description": "Search the web for this week's AI news",
        "toolName": "web_search",
        "toolInput": {"query": "AI news this week"},
        "requiresApproval": False,
        "approvalPrompt": None,
    },
    {
        "stepIndex": 1,
        "description": "Outline the post from the three most important stories",
        "toolName": "generate_outline",
        "toolInput": {"topic": "This week in AI"},
        "requiresApproval": False,
        "approvalPrompt": None,
    },
    {
        "stepIndex": 2,
        "description": "Write the LinkedIn post",
        "toolName": "format_post",
        "toolInput": {"platform": "linkedin"},
        "requiresApproval": True,
        "approvalPrompt": "Is the post accurate and in our voice?",
    },
]

CREATE_EXAMPLES: dict[str, Any] = {
    "weekly": {
        "summary": "A weekly post",
        "value": {"goal": _GOAL, "schedule": "0 9 * * MON", "timezone": "Europe/Paris"},
    },
    "once": {"summary": "No schedule (run it by hand)", "value": {"goal": _GOAL}},
}

CREATED: dict[str, Any] = {
    "workflowId": WORKFLOW_ID,
    "title": "Weekly AI news post",
    "steps": STEPS,
    "status": "draft",
    "message": "Plan drafted. Check your email: the plan approval link went to owner@example.com.",
    "plannedBy": "offline",
    "emailedTo": ["owner@example.com"],
}

RUN_SUMMARY: dict[str, Any] = {
    "id": 42,
    "runNumber": 3,
    "status": "awaiting_approval",
    "trigger": "schedule",
    "conversationId": "5d0c8a3e-1f7b-4c52-8e0a-6b9d2c4f7a11",
    "currentStepIndex": 2,
    "stepCount": 3,
    "failureReason": None,
    "failedStepIndex": None,
    "startedAt": "2026-03-02T08:00:00Z",
    "finishedAt": None,
    "inputTokens": 5120,
    "outputTokens": 830,
    "modelRequests": 3,
    "estimatedCostUsd": 0.0211,
    "rerunOfRunId": None,
    "rerunFromStepIndex": None,
}

_WORKFLOW: dict[str, Any] = {
    "id": WORKFLOW_ID,
    "title": "Weekly AI news post",
    "goal": _GOAL,
    "status": "active",
    "schedule": "0 9 * * MON",
    "scheduleDescription": "At 09:00, only on Monday",
    "timezone": "Europe/Paris",
    "nextRunAt": "2026-03-09T08:00:00Z",
    "planRevision": 1,
    "plannedBy": "offline",
    "createdAt": "2026-02-23T10:15:00Z",
    "updatedAt": "2026-02-23T10:20:00Z",
    "activatedAt": "2026-02-23T10:20:00Z",
}

LIST_ITEM: dict[str, Any] = {**_WORKFLOW, "stepCount": 3, "latestRun": RUN_SUMMARY}

DETAIL: dict[str, Any] = {**_WORKFLOW, "workflowSteps": STEPS, "workflowRuns": [RUN_SUMMARY]}

EDIT_EXAMPLES: dict[str, Any] = {
    "merge": {
        "summary": "Change one step, append another",
        "value": {
            "steps": [
                {**STEPS[0], "toolInput": {"query": "AI research news this week"}},
                {
                    "description": "Draw an image for the post",
                    "toolName": "generate_image",
                    "toolInput": {"prompt": "An abstract illustration of AI news"},
                    "requiresApproval": True,
                },
            ],
            "mode": "merge",
        },
    },
    "replace": {
        "summary": "Set the whole plan",
        "value": {"steps": [STEPS[1], STEPS[2]], "mode": "replace"},
    },
}

STARTED: dict[str, Any] = {
    "runId": 43,
    "conversationId": "9e2f4b6a-3c1d-4e8f-a7b5-0d6c8e2f4a13",
    "message": "Workflow run started",
}

RUN_PAGE: dict[str, Any] = {"runs": [RUN_SUMMARY], "nextCursor": None}

STOPPED: dict[str, Any] = {
    **RUN_SUMMARY,
    "status": "failed",
    "failureReason": "Stopped by user",
    "finishedAt": "2026-03-02T08:05:00Z",
}

_PLAN_LINK_PENDING: dict[str, Any] = {
    "message": "Nothing was decided yet: POST to this URL to approve the plan.",
    "workflowId": WORKFLOW_ID,
    "title": "Weekly AI news post",
}
_STEP_LINK_PENDING: dict[str, Any] = {
    "message": "Nothing was decided yet: POST to this URL to approve the step.",
    "runId": 42,
    "stepIndex": 2,
    "attempt": 1,
    "output": "This week in AI: three stories worth your coffee break…",
}
_LINK_REFUSED: dict[str, Any] = {
    "error": "This link has expired. Ask for a fresh approval email from the dashboard.",
    "code": "link_expired",
}

_WAITING_POST: dict[str, Any] = {
    **STEPS[2],
    "status": "awaiting_approval",
    "attempt": 2,
    "output": "This week in AI: three stories worth your coffee break…\n\n#AI",
    "outputData": {"platform": "linkedin", "text": "This week in AI: …", "hashtags": ["#AI"]},
    "warnings": [],
    "error": None,
    "feedback": "Shorter, and name the sources",
    "modelOutput": None,
    "previousOutput": "This week in AI brought a flood of announcements…\n\n#AI",
    "startedAt": "2026-03-02T09:00:41+00:00",
    "finishedAt": None,
    "inputTokens": 1840,
    "outputTokens": 212,
    "estimatedCostUsd": 0.0067,
    "decidedBy": None,
}
APPROVALS: dict[str, Any] = {
    "count": 2,
    "items": [
        {
            "kind": "step",
            "workflowId": WORKFLOW_ID,
            "workflowTitle": "Weekly AI news post",
            "waitingSince": "2026-03-02T09:00:44+00:00",
            "url": f"/dashboard/workflows/{WORKFLOW_ID}/runs/42",
            "planRevision": None,
            "planSteps": None,
            "runId": 42,
            "runNumber": 3,
            "stepCount": 3,
            "step": _WAITING_POST,
            "editable": True,
        },
        {
            "kind": "plan",
            "workflowId": "5d0c2a8e-1f3b-4c6d-8e9f-0a1b2c3d4e5f",
            "workflowTitle": "Monthly customer newsletter",
            "waitingSince": "2026-03-02T10:15:00+00:00",
            "url": "/dashboard/workflows/5d0c2a8e-1f3b-4c6d-8e9f-0a1b2c3d4e5f",
            "planRevision": 1,
            "planSteps": STEPS,
            "runId": None,
            "runNumber": None,
            "stepCount": None,
            "step": None,
            "editable": False,
        },
    ],
}
DECISION_EXAMPLES: dict[str, Any] = {
    "approve": {"summary": "Approve as produced", "value": {"action": "approve"}},
    "edit": {
        "summary": "Edit the post, then approve",
        "value": {
            "action": "approve",
            "editedText": "This week in AI: three stories, and why they matter to you.\n\n#AI",
            "attempt": 2,
        },
    },
    "reject": {
        "summary": "Request changes",
        "value": {"action": "reject", "note": "Shorter, and name the sources"},
    },
}

TEAM_RUN_PAGE: dict[str, Any] = {
    "runs": [{**RUN_SUMMARY, "workflowId": WORKFLOW_ID, "workflowTitle": "Weekly AI news post"}],
    "nextCursor": "cjEuMTc3MjQzODQwMDAwMDAwMC40Mg",
}

RERUN: dict[str, Any] = {
    **RUN_SUMMARY,
    "id": 44,
    "runNumber": 4,
    "status": "running",
    "trigger": "manual",
    "currentStepIndex": 1,
    "inputTokens": 0,
    "outputTokens": 0,
    "modelRequests": 0,
    "rerunOfRunId": 42,
    "rerunFromStepIndex": 1,
}

_RUN_ACTIVE: dict[str, Any] = {
    "error": "A run of this workflow is already active; wait for it or stop it.",
    "code": "run_active",
}

# By operationId: "request" is the JSON body's named examples, the rest JSON answers by status.
EXAMPLES: dict[str, dict[str, Any]] = {
    "createWorkflow": {
        "request": CREATE_EXAMPLES,
        "201": CREATED,
        "422": {
            "error": "Invalid request: schedule: a schedule has exactly five fields.",
            "code": "validation_error",
            "details": [{"field": "schedule", "message": "a schedule has exactly five fields"}],
        },
    },
    "listWorkflows": {"200": [LIST_ITEM]},
    "listApprovals": {"200": APPROVALS},
    "decideStep": {
        "request": DECISION_EXAMPLES,
        "422": {
            "error": "A linkedin post may have at most 3000 characters; the edit has 3120.",
            "code": "edit_not_allowed",
        },
    },
    "getWorkflow": {
        "200": DETAIL,
        "404": {"error": "No workflow with this id.", "code": "workflow_not_found"},
    },
    "editSteps": {"request": EDIT_EXAMPLES, "200": {**DETAIL, "status": "draft"}},
    "openPlanLink": {"200": _PLAN_LINK_PENDING, "400": _LINK_REFUSED},
    "approvePlanLink": {"400": _LINK_REFUSED},
    "startRun": {
        "201": STARTED,
        "409": {"error": "A run of this workflow is already active.", "code": "run_active"},
        "422": {"error": "Only an active workflow can run.", "code": "workflow_not_active"},
    },
    "openStepLink": {"200": _STEP_LINK_PENDING, "400": _LINK_REFUSED},
    "decideStepLink": {"400": _LINK_REFUSED},
    "stopRun": {
        "200": STOPPED,
        "409": {"error": "This run has already ended (completed).", "code": "run_ended"},
    },
    "listRuns": {"200": RUN_PAGE},
    "listTeamRuns": {"200": TEAM_RUN_PAGE},
    "rerunRun": {
        "request": {
            "fromStep2": {
                "summary": "Keep step 1, run steps 2.. again",
                "value": {"fromStepIndex": 1},
            }
        },
        "201": RERUN,
        "409": _RUN_ACTIVE,
        "422": {
            "error": "Run 3 cannot be rerun from step 3: a rerun starts at a step whose earlier "
            "steps all completed.",
            "code": "step_not_rerunnable",
            "details": [
                {"field": "fromStepIndex", "message": "not a step this run can rerun from"}
            ],
        },
    },
    "retryRun": {
        "201": {**RERUN, "currentStepIndex": 2, "rerunFromStepIndex": 2},
        "409": {
            "error": "This run completed: there is nothing to retry. Rerun it from a step instead.",
            "code": "nothing_to_retry",
        },
    },
}
