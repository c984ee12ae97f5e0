"""consent ledger and state cache, column categories, identity decisions

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from custos.store.tables import Timestamp

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "consent_state_marks",
        sa.Column("purpose", sa.String(length=100), nullable=False),
        sa.Column("last_event_id", sa.BigInteger(), nullable=False),
        sa.Column("graph_version", sa.String(length=64), nullable=False),
        sa.Column("computed_at", Timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("purpose"),
    )
    op.create_table(
        "consent_states",
        sa.Column("purpose", sa.String(length=100), nullable=False),
        sa.Column("profile_id", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("explicit", sa.Boolean(), nullable=False),
        sa.Column("since", Timestamp(), nullable=True),
        sa.Column("recheck_at", Timestamp(), nullable=True),
        sa.PrimaryKeyConstraint("purpose", "profile_id"),
    )
    with op.batch_alter_table("consent_states", schema=None) as batch_op:
        batch_op.create_index("ix_consent_states_recheck", ["purpose", "recheck_at"], unique=False)

    op.create_table(
        "store_meta",
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "source_columns",
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("column", sa.String(length=200), nullable=False),
        sa.Column("category", sa.String(length=50), nullable=False),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["sources.id"],
        ),
        sa.PrimaryKeyConstraint("source_id", "column"),
    )
    op.create_table(
        "identity_decisions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("decision", sa.String(length=20), nullable=False),
        sa.Column(
            "left_raw_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "right_raw_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at", Timestamp(), nullable=False),
        sa.ForeignKeyConstraint(
            ["left_raw_id"],
            ["raw_records.id"],
        ),
        sa.ForeignKeyConstraint(
            ["right_raw_id"],
            ["raw_records.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("consent_events", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("explicit", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(sa.Column("profile_id", sa.String(length=40), nullable=True))
        batch_op.create_index("ix_consent_events_customer_id", ["customer_id"], unique=False)
        batch_op.create_index("ix_consent_events_phone", ["phone"], unique=False)
        batch_op.create_index("ix_consent_events_profile", ["profile_id"], unique=False)
        batch_op.create_index("ix_consent_events_purpose", ["purpose", "id"], unique=False)
        batch_op.create_index("ix_consent_events_social_handle", ["social_handle"], unique=False)

    with op.batch_alter_table("profiles", schema=None) as batch_op:
        batch_op.create_index("ix_profiles_merged_into", ["merged_into"], unique=False)


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("profiles", schema=None) as batch_op:
        batch_op.drop_index("ix_profiles_merged_into")

    with op.batch_alter_table("consent_events", schema=None) as batch_op:
        batch_op.drop_index("ix_consent_events_social_handle")
        batch_op.drop_index("ix_consent_events_purpose")
        batch_op.drop_index("ix_consent_events_profile")
        batch_op.drop_index("ix_consent_events_phone")
        batch_op.drop_index("ix_consent_events_customer_id")
        batch_op.drop_column("profile_id")
        batch_op.drop_column("explicit")

    op.drop_table("identity_decisions")
    op.drop_table("source_columns")
    op.drop_table("store_meta")
    with op.batch_alter_table("consent_states", schema=None) as batch_op:
        batch_op.drop_index("ix_consent_states_recheck")

    op.drop_table("consent_states")
    op.drop_table("consent_state_marks")
