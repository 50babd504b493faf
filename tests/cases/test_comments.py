"""Comments on a case: append-only, audited, in the timeline."""

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tests.cases.conftest import event_count, events
from tests.transactions.conftest import assert_rejected


@pytest.fixture
def case_id(desk) -> int:
    return desk.flagged_case("ref-1", 85)


def comment(client, case_id, who, text):
    return client.post(f"/api/cases/{case_id}/comments", json={"text": text}, headers=who.headers)


def test_a_comment_is_stored_listed_audited_and_in_the_timeline(client, desk, db, alice, bob, case_id):
    response = comment(client, case_id, alice, "  Called the customer: travelling in Lisbon.  ")

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["author"] == "alice" and body["text"] == "Called the customer: travelling in Lisbon."
    assert comment(client, case_id, bob, "Agreed.").status_code == 201
    listed = client.get(f"/api/cases/{case_id}/comments", headers=bob.headers).json()
    assert [(c["author"], c["text"]) for c in listed] == [
        ("alice", "Called the customer: travelling in Lisbon."), ("bob", "Agreed.")]
    [first, _] = events(db, "case.commented", case_id)
    assert first.actor == "alice" and (first.after or {})["text"] == "Called the customer: travelling in Lisbon."
    timeline = desk.detail(case_id, bob)["timeline"]
    assert [e["summary"] for e in timeline if e["action"] == "case.commented"] == ["alice commented", "bob commented"]


@pytest.mark.parametrize("body", [{"text": ""}, {"text": "   "}, {"text": "x" * 4001}, {"text": "a\x00b"}, {},
                                  {"text": 5}, {"text": "ok", "author": "ceo"}])
def test_a_bad_comment_is_refused_naming_the_field_and_stores_nothing(client, db, alice, case_id, body):
    before = event_count(db)
    response = client.post(f"/api/cases/{case_id}/comments", json=body, headers=alice.headers)

    assert_rejected(response, "author" if "author" in body else "text")
    assert event_count(db) == before
    assert db.execute(text("SELECT count(*) FROM case_comments")).scalar_one() == 0


def test_comments_on_an_unknown_case_are_404(client, alice):
    assert comment(client, 999999, alice, "hello").status_code == 404
    assert client.get("/api/cases/999999/comments", headers=alice.headers).status_code == 404


def test_the_agent_cannot_comment(client, agent_reviewer, case_id):
    assert comment(client, case_id, agent_reviewer, "hello").status_code == 403


@pytest.mark.parametrize("statement", [
    "UPDATE case_comments SET body = 'rewritten'", "DELETE FROM case_comments", "TRUNCATE case_comments CASCADE",
])
def test_the_database_refuses_to_change_or_remove_a_comment(client, db, alice, case_id, statement):
    assert comment(client, case_id, alice, "original").status_code == 201
    with pytest.raises(DBAPIError, match="append-only|permission denied"):
        db.execute(text(statement))
    db.rollback()
    assert db.execute(text("SELECT body FROM case_comments")).scalars().all() == ["original"]
