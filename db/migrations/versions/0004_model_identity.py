"""models: the identity of each model (name, version, weights and every output-changing setting) and its hash

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 21:30:00.000000
"""

import hashlib
import json

from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def _identity(name, version, backbone, config, weights_sha256):
    """What a row written before this revision tells of its identity; the rest stays unknown (None).

    The chroma scale was never recorded, so the first run after this migration fills it in from the
    model configured under the row's name and version (db.store.get_or_create_model).
    """
    config = config if isinstance(config, dict) else json.loads(config or "{}")
    chroma_scale = config.get("chroma_scale")
    return {
        "name": name,
        "version": version,
        "weights_sha256": weights_sha256,
        "chroma_scale": None if chroma_scale is None else float(chroma_scale),
        "upsampling": config.get("upsampling"),
        "input_size": config.get("input_size"),
        # Remote models were stored with the placeholder "remote": their backbone is not known.
        "backbone": backbone if backbone and backbone != "remote" else None,
    }


def _sha256(identity):
    # The same canonical JSON as db.store.identity_sha256, copied: a migration must not change with the code.
    canonical = json.dumps(identity, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def upgrade() -> None:
    with op.batch_alter_table('models', schema=None) as batch_op:
        batch_op.add_column(sa.Column('identity', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('identity_sha256', sa.String(length=64), nullable=True))

    models = sa.table('models', sa.column('id', sa.Integer()), sa.column('name', sa.String()),
                      sa.column('version', sa.String()), sa.column('backbone', sa.String()),
                      sa.column('config', sa.JSON()), sa.column('weights_sha256', sa.String()),
                      sa.column('identity', sa.JSON()), sa.column('identity_sha256', sa.String()))
    connection = op.get_bind()
    rows = connection.execute(sa.select(models.c.id, models.c.name, models.c.version, models.c.backbone,
                                        models.c.config, models.c.weights_sha256)).all()
    for row in rows:
        identity = _identity(row.name, row.version, row.backbone, row.config, row.weights_sha256)
        connection.execute(models.update().where(models.c.id == row.id)
                           .values(identity=identity, identity_sha256=_sha256(identity)))

    with op.batch_alter_table('models', schema=None) as batch_op:
        batch_op.alter_column('identity', existing_type=sa.JSON(), nullable=False)
        batch_op.alter_column('identity_sha256', existing_type=sa.String(length=64), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table('models', schema=None) as batch_op:
        batch_op.drop_column('identity_sha256')
        batch_op.drop_column('identity')
