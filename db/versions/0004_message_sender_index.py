"""index for the per-sender flood limit

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_message_sender_recent", "message", ["from_addr", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_message_sender_recent", table_name="message")
