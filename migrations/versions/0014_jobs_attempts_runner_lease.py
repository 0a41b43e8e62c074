"""jobs: attempts, the runner that holds a job and its lease

Revision ID: 0014
Revises: 0015b
Create Date: 2026-11-29 15:23:07.783765
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0014'
down_revision: str | None = '0015b'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.add_column(sa.Column('attempts', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('runner', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_job_status'), ['status'], unique=False)
    # jobs that started before this revision ran once; a running one has no runner and no lease, so it is taken
    # back at the next start as one whose runner is gone
    op.execute("UPDATE job SET attempts = 1 WHERE status <> 'queued'")


def downgrade() -> None:
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_job_status'))
        batch_op.drop_column('lease_until')
        batch_op.drop_column('runner')
        batch_op.drop_column('attempts')
