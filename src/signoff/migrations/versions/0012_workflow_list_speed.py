"""workflows keep their schedule in words

The description of a schedule is computed when the schedule is set, not on every read of a
list (issue #19). Existing schedules are described here.

Revision ID: 0012
Revises: 0011
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from signoff.kit.cron import describe

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("workflows", schema=None) as batch_op:
        batch_op.add_column(sa.Column("schedule_description", sa.Text(), nullable=True))
    workflows = sa.table(
        "workflows",
        sa.column("id", sa.String()),
        sa.column("schedule", sa.String()),
        sa.column("schedule_description", sa.String()),
    )
    connection = op.get_bind()
    scheduled = connection.execute(
        sa.select(workflows.c.id, workflows.c.schedule).where(workflows.c.schedule.is_not(None))
    ).all()
    for workflow_id, schedule in scheduled:
        connection.execute(
            workflows.update()
            .where(workflows.c.id == workflow_id)
            .values(schedule_description=describe(str(schedule)))
        )


def downgrade() -> None:
    with op.batch_alter_table("workflows", schema=None) as batch_op:
        batch_op.drop_column("schedule_description")
