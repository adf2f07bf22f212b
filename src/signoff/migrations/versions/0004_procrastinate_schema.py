"""procrastinate's job queue schema (PostgreSQL only)

The multi-machine mode (SIGNOFF_QUEUE=procrastinate) keeps its jobs in procrastinate's own
tables beside ours. Applying its schema here means ``signoff db upgrade`` prepares everything.
procrastinate's later schema migrations (its sql/migrations folder) go in later revisions.

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

from alembic import op
from procrastinate.schema import SchemaManager

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DROP = """
DROP TABLE IF EXISTS procrastinate_events, procrastinate_periodic_defers,
    procrastinate_jobs, procrastinate_workers CASCADE;
DO $$ DECLARE r record; BEGIN
  FOR r IN SELECT p.oid::regprocedure AS f FROM pg_proc p
           JOIN pg_namespace n ON n.oid = p.pronamespace
           WHERE n.nspname = current_schema() AND p.proname LIKE 'procrastinate\\_%'
  LOOP EXECUTE 'DROP FUNCTION ' || r.f || ' CASCADE'; END LOOP; END $$;
DROP TYPE IF EXISTS procrastinate_job_to_defer_v1, procrastinate_job_event_type,
    procrastinate_job_status CASCADE;
"""


def _literal(sql: str) -> str:
    # The driver is given parameters, so a literal % must be doubled to stay a %.
    return sql.replace("%", "%%")


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    exists = bind.exec_driver_sql("SELECT to_regclass('procrastinate_jobs')").scalar()
    if exists is None:
        bind.exec_driver_sql(_literal(SchemaManager.get_schema()))


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        bind.exec_driver_sql(_literal(_DROP))
