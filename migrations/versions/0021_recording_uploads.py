"""recording uploads: recordings a site sends straight to storage (presigned multipart parts), checked on completion

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-29 19:45:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0021'
down_revision: str | None = '0020'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('recording_upload',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('session_id', sa.Integer(), nullable=False),
    sa.Column('room_id', sa.Integer(), nullable=False),
    sa.Column('view', sa.String(length=30), nullable=False),
    sa.Column('claimed_start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('part_size', sa.BigInteger(), nullable=False),
    sa.Column('staging_key', sa.String(length=200), nullable=False),
    sa.Column('s3_upload_id', sa.String(length=400), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('recording_id', sa.Integer(), nullable=True),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['recording_id'], ['recording.id'], name=op.f('fk_recording_upload_recording_id_recording')),
    sa.ForeignKeyConstraint(['room_id'], ['room.id'], name=op.f('fk_recording_upload_room_id_room')),
    sa.ForeignKeyConstraint(['session_id'], ['exam_session.id'],
                            name=op.f('fk_recording_upload_session_id_exam_session')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recording_upload'))
    )
    with op.batch_alter_table('recording_upload', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_recording_upload_session_id'), ['session_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('recording_upload', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_recording_upload_session_id'))
    op.drop_table('recording_upload')
