"""The demo data `python -m app run` seeds on an empty database gives analysts a real queue."""

from sqlalchemy import func, select

from app import demo
from app.audit.service import verify_chain
from app.cases.models import ReviewCase
from app.transactions.models import Transaction


def test_demo_seed_fills_an_empty_database_once_with_a_review_queue(db):
    assert demo.seed_if_empty(db) is True
    db.commit()
    assert demo.seed_if_empty(db) is False

    assert db.scalar(select(func.count()).select_from(Transaction)) == 240
    open_cases = db.scalar(select(func.count()).where(ReviewCase.state == "open"))
    assert open_cases > 20
    flagged = db.scalar(select(func.count()).where(Transaction.review_status == "flagged"))
    assert flagged == open_cases
    # Review gates settlement: no flagged transaction was settled by the seed.
    assert db.scalar(
        select(func.count()).where(Transaction.review_status == "flagged", Transaction.status == "settled")
    ) == 0
    assert verify_chain(db).ok


def test_demo_users_can_sign_in(client, db):
    demo.seed_if_empty(db)
    db.commit()
    for username, _, password in demo.DEMO_USERS:
        response = client.post("/auth/token", data={"username": username, "password": password})
        assert response.status_code == 200, username
