"""The app process is SIGKILLed under load: no acknowledged write is lost, nothing is half
written (a transaction without its audit event or the reverse), the audit chain still
verifies, and a new process serves at once. Nothing here measures speed."""

import signal
import time

from tests.faults.harness import (
    Load,
    audit_verify,
    check_consistency,
    connect,
    create_user,
    error_log_lines,
    existing_references,
    resend,
    wait_until,
)


def test_app_killed_under_load(database_url, start_app, capsys):
    headers = create_user(database_url, "agent", "kill-agent")
    app = start_app(database_url)

    with Load(app.base_url, headers, workers=8, prefix="kill") as load:
        wait_until(lambda: load.ok_count() >= 100, 60, "100 transactions created before the kill")
        assert error_log_lines(app) == []
        killed = time.monotonic()
        app.kill(signal.SIGKILL)  # returns once the process is gone
        wait_until(lambda: any(o.status is None and o.started > killed for o in load.snapshot()), 15,
                   "the clients to notice the server is gone")

    assert app.process.returncode == -signal.SIGKILL
    outcomes = load.snapshot()
    statuses = load.statuses()
    ok_references = load.ok_references()
    # Before the kill only successes; the requests in flight at the kill got no answer at all.
    assert {o.status for o in outcomes if o.ended < killed} == {200}, statuses
    unanswered = [o for o in outcomes if o.status is None]
    assert set(statuses) <= {200, "ConnectError", "RemoteProtocolError", "ReadError", "WriteError"}, statuses

    # PostgreSQL rolled back whatever the dead process had open: a write that was never
    # acknowledged either committed whole or left nothing.
    consistency = check_consistency(database_url, ok_references)
    assert consistency.missing == []
    assert consistency.without_event == []
    assert consistency.duplicate_events == []
    assert consistency.orphan_events == []
    assert consistency.transactions == consistency.created_events
    in_flight_committed = existing_references(database_url, {o.reference for o in unanswered})
    assert consistency.transactions == len(ok_references) + len(in_flight_committed)
    verify = audit_verify(database_url)
    assert verify.returncode == 0 and verify.stdout.startswith("OK"), verify.stdout + verify.stderr

    # A new process takes over at once: no lock or half-open transaction of the dead one is in
    # the way, and the clients' retries of the unanswered requests create or replay each one.
    def open_transactions() -> int:
        with connect(database_url) as conn, conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                        "AND state LIKE 'idle in transaction%%'")
            [(idle,)] = cur.fetchall()
            return idle

    wait_until(lambda: open_transactions() == 0, 10, "the dead process's open transactions to end")
    restarted = start_app(database_url)
    unanswered_payloads = {o.reference: o for o in unanswered}  # one retry per reference
    retried = resend(restarted.base_url, headers, list(unanswered_payloads.values()))
    assert [o.status for o in retried] == [200] * len(retried), [o.detail for o in retried if o.status != 200]
    assert {o.reference for o in retried if o.replayed} == in_flight_committed
    acknowledged = ok_references | {o.reference for o in retried}
    after = check_consistency(database_url, acknowledged)
    assert (after.missing, after.without_event, after.duplicate_events, after.orphan_events) == ([], [], [], [])
    assert after.transactions == after.created_events == len(acknowledged)
    verify_after = audit_verify(database_url)
    assert verify_after.returncode == 0 and verify_after.stdout.startswith("OK"), verify_after.stdout
    assert error_log_lines(restarted) == []

    with capsys.disabled():
        print(f"\n[faults] SIGKILL: {len(outcomes)} requests, {dict(statuses)}; {len(unanswered)} in flight "
              f"or after the kill got no answer, {len(in_flight_committed)} of them had committed; "
              f"{len(ok_references)} 2xx writes verified present, each with one transaction.created event; "
              f"after retrying on a new process {len(acknowledged)} writes verified; "
              f"audit verify: {verify.stdout.strip()} → {verify_after.stdout.strip()}")
