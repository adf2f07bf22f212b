"""schedule fire log

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import signoff.models.base

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "schedule_fires",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("workflow_id", sa.String(), nullable=False),
        sa.Column("team_id", sa.String(), nullable=False),
        sa.Column("due_at", signoff.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("handled_at", signoff.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "outcome",
            sa.Enum(
                "started", "skipped", "missed", name="fireoutcome", native_enum=False, length=16
            ),
            nullable=False,
        ),
        sa.Column("catch_up", sa.Boolean(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_schedule_fires_run_id_runs"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["teams.id"],
            name=op.f("fk_schedule_fires_team_id_teams"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workflow_id"],
            ["workflows.id"],
            name=op.f("fk_schedule_fires_workflow_id_workflows"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedule_fires")),
        sa.UniqueConstraint(
            "workflow_id", "due_at", "catch_up", name=op.f("uq_schedule_fires_workflow_id")
        ),
    )
    with op.batch_alter_table("schedule_fires", schema=None) as batch_op:
        batch_op.create_index(
            "ix_schedule_fires_workflow_due", ["workflow_id", "due_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_schedule_fires_team_id"), ["team_id"], unique=False)
    with op.batch_alter_table("workflows", schema=None) as batch_op:
        batch_op.create_index("ix_workflows_due", ["status", "next_run_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("workflows", schema=None) as batch_op:
        batch_op.drop_index("ix_workflows_due")
    with op.batch_alter_table("schedule_fires", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_schedule_fires_team_id"))
        batch_op.drop_index("ix_schedule_fires_workflow_due")
    op.drop_table("schedule_fires")
