"""posts.claimed_by and posts.claimed_until: which worker is working on a post, and until when;
colorized posts get the gray baseline's colorization, which the colorize step makes from now on

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 00:15:00.000000
"""

import hashlib
import json
from datetime import datetime, timezone

from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('posts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claimed_by', sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column('claimed_until', sa.DateTime(timezone=True), nullable=True))
    _gray_baseline_for_colorized_posts()


# The gray baseline's identity and its hash as db.store writes them, copied: a migration must not
# change with the code.
GRAY_IDENTITY = {"name": "gray", "version": "1", "weights_sha256": None, "chroma_scale": None, "upsampling": None,
                 "input_size": None, "backbone": "none"}
GRAY_DESCRIPTION = {"description": "baseline: the black-and-white original, unchanged"}


def _gray_baseline_for_colorized_posts() -> None:
    """Until this revision the evaluate step made the gray baseline's colorization (a link to the
    original's image); the colorize step makes it now. Posts colorized but not yet evaluated when
    the database is upgraded get theirs here, or they would be measured without it."""
    connection = op.get_bind()
    posts = sa.table('posts', sa.column('id', sa.Integer()), sa.column('state', sa.String()))
    links = sa.table('post_images', sa.column('post_id', sa.Integer()), sa.column('image_id', sa.Integer()),
                     sa.column('role', sa.String()))
    models = sa.table('models', sa.column('id', sa.Integer()), sa.column('name', sa.String()),
                      sa.column('version', sa.String()), sa.column('backbone', sa.String()),
                      sa.column('config', sa.JSON()), sa.column('identity', sa.JSON()),
                      sa.column('identity_sha256', sa.String()), sa.column('created_at', sa.DateTime(timezone=True)))
    colorizations = sa.table('colorizations', sa.column('post_id', sa.Integer()), sa.column('model_id', sa.Integer()),
                             sa.column('image_id', sa.Integer()), sa.column('seconds', sa.Float()),
                             sa.column('created_at', sa.DateTime(timezone=True)))
    waiting = connection.execute(
        sa.select(posts.c.id, links.c.image_id)
        .join(links, (links.c.post_id == posts.c.id) & (links.c.role == 'original'))
        .where(posts.c.state == 'colorized')
    ).all()
    if not waiting:
        return
    now = datetime.now(timezone.utc)
    find_gray = sa.select(models.c.id).where(models.c.name == 'gray', models.c.version == '1')
    if connection.scalar(find_gray) is None:
        canonical = json.dumps(GRAY_IDENTITY, sort_keys=True, separators=(",", ":"), allow_nan=False)
        connection.execute(models.insert().values(
            name='gray', version='1', backbone='none', config=GRAY_DESCRIPTION, identity=GRAY_IDENTITY,
            identity_sha256=hashlib.sha256(canonical.encode()).hexdigest(), created_at=now))
    gray_id = connection.scalar(find_gray)
    done = set(connection.scalars(sa.select(colorizations.c.post_id).where(colorizations.c.model_id == gray_id)))
    rows = [{"post_id": post_id, "model_id": gray_id, "image_id": image_id, "seconds": 0.0, "created_at": now}
            for post_id, image_id in waiting if post_id not in done]
    if rows:
        connection.execute(colorizations.insert(), rows)


def downgrade() -> None:
    with op.batch_alter_table('posts', schema=None) as batch_op:
        batch_op.drop_column('claimed_until')
        batch_op.drop_column('claimed_by')
