"""four eyes by token identity: who made each item version (token id), the version last approved

Revision ID: 0015
Revises: 0016
Create Date: 2026-11-29 16:00:00

Existing versions get their token id from their label (``name#id``); an item that is approved now counts its
current version as the last approved one. Items approved earlier and edited since count every version (the
stricter reading: whoever made any of them may not approve).
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0015'
down_revision: str | None = '0016'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('item', schema=None) as batch_op:
        batch_op.add_column(sa.Column('approved_version', sa.Integer(), nullable=True))
    with op.batch_alter_table('item_version', schema=None) as batch_op:
        batch_op.add_column(sa.Column('created_by_token_id', sa.Integer(), nullable=True))
    conn = op.get_bind()
    versions = sa.table('item_version', sa.column('id', sa.Integer), sa.column('created_by', sa.String),
                        sa.column('created_by_token_id', sa.Integer))
    for row_id, label in conn.execute(sa.select(versions.c.id, versions.c.created_by)).all():
        _, sep, token_id = (label or '').rpartition('#')
        if sep and token_id.isdigit():
            conn.execute(versions.update().where(versions.c.id == row_id).values(created_by_token_id=int(token_id)))
    items = sa.table('item', sa.column('status', sa.String), sa.column('version', sa.Integer),
                     sa.column('approved_version', sa.Integer))
    conn.execute(items.update().where(items.c.status == 'approved').values(approved_version=items.c.version))


def downgrade() -> None:
    with op.batch_alter_table('item_version', schema=None) as batch_op:
        batch_op.drop_column('created_by_token_id')
    with op.batch_alter_table('item', schema=None) as batch_op:
        batch_op.drop_column('approved_version')
