"""customer panel: what a delivery carries, a customer's last panel sign-in

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 20:00:00

"""
import secrets

from alembic import op
import sqlalchemy as sa

ACCESS_CODE_ALPHABET = "ACDEFGHJKLMNPQRTUVWXY34679"  # as app/portal/access.py: nothing easy to misread


# revision identifiers, used by Alembic.
revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('purpose', sa.String(length=16), server_default='message', nullable=False))
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('panel_last_sign_in_at', sa.DateTime(), nullable=True))
    _give_repairs_access_codes()


def _give_repairs_access_codes():
    """Repairs from before the panel get their receipt access code too."""
    connection = op.get_bind()
    repairs = sa.table('repairs', sa.column('id', sa.Integer), sa.column('access_code', sa.String))
    taken = {code for (code,) in connection.execute(sa.select(repairs.c.access_code)) if code}
    for (repair_id,) in connection.execute(sa.select(repairs.c.id).where(repairs.c.access_code.is_(None))).all():
        code = None
        while code is None or code in taken:
            code = "".join(secrets.choice(ACCESS_CODE_ALPHABET) for _ in range(8))
        taken.add(code)
        connection.execute(repairs.update().where(repairs.c.id == repair_id).values(access_code=code))


def downgrade():
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.drop_column('panel_last_sign_in_at')
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_column('purpose')
