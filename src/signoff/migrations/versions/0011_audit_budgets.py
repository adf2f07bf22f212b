"""audit trail, plan drafts for the team budgets, the model a run was started with

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import signoff.models.base

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("team_id", sa.String(), nullable=False),
        sa.Column("at", signoff.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor_user_id", sa.String(), nullable=True),
        sa.Column("actor", sa.String(length=320), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("user_agent", sa.String(length=300), nullable=True),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("object_type", sa.String(length=24), nullable=False),
        sa.Column("object_id", sa.String(length=120), nullable=False),
        sa.Column("workflow_id", sa.String(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_user_id"],
            ["users.id"],
            name=op.f("fk_audit_events_actor_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["teams.id"],
            name=op.f("fk_audit_events_team_id_teams"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index("ix_audit_events_team_page", ["team_id", "id"], unique=False)
        batch_op.create_index(
            "ix_audit_events_object", ["team_id", "object_type", "object_id"], unique=False
        )
        batch_op.create_index("ix_audit_events_workflow", ["team_id", "workflow_id"], unique=False)
    op.create_table(
        "plan_drafts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("team_id", sa.String(), nullable=False),
        sa.Column("requested_by", sa.String(), nullable=True),
        sa.Column("requested_at", signoff.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("input_tokens", sa.Integer(), nullable=False),
        sa.Column("output_tokens", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["requested_by"],
            ["users.id"],
            name=op.f("fk_plan_drafts_requested_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["teams.id"],
            name=op.f("fk_plan_drafts_team_id_teams"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan_drafts")),
    )
    with op.batch_alter_table("plan_drafts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_plan_drafts_team_requested", ["team_id", "requested_at"], unique=False
        )
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("model_name", sa.String(length=120), nullable=False, server_default="")
        )


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_column("model_name")
    with op.batch_alter_table("plan_drafts", schema=None) as batch_op:
        batch_op.drop_index("ix_plan_drafts_team_requested")
    op.drop_table("plan_drafts")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_events_workflow")
        batch_op.drop_index("ix_audit_events_object")
        batch_op.drop_index("ix_audit_events_team_page")
    op.drop_table("audit_events")
