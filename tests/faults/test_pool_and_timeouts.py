"""Slow queries and an exhausted pool answer 503 with Retry-After quickly — never a 500,
never a hang — and the app serves again as soon as the pressure goes.

The pressure is real: a separate connection holds `LOCK TABLE transactions IN ACCESS
EXCLUSIVE MODE`, so the app's statements on that table wait until the statement timeout
(57014 query_canceled) or the lock timeout (55P03 lock_not_available, DB_LOCK_TIMEOUT_MS)
cancels them, and requests waiting meanwhile for one of the two pooled connections give up
after DB_POOL_TIMEOUT_SECONDS (SQLAlchemy's pool TimeoutError). Time limits are hang guards.
"""

import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.faults.harness import (
    Load,
    check_consistency,
    connect,
    create_user,
    error_log_lines,
    existing_references,
    holding_lock,
    tx_body,
    wait_until,
)

GUARD = 15  # seconds: an answer later than this is a hang
LOCK_TRANSACTIONS = "LOCK TABLE transactions IN ACCESS EXCLUSIVE MODE"
SMALL_POOL = {"DB_POOL_SIZE": "2", "DB_MAX_OVERFLOW": "0", "DB_POOL_TIMEOUT_SECONDS": "1"}


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers.get("retry-after") == "1"
    assert response.json() == {"detail": "The database is unavailable; retry shortly."}


def waiting_on_lock(database_url: str) -> int:
    """The app's database sessions now waiting for a lock."""
    with connect(database_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND application_name = 'riskdesk' AND wait_event_type = 'Lock'")
        [(waiting,)] = cur.fetchall()
        return waiting


def test_statement_timeout_answers_503_then_recovers(database_url, start_app, capsys):
    headers = create_user(database_url, "agent", "slow-agent")
    app = start_app(database_url, **SMALL_POOL, DB_STATEMENT_TIMEOUT_MS="500")

    with httpx.Client(base_url=app.base_url, headers=headers, timeout=GUARD) as client:
        assert client.post("/transactions", json=tx_body("slow-before", 1)).status_code == 200
        with holding_lock(database_url, LOCK_TRANSACTIONS):
            write = client.post("/transactions", json=tx_body("slow-blocked", 2))
            read = client.get("/transactions/slow-before")
        assert_unavailable(write)
        assert_unavailable(read)
        assert existing_references(database_url, {"slow-blocked"}) == set()  # rolled back, nothing half-written
        assert "database unavailable" in app.log()  # the statement timeout path, not the pool's

        # Released: the same process serves at once, the refused request can simply be retried.
        assert client.post("/transactions", json=tx_body("slow-blocked", 2)).status_code == 200
        assert client.get("/transactions/slow-before").status_code == 200

    # The same under load: six clients on a two-connection pool while the table is locked for 2 s.
    with Load(app.base_url, headers, workers=6, prefix="slow-load", timeout=GUARD) as load:
        wait_until(lambda: load.ok_count() >= 20, 60, "20 transactions before the lock")
        with holding_lock(database_url, LOCK_TRANSACTIONS):
            locked = time.monotonic()
            time.sleep(2)
            released = time.monotonic()
        wait_until(lambda: load.ok_count(since=released) >= 20, 60, "20 transactions after the lock")

    outcomes = load.snapshot()
    statuses = load.statuses()
    assert set(statuses) <= {200, 503}, [o for o in outcomes if o.status not in (200, 503)][:5]
    refused = [o for o in outcomes if o.status == 503]
    # Every request in flight when the lock was taken, and every one started and finished
    # while it was held, was refused; none outside the lock was.
    assert len(refused) >= 2, statuses
    assert all(locked < o.ended and o.started < released for o in refused)
    assert all(o.status == 503 for o in outcomes if o.started >= locked and o.ended <= released)
    assert all(o.retry_after == "1" for o in refused)
    assert max(o.seconds for o in outcomes) < GUARD
    consistency = check_consistency(database_url, load.ok_references())
    assert (consistency.missing, consistency.without_event, consistency.duplicate_events,
            consistency.orphan_events) == ([], [], [], [])
    assert existing_references(database_url, {o.reference for o in refused}) == set()
    assert error_log_lines(app) == []
    with capsys.disabled():
        print(f"\n[faults] statement timeout 500 ms, pool 2: {len(outcomes)} requests under load, {dict(statuses)}; "
              f"the 2 s lock cost {len(refused)} 503s (slowest {max(o.seconds for o in refused):.2f}s); "
              f"{len(load.ok_references())} 2xx writes verified, none of the 503s written")


def test_pool_exhaustion_and_lock_timeout_answer_503(database_url, start_app, capsys):
    headers = create_user(database_url, "agent", "pool-agent")
    # Default statement timeout (15 s), so the 2 s lock timeout is what cancels the waits.
    app = start_app(database_url, **SMALL_POOL, DB_LOCK_TIMEOUT_MS="2000")

    with httpx.Client(base_url=app.base_url, headers=headers, timeout=GUARD) as client, \
            ThreadPoolExecutor(max_workers=10) as pool:
        assert client.post("/transactions", json=tx_body("pool-before", 1)).status_code == 200

        def post(reference: str, n: int):
            # With an Idempotency-Key each create has a transaction (and a connection) of its
            # own; without one, concurrent creates would share one (app/transactions/group.py).
            started = time.monotonic()
            response = client.post("/transactions", json=tx_body(reference, n), headers={"Idempotency-Key": reference})
            return response, time.monotonic() - started

        with holding_lock(database_url, LOCK_TRANSACTIONS):
            # Two requests take both pooled connections and wait on the lock…
            holders = [pool.submit(post, f"pool-holder-{i}", i) for i in range(2)]
            wait_until(lambda: waiting_on_lock(database_url) == 2, GUARD, "both pooled connections waiting on the lock")
            # …so these find the pool empty and give up after the pool timeout.
            extra = [pool.submit(post, f"pool-extra-{i}", 10 + i) for i in range(6)]
            ready = client.get("/readyz")
            health = client.get("/healthz")
            extra_results = [future.result(GUARD) for future in extra]
            holder_results = [future.result(GUARD) for future in holders]

        for response, _ in extra_results + holder_results:
            assert_unavailable(response)
        assert ready.status_code == 503  # not ready: no connection to be had
        assert health.status_code == 200  # the process itself is fine: the event loop never blocked
        log = app.log()
        assert log.count("database pool exhausted") >= len(extra)  # each extra: the pool's TimeoutError
        assert log.count("database unavailable") >= len(holders)  # each holder: 55P03 lock timeout
        assert error_log_lines(app) == []

        refused = {f"pool-holder-{i}" for i in range(2)} | {f"pool-extra-{i}" for i in range(6)}
        assert existing_references(database_url, refused) == set()
        # Pressure gone: the same process serves again, and a retry of a refused write succeeds.
        assert client.post("/transactions", json=tx_body("pool-extra-0", 10)).status_code == 200
        assert client.get("/readyz").status_code == 200
        assert client.get("/transactions/pool-before").status_code == 200

    with capsys.disabled():
        print(f"\n[faults] pool 2, pool timeout 1 s, lock held: {len(extra)} requests on an empty pool → 503 "
              f"(slowest {max(s for _, s in extra_results):.2f}s), {len(holders)} waiting on the lock → 503 "
              f"after lock_timeout (slowest {max(s for _, s in holder_results):.2f}s); /healthz 200, /readyz 503")
