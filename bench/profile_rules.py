"""In-process profile of batch ingest with the rules bench's 20 rules (no HTTP, no uvicorn).

    TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \
        .venv/bin/python bench/profile_rules.py [--batches 10] [--size 1000] [--top 40] [--no-rules]

Makes a throwaway database on TEST_DATABASE_URL's server, migrates it, seeds --rows of history
over the load generator's 1,000 accounts, creates rules_throughput.py's rules and lists through
the API (TestClient), then runs --batches batch creates of --size items through
app.transactions.flows.create_many in a unit of work each, under cProfile, and prints the
items/s and the profile (cumulative and own time). The database is dropped at the end.
"""

import argparse
import cProfile
import gc
import os
import pstats
import subprocess
import sys
import time
from pathlib import Path

import psycopg2
from psycopg2 import sql
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("APP_ENV", "test")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ.setdefault("AUDIT_SIGNING_KEY", "cmlza2Rlc2stdGVzdC1jaGVja3BvaW50LXNlZWQtMzI=")

from rules_throughput import RULES, seed  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DB = f"riskdesk_profile_{os.getpid()}"


def admin(url: str, statement) -> None:
    conn = psycopg2.connect(url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(statement)
    conn.close()


def recent(url: str, rows: int) -> None:
    conn = psycopg2.connect(url.replace("postgresql+psycopg2://", "postgresql://", 1))
    with conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO transactions (reference, account_id, amount, currency, counterparty, description, metadata, "
            "created_at) SELECT 'recent-' || g, 'acct_' || (g %% 1000), 1 + (g * 7 %% 9000), 'USD', "
            "'Seed Counterparty', 'seed payment', '{\"channel\": \"card\", \"country\": \"DE\"}', "
            "now() - (g %% 3600) * interval '1 second' "
            "FROM generate_series(1, %s) g", (rows,))
        cur.execute("ANALYZE transactions")
    conn.close()


def body(prefix: str, n: int) -> dict:
    return {"account_id": f"acct_{n % 1000}", "reference": f"{prefix}-{n}", "amount": f"{1 + n % 9000}.{n % 100:02d}",
            "currency": "USD", "counterparty": "Acme Supplies", "description": "invoice 42",
            "metadata": {"channel": "card", "country": "DE"}}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--recent", type=int, default=30_000,
                        help="extra rows within the last hour (as after the bench's POST rounds: busy 1h windows)")
    parser.add_argument("--no-rules", action="store_true")
    parser.add_argument("--no-profile", action="store_true", help="only time the batches (and the window query)")
    parser.add_argument("--freeze", action="store_true", help="gc.freeze() before the batches")
    parser.add_argument("--gc-threshold", type=int, nargs=3, help="gc.set_threshold() before the batches")
    args = parser.parse_args()
    server = os.environ["TEST_DATABASE_URL"]
    admin(server, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DB)))
    try:
        url = make_url(server).set(drivername="postgresql+psycopg2", database=DB).render_as_string(hide_password=False)
        os.environ["DATABASE_URL"] = url
        subprocess.run([sys.executable, "-m", "app", "migrate"], check=True, cwd=ROOT, env=os.environ)
        seed(url, args.rows)
        recent(url, args.recent)
        return run(args, url)
    finally:
        from app.db import database

        database.dispose()
        admin(server, sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DB)))


def run(args, url: str) -> int:
    from fastapi.testclient import TestClient

    from app.audit.service import Actor
    from app.config import get_settings
    from app.db import database
    from app.main import app
    from app.rules import windows
    from app.security import tokens
    from app.transactions import flows
    from app.transactions.schemas import TransactionCreate
    from app.transactions.service import NewTransaction
    from app.users import service as users

    database.configure(url)
    session = database.session()
    admin_user = users.create(session=session, actor=Actor(name="bench"), username="profiler", role="admin",
                              password="slate-harbour-pine-77")
    session.commit()
    token, _ = tokens.issue(user_id=admin_user.id, username=admin_user.username, role=admin_user.role,
                            token_version=admin_user.token_version, key=get_settings().signing_key, ttl_seconds=3600)
    headers = {"Authorization": f"Bearer {token}"}
    actor = Actor(name=admin_user.username, id=admin_user.id, role=admin_user.role)
    with TestClient(app) as client:
        if not args.no_rules:
            client.put("/api/lists/blocked_counterparties", headers=headers,
                       json={"items": [f"Blocked Trading {i} Ltd" for i in range(1000)]}).raise_for_status()
            client.put("/api/lists/high_risk_countries", headers=headers,
                       json={"items": ["KP", "IR", "SY", "CU"]}).raise_for_status()
            for name, condition in RULES:
                rule = client.post("/api/rules", headers=headers, json={
                    "name": name, "condition": condition, "mode": "draft", "action": {"risk": 75, "reason": name}})
                rule.raise_for_status()
                client.post(f"/api/rules/{rule.json()['id']}/publish", headers=headers,
                            json={"version": 1, "mode": "active"}).raise_for_status()

    def batch(prefix: str, first: int) -> None:  # numbered on from `first`, as the load generator numbers them
        unit = database.core_unit()
        items = [NewTransaction(TransactionCreate.model_validate(body(prefix, n)), actor)
                 for n in range(first, first + args.size)]
        flows.create_many(session=unit.session, items=items)
        unit.commit()
        unit.session.close()

    batch("warmup", 0)
    profile = cProfile.Profile()
    spent = {"windows": 0.0}
    compute = windows.compute

    def timed_compute(*a, **kw):
        begun = time.perf_counter()
        try:
            return compute(*a, **kw)
        finally:
            spent["windows"] += time.perf_counter() - begun
    windows.compute = timed_compute
    collecting = {"since": 0.0, "spent": 0.0, "runs": 0}
    by_generation = [[0, 0.0], [0, 0.0], [0, 0.0]]

    def on_gc(phase: str, info: dict) -> None:
        if phase == "start":
            collecting["since"] = time.perf_counter()
        else:
            took = time.perf_counter() - collecting["since"]
            collecting["spent"] += took
            collecting["runs"] += 1
            by_generation[info["generation"]][0] += 1
            by_generation[info["generation"]][1] += took
    gc.callbacks.append(on_gc)
    if args.gc_threshold:
        gc.set_threshold(*args.gc_threshold)
    if args.freeze:
        gc.collect()
        gc.freeze()
    print("tracked objects", len(gc.get_objects()), "frozen", gc.get_freeze_count())
    started, cpu = time.perf_counter(), time.process_time()
    if not args.no_profile:
        profile.enable()
    for k in range(args.batches):
        batch("b", (k + 1) * args.size)
    profile.disable()
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    items = args.batches * args.size
    print(f"{items / elapsed:,.0f} items/s in-process{'' if args.no_profile else ' (under cProfile)'}, "
          f"{elapsed / items * 1e6:.0f} µs/item wall, {cpu / items * 1e6:.0f} µs/item CPU of this process, "
          f"window query and its Python {spent['windows'] / items * 1e6:.0f} µs/item wall, "
          f"garbage collection {collecting['spent'] / items * 1e6:.0f} µs/item ({collecting['runs']} runs)")
    print("collections per generation (runs, ms):", [(n, round(t * 1000)) for n, t in by_generation])
    if args.no_profile:
        return 0
    stats = pstats.Stats(profile)
    stats.sort_stats("cumulative").print_stats(args.top)
    stats.sort_stats("tottime").print_stats(args.top)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
