"""audit trail: keyed hashes from here on (the head remembers where they start)

Revision ID: 0015b
Revises: 0015
Create Date: 2026-11-29 16:30:00

Entries written so far keep their plain SHA-256 hashes and are verified that way; every entry after them is
hashed with HMAC-SHA256 under the trail key (qbank.lib.keys.trail_key). The first anchor the service writes after
this migration (at its first start, or the first verify) signs the head with ``keyed_from``, so moving the switch
later is detected.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0015b'
down_revision: str | None = '0015'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('audit_head', schema=None) as batch_op:
        batch_op.add_column(sa.Column('keyed_from', sa.Integer(), server_default='1', nullable=False))
    head = sa.table('audit_head', sa.column('seq', sa.Integer), sa.column('keyed_from', sa.Integer))
    op.get_bind().execute(head.update().values(keyed_from=head.c.seq + 1))


def downgrade() -> None:
    with op.batch_alter_table('audit_head', schema=None) as batch_op:
        batch_op.drop_column('keyed_from')
