"""The demo data `python -m app run` seeds on an empty database gives analysts a real queue."""

from sqlalchemy import func, select

from app import demo
from app.audit import chain
from app.audit.service import Actor
from app.cases.models import ReviewCase
from app.transactions.models import Transaction


def test_demo_seed_fills_an_empty_database_once_with_a_review_queue(db):
    assert demo.seed_if_empty(db) is True
    db.commit()
    assert demo.seed_if_empty(db) is False

    assert db.scalar(select(func.count()).select_from(Transaction)) == 240
    undecided = db.scalar(select(func.count()).where(ReviewCase.state.in_(["open", "in_review", "escalated"])))
    assert undecided > 20
    flagged = db.scalar(select(func.count()).where(Transaction.review_status == "flagged"))
    assert flagged == undecided
    # Analysts have worked the top of the queue: people, not only agents, appear in the history.
    decided = dict(db.execute(select(ReviewCase.state, func.count()).group_by(ReviewCase.state)).tuples().all())
    assert decided.get("rejected", 0) >= 1 and decided.get("escalated", 0) >= 1
    # Review gates settlement: no flagged transaction was settled by the seed.
    assert db.scalar(
        select(func.count()).where(Transaction.review_status == "flagged", Transaction.status == "settled")
    ) == 0
    assert chain.verify(db.connection()).ok


def test_demo_users_can_sign_in(client, db):
    demo.seed_if_empty(db)
    db.commit()
    for username, _, password in demo.DEMO_USERS:
        response = client.post("/auth/token", data={"username": username, "password": password})
        assert response.status_code == 200, username


def test_the_sample_bank_statement_shows_every_outcome_against_the_demo_data(db):
    from app.config import PROJECT_ROOT
    from app.reconciliation import service as reconciliation

    demo.seed_if_empty(db)
    actor = Actor(name="admin", role="admin")
    content = (PROJECT_ROOT / "samples" / "bank_statement_sample.csv").read_bytes()
    run_id = reconciliation.start_upload(session=db, actor=actor, filename="sample.csv", content=content)
    while reconciliation.get_run(session=db, run_id=run_id).status != "completed":
        assert reconciliation.process_next_chunk(session=db, actor=actor, run_id=run_id)
    run = reconciliation.get_run(session=db, run_id=run_id)
    assert (run.total_rows, run.matched, run.malformed) == (10, 4, 1)
    assert reconciliation.mismatch_counts(session=db, run_id=run_id) == {
        "amount_mismatch": 1, "currency_mismatch": 1, "status_mismatch": 1,
        "duplicate_bank_event": 1, "missing_in_ledger": 1,
    }
    assert [(e.line_no, e.field) for e in reconciliation.row_errors(session=db, run_id=run_id)] == [(11, "amount")]
