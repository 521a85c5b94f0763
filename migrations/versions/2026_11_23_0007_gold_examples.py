"""Gold training examples: the SFT bootstrap's resolved tickets kept as desirable KTO rows for replay.

A `gold` row is a (ticket, resolving step) pair the bootstrap adapter was trained on; it is stored already
trained (`trained_in` = the bootstrap version) so every later retrain can replay it against forgetting.
"""

from alembic import op

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    op.execute("ALTER TABLE training_examples DROP CONSTRAINT ck_training_examples_source")
    op.execute(
        "ALTER TABLE training_examples ADD CONSTRAINT ck_training_examples_source "
        "CHECK (source IN ('draft', 'edit', 'gold'))"
    )


def downgrade() -> None:
    op.execute("DELETE FROM training_examples WHERE source = 'gold'")
    op.execute("ALTER TABLE training_examples DROP CONSTRAINT ck_training_examples_source")
    op.execute(
        "ALTER TABLE training_examples ADD CONSTRAINT ck_training_examples_source CHECK (source IN ('draft', 'edit'))"
    )
