"""exact duplicates are the same stem and options

Items get ``content_key`` (the normalised stem and options, in any order), unique per occupation and level,
in place of the unique stem key: banks reuse stems such as 下列说法正确的是（ ）。 with other options. The key of
each existing item is computed from its current version here (the normalisation is copied, not imported, so
that this migration keeps meaning what it meant). ``stem_key`` stays, for matching leaked stems.

Revision ID: 0016
Revises: 0008
Create Date: 2026-11-29 15:15:48.784841
"""
import hashlib
import json
import re
import unicodedata
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0016'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NOT_WORD = re.compile(r"[\W_]+", re.UNICODE)


def _normalise(text: str) -> str:
    return _NOT_WORD.sub("", unicodedata.normalize("NFKC", text).casefold())


def _content_key(stem: str, options: list[str]) -> str:
    parts = [_normalise(stem), *sorted(_normalise(o) for o in options)]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def upgrade() -> None:
    with op.batch_alter_table('item', schema=None) as batch_op:
        batch_op.add_column(sa.Column('content_key', sa.String(length=64), nullable=True))
    bind = op.get_bind()
    item = sa.table('item', sa.column('id', sa.Integer), sa.column('version', sa.Integer),
                    sa.column('content_key', sa.String))
    version = sa.table('item_version', sa.column('item_id', sa.Integer), sa.column('version', sa.Integer),
                       sa.column('content', sa.JSON))
    rows = bind.execute(sa.select(item.c.id, version.c.content).join(
        version, (version.c.item_id == item.c.id) & (version.c.version == item.c.version))).all()
    for item_id, content in rows:
        content = json.loads(content) if isinstance(content, str) else content
        key = _content_key(str(content.get('stem', '')), [str(o) for o in content.get('options') or []])
        bind.execute(sa.update(item).where(item.c.id == item_id).values(content_key=key))
    with op.batch_alter_table('item', schema=None) as batch_op:
        batch_op.alter_column('content_key', existing_type=sa.String(length=64), nullable=False)
        batch_op.drop_constraint(batch_op.f('uq_item_occupation_code_level_stem_key'), type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_item_occupation_code_level_content_key'),
                                          ['occupation_code', 'level', 'content_key'])


def downgrade() -> None:
    # Fails (and changes nothing) when two items of a level share a stem with other options: the old rule
    # cannot hold them both.
    with op.batch_alter_table('item', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_item_occupation_code_level_content_key'), type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_item_occupation_code_level_stem_key'),
                                          ['occupation_code', 'level', 'stem_key'])
        batch_op.drop_column('content_key')
