"""posts.claimed_by and posts.claimed_until: which worker is working on a post, and until when

Revision ID: 0006_work_claims
Revises: 0005
Create Date: 2026-12-02 00:15:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = '0006_work_claims'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('posts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claimed_by', sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column('claimed_until', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('posts', schema=None) as batch_op:
        batch_op.drop_column('claimed_until')
        batch_op.drop_column('claimed_by')
