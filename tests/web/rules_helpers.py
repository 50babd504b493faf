"""Helpers shared by the rules screens' tests (tests/web/test_rules_*.py, tests/browser/test_rules_*.py)."""

import html
import itertools
import re

from sqlalchemy import select, text

from app.cases.models import ReviewCase
from app.transactions.models import Transaction

_generations = itertools.count(1)


def fresh_generation(db) -> None:
    """Start this test's rule generation above any the server has cached.

    Tests empty every table between them, so the generation would restart at 1 and a server
    that cached the previous test's rules at 1 would keep running them; in production the
    generation only grows. This moves it past anything this test session has used.
    """
    db.execute(text("INSERT INTO rule_generation (id, generation) VALUES (1, :g) "
                    "ON CONFLICT (id) DO UPDATE SET generation = :g"), {"g": 1_000_000 * next(_generations)})
    db.commit()


def text_of(page: str) -> str:
    """What a person reads: the markup's text, whitespace collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split()).replace(" :", ":")


def case_of(db, reference: str) -> int | None:
    """The review case of the transaction, if one was opened."""
    db.expire_all()
    return db.scalar(select(ReviewCase.id).join(Transaction, Transaction.id == ReviewCase.transaction_id)
                     .where(Transaction.reference == reference))
