"""job_runs.heartbeat_at (a run is alive while it beats) and replies.taken_by/taken_until (who posts it)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 00:30:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('job_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=True))
    # A run left running by the code before heartbeats never beats: it counts from its start.
    op.execute("UPDATE job_runs SET heartbeat_at = started_at")
    with op.batch_alter_table('replies', schema=None) as batch_op:
        batch_op.add_column(sa.Column('taken_by', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('taken_until', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('replies', schema=None) as batch_op:
        batch_op.drop_column('taken_until')
        batch_op.drop_column('taken_by')
    with op.batch_alter_table('job_runs', schema=None) as batch_op:
        batch_op.drop_column('heartbeat_at')
