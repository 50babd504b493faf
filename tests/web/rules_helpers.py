"""Helpers shared by the rules screens' tests (tests/web/test_rules_*.py, tests/browser/test_rules_*.py)."""

import html
import re

from sqlalchemy import select

from app.cases.models import ReviewCase
from app.transactions.models import Transaction


def text_of(page: str) -> str:
    """What a person reads: the markup's text, whitespace collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split()).replace(" :", ":")


def case_of(db, reference: str) -> int | None:
    """The review case of the transaction, if one was opened."""
    db.expire_all()
    return db.scalar(select(ReviewCase.id).join(Transaction, Transaction.id == ReviewCase.transaction_id)
                     .where(Transaction.reference == reference))
