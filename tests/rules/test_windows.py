"""The windows of a whole request at once (one statement) equal each transaction's own, and SPEC's meaning."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import text

from app.rules import windows
from tests.conftest import tx_payload
from tests.rules.test_api_rules import rows

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
WINDOWS = frozenset({timedelta(minutes=10), timedelta(hours=1), timedelta(hours=24)})


def stored(db) -> list[dict]:
    return [dict(r._mapping) for r in rows(db, "SELECT id, account_id, currency, amount, created_at FROM transactions "
                                               "ORDER BY id")]


def by_definition(txs: list[dict], probe: dict, window: timedelta) -> tuple[int, Decimal]:
    """SPEC: the account's other transactions created within `window` before this one (ties: lower id first);
    the sum over those in the probe's currency."""
    earlier = [t for t in txs if t["account_id"] == probe["account_id"] and t["id"] != probe["id"]
               and probe["created_at"] - window < t["created_at"]
               and (t["created_at"], t["id"]) < (probe["created_at"], probe["id"])]
    return len(earlier), sum((t["amount"] for t in earlier if t["currency"] == probe["currency"]), Decimal(0))


def probe(t: dict) -> windows.Probe:
    return windows.Probe(t["id"], t["account_id"], t["currency"], t["created_at"])


def test_a_requests_windows_at_once_equal_each_transactions_own_and_the_definition(client, agent_headers, db):
    def post(reference: str, **fields) -> None:
        response = client.post("/transactions", json=tx_payload(reference, **fields), headers=agent_headers)
        assert response.status_code == 200, response.text

    post("old", amount="1.00")
    post("edge-10m", amount="2.00")
    post("tie-a", amount="4.00")
    post("tie-b", amount="8.00", currency="EUR")
    post("recent", amount="16.00")
    post("other-account", account_id="acct_other", amount="32.00")
    ages = {"old": timedelta(hours=30), "edge-10m": timedelta(minutes=10), "tie-a": timedelta(minutes=5),
            "tie-b": timedelta(minutes=5), "recent": timedelta(minutes=1), "other-account": timedelta(minutes=1)}
    for reference, age in ages.items():  # relative to T0, which the batch below is moved to
        db.execute(text("UPDATE transactions SET created_at = :at WHERE reference = :ref"),
                   {"at": T0 - age, "ref": reference})
    db.commit()
    # Two of one account in one batch: they share created_at; the later item counts the earlier.
    batch = client.post("/transactions/batch", headers=agent_headers, json={"items": [
        tx_payload("batch-1", amount="64.00"), tx_payload("batch-2", amount="128.00"),
        tx_payload("batch-eur", amount="256.00", currency="EUR"),
        tx_payload("batch-other", account_id="acct_other", amount="512.00"),
    ]})
    assert batch.status_code == 200, batch.text
    db.execute(text("UPDATE transactions SET created_at = :at WHERE reference LIKE 'batch-%'"), {"at": T0})
    db.commit()
    txs = stored(db)
    assert len(txs) == 10

    at_once = windows.compute(db, [probe(t) for t in txs], WINDOWS)
    for t in txs:
        alone = windows.compute(db, [probe(t)], WINDOWS)
        assert alone == {t["id"]: at_once[t["id"]]}, t
        assert at_once[t["id"]] == {w: by_definition(txs, t, w) for w in WINDOWS}, t
    by_reference = {r.reference: r.id for r in rows(db, "SELECT reference, id FROM transactions")}
    # batch-2: edge-10m (exactly 10 minutes before, outside 10m), tie-a, tie-b (EUR), recent, batch-1.
    assert at_once[by_reference["batch-2"]][timedelta(minutes=10)] == (4, Decimal("84.00"))
    assert at_once[by_reference["batch-2"]][timedelta(hours=24)] == (5, Decimal("86.00"))
    assert at_once[by_reference["batch-1"]][timedelta(minutes=10)] == (3, Decimal("20.00"))
    # tie-b, at tie-a's instant and after it by id, counts it and edge-10m (both USD: not in its EUR sum).
    assert at_once[by_reference["tie-b"]][timedelta(minutes=10)] == (2, Decimal(0))
    assert at_once[by_reference["tie-a"]][timedelta(minutes=10)] == (1, Decimal("2.00"))


def test_only_the_windows_a_condition_sums_get_a_sum(client, agent_headers, db):
    batch = client.post("/transactions/batch", headers=agent_headers, json={"items": [
        tx_payload("s-1", amount="10.00"), tx_payload("s-2", amount="20.00")]})
    assert batch.status_code == 200, batch.text
    first, second = stored(db)
    stats = windows.compute(db, [probe(first), probe(second)], WINDOWS, frozenset({timedelta(hours=1)}))
    assert stats[second["id"]] == {timedelta(minutes=10): (1, None), timedelta(hours=1): (1, Decimal("10.00")),
                                   timedelta(hours=24): (1, None)}
    assert stats[first["id"]][timedelta(hours=1)] == (0, Decimal(0))
