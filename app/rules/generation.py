"""The rule generation: one counter that moves with every change to what runs.

Every publish, disable, rollback and list change calls `bump` in its own transaction, so
the counter and the change commit together. A process caching the compiled running rules
reads `current` (one primary-key read) and reloads when it moved. The row is created
by migration 0013; `bump` recreates it if it is ever missing, and `current` reads a
missing row as 0.
"""

from sqlalchemy import text

from app.uow.unit import AnySession

_BUMP = text(
    "INSERT INTO rule_generation (id, generation) VALUES (1, 1) "
    "ON CONFLICT (id) DO UPDATE SET generation = rule_generation.generation + 1 RETURNING generation"
)
_CURRENT = text("SELECT COALESCE((SELECT generation FROM rule_generation WHERE id = 1), 0)")


def bump(session: AnySession) -> int:
    """Move the generation on, in the caller's transaction; returns the new value."""
    return int(session.execute(_BUMP).scalar_one())


def current(session: AnySession) -> int:
    """The generation as this transaction sees it."""
    return int(session.execute(_CURRENT).scalar_one())
