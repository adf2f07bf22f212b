"""runs: reruns (the run copied and the step rerun from), step warnings, the team's run index

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("rerun_of_run_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("rerun_from_step_index", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            "fk_runs_rerun_of_run_id_runs", "runs", ["rerun_of_run_id"], ["id"], ondelete="SET NULL"
        )
        batch_op.create_index("ix_runs_team_started", ["team_id", "started_at", "id"], unique=False)
    with op.batch_alter_table("run_steps", schema=None) as batch_op:
        batch_op.add_column(sa.Column("warnings", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("run_steps", schema=None) as batch_op:
        batch_op.drop_column("warnings")
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index("ix_runs_team_started")
        batch_op.drop_constraint("fk_runs_rerun_of_run_id_runs", type_="foreignkey")
        batch_op.drop_column("rerun_from_step_index")
        batch_op.drop_column("rerun_of_run_id")
