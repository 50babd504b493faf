"""The audited write at the database alone: what PostgreSQL spends per POST, beside the floor's insert.

No HTTP and no uvicorn: --threads threads, each on its own pooled connection of the app's
engine, write as fast as they can in alternating rounds of two scenarios:

- floor: bench/floor_app.py's `INSERT … ON CONFLICT DO NOTHING RETURNING`, one per transaction;
- full:  what POST /transactions sends, by the app's own code: the token check
  (`verify_principal`), `transactions.flows.create` (INSERT … RETURNING and the queued
  audit event) and the CoreSession's commit (`riskdesk_append_audit(…); COMMIT`).

For each it prints transactions per second, the CPU of every PostgreSQL process per
transaction, and the WAL flushes (`fsync`) and bytes per transaction. Concurrent floor
commits share a WAL flush (group commit); audited writes append to one hash chain under a
lock held until their commit is flushed, so each pays a flush of its own.

    XDG_RUNTIME_DIR=/tmp .venv/bin/python bench/commit_path.py [--threads 16] [--rounds 5] [--seconds 4]
"""

import argparse
import os
import statistics
import sys
import threading
import time
import uuid
from decimal import Decimal
from pathlib import Path

import psutil

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
import harness  # noqa: E402  embedded PostgreSQL, processes, clean-up

ROOT = harness.ROOT
sys.path.insert(0, str(ROOT))
log = harness.log

WAL_FLUSHES = {
    # PostgreSQL 18 counts WAL I/O in pg_stat_io; 14–17 in pg_stat_wal.
    "io": "SELECT coalesce(sum(fsyncs), 0), (SELECT wal_bytes FROM pg_stat_wal) FROM pg_stat_io WHERE object = 'wal'",
    "wal": "SELECT wal_sync, wal_bytes FROM pg_stat_wal",
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=16)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--seconds", type=float, default=4.0, help="measured seconds per scenario and round")
    p.add_argument("--out", type=Path, default=BENCH / "out")
    args = p.parse_args(argv)
    if args.threads < 1 or args.rounds < 1 or args.seconds <= 0:
        p.error("--threads, --rounds and --seconds must be positive")
    return args


def postgres_cpu(postmaster: psutil.Process) -> float:
    total = 0.0
    for process in [postmaster, *postmaster.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def main(argv=None) -> int:
    args = parse_args(argv)
    out, res = harness.begin_run(args.out)
    try:
        url = harness.start_database(res, out, database="riskdesk_commit_path")
        env = {**os.environ, "DATABASE_URL": url, "APP_ENV": "test", "LOG_LEVEL": "WARNING"}
        harness.run_cli(["migrate"], env)
        harness.run_cli(["create-user", harness.AGENT, "--role", "agent", "--password-stdin"], env,
                        stdin=harness.AGENT_PASSWORD + "\n")
        os.environ.update(env)

        import floor_app  # its INSERT statement; its engine stays unused
        from sqlalchemy import text

        from app.config import get_settings
        from app.db import build_engine
        from app.security.deps import PrincipalClaims, verify_principal
        from app.transactions import flows
        from app.transactions.schemas import TransactionCreate
        from app.uow.unit import CoreSession, RequestContext

        engine = build_engine(url, get_settings())
        floor_app.engine.dispose()
        with engine.connect() as conn:
            user_id, version = conn.execute(
                text("SELECT id, token_version FROM users WHERE username = :name"), {"name": harness.AGENT}
            ).one()
            flush_sql = WAL_FLUSHES["io" if conn.dialect.server_version_info >= (18,) else "wal"]

        def payload(reference: str) -> dict:
            return {"account_id": f"acct_{hash(reference) % 1000}", "reference": reference,
                    "amount": Decimal("125.40"), "currency": "USD", "counterparty": "ACME GmbH",
                    "description": "invoice 42", "metadata": {"channel": "card", "country": "DE"}}

        def floor_write(reference: str) -> None:
            params = payload(reference)
            params["metadata"] = '{"channel": "card", "country": "DE"}'
            with engine.begin() as conn:
                conn.execute(floor_app.INSERT, params).one()

        def full_write(reference: str) -> None:
            session = CoreSession(engine, RequestContext(request_id=uuid.uuid4().hex, client_addr="127.0.0.1"))
            try:
                claims = PrincipalClaims(user_id=user_id, role="agent", token_version=version,
                                         claimed_username=harness.AGENT)
                actor = verify_principal(session, claims).actor
                outcome = flows.create(session=session, actor=actor,
                                         data=TransactionCreate.model_validate(payload(reference)))
                assert outcome.created
                session.commit()
            finally:
                session.close()

        postmaster = psutil.Process(res.pg_server.get_pid())

        def wal_counters() -> tuple[float, float]:
            with engine.connect() as conn:
                flushes, wal_bytes = conn.execute(text(flush_sql)).one()
            return float(flushes), float(wal_bytes)

        def run(write, seconds: float) -> dict:
            stop = threading.Event()
            counts = [0] * args.threads
            errors: list[BaseException] = []

            def worker(index: int) -> None:
                try:
                    while not stop.is_set():
                        write(f"cp-{uuid.uuid4().hex}")
                        counts[index] += 1
                except BaseException as exc:  # noqa: BLE001 - reported after the round
                    errors.append(exc)
                    stop.set()

            threads = [threading.Thread(target=worker, args=(i,)) for i in range(args.threads)]
            flushes0, bytes0 = wal_counters()
            cpu0, began = postgres_cpu(postmaster), time.monotonic()
            for thread in threads:
                thread.start()
            time.sleep(seconds)
            stop.set()
            for thread in threads:
                thread.join()
            elapsed, cpu1 = time.monotonic() - began, postgres_cpu(postmaster)
            flushes1, bytes1 = wal_counters()
            if errors:
                raise errors[0]
            n = sum(counts)
            return {"tps": n / elapsed, "pg_ms": 1000 * (cpu1 - cpu0) / n,
                    "flushes": (flushes1 - flushes0) / n, "wal_bytes": (bytes1 - bytes0) / n}

        scenarios = {"floor insert": floor_write, "full audited write": full_write}
        for write in scenarios.values():
            run(write, 1.0)  # warm-up: connections, plans
        results: dict[str, list[dict]] = {name: [] for name in scenarios}
        for round_no in range(args.rounds):
            order = list(scenarios) if round_no % 2 == 0 else list(reversed(scenarios))
            for name in order:
                log(f"round {round_no + 1}/{args.rounds}: {name}")
                results[name].append(run(scenarios[name], args.seconds))
        engine.dispose()

        print(f"\nThe audited write at the database alone — {psutil.cpu_count()} cores, {args.threads} threads, "
              f"{args.rounds} alternating rounds of {args.seconds:g}s; median round")
        print(f"{'scenario':<20} {'tx/s':>7} {'PG CPU ms/tx':>13} {'WAL fsync/tx':>13} {'WAL bytes/tx':>13}")
        for name, rounds in results.items():
            def median(key: str, rounds=rounds) -> float:
                return statistics.median(r[key] for r in rounds)
            print(f"{name:<20} {median('tps'):7.0f} {median('pg_ms'):13.3f} {median('flushes'):13.2f} "
                  f"{median('wal_bytes'):13.0f}")
        return 0
    finally:
        harness.close_resources(res)


if __name__ == "__main__":
    sys.exit(main())
