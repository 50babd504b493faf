"""POST /transactions and batch ingest with 20 active detection rules, against the same app without them.

    XDG_RUNTIME_DIR=/tmp .venv/bin/python bench/rules_throughput.py [--rounds 3] [--duration 8]

Starts its own embedded PostgreSQL (throwaway, under bench/out/pg/), migrates, seeds `--rows`
transactions over the load generator's 1,000 accounts (so the windows have history to scan),
starts one uvicorn worker of the app and creates 20 rules through the API: field tests,
account_count/account_sum windows (10 min to 7 days), in_list on a 1,000-item list and on
metadata, regular expressions. Then, `--rounds` times, measures POST /transactions with the
rules disabled and with them active (alternating which goes first), and batch ingest with the
rules active. Prints req/s, latency, the worker's CPU per request, and the with/without
ratio per round (goal ≥ 80 %) and the batch rate (goal ≥ 8,000 transactions/s).
"""

import argparse
import json
import os
import statistics
import time
import urllib.parse
from pathlib import Path

import psycopg2
from harness import (
    AGENT,
    AGENT_PASSWORD,
    BENCH,
    HOST,
    begin_run,
    close_resources,
    get_token,
    http,
    log,
    measure_load,
    run_cli,
    start_database,
    start_server,
)

ADMIN, ADMIN_PASSWORD = "bench-admin", "slate-harbour-pine-77"
RULES = [
    ("Very large payment", "tx.amount > 8990"),
    ("Just under 10k", 'tx.amount >= 9000 && tx.amount < 10000 && tx.currency == "USD"'),
    ("Hourly velocity", 'account_count("1h") > 500'),
    ("Daily volume", 'account_sum("24h") > 5000000'),
    ("Busy day, big payment", 'account_count("24h") > 1000 && tx.amount > 5000'),
    ("Blocked counterparty", 'in_list("blocked_counterparties", tx.counterparty)'),
    ("High-risk country", 'in_list("high_risk_countries", tx.metadata.country)'),
    ("Crypto channel", 'tx.metadata.channel == "crypto"'),
    ("Emulator", 'has(tx.metadata.device) && tx.metadata.device == "emulator"'),
    ("Gift cards", 'tx.description.matches("(?i)gift ?card")'),
    ("Sanctioned currency", 'tx.currency in ["RUB", "IRR"]'),
    ("Shell company", 'tx.counterparty.startsWith("Shell ")'),
    ("Hourly sum and size", 'account_sum("1h") > 100000 && tx.amount > 8000'),
    ("Foreign large", 'tx.amount > 5000 && tx.metadata.country != "DE"'),
    ("Weekly velocity", 'account_count("168h") > 5000'),
    ("Test references", 'tx.reference.startsWith("test-")'),
    ("Long description", "size(tx.description) > 200"),
    ("Doubled amount", "tx.amount * 2 > 17990"),
    ("North Korea", 'tx.metadata.country == "KP"'),
    ("Burst", 'account_count("10m") > 1000 && account_sum("10m") > 2000000'),
]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--duration", type=float, default=8)
    parser.add_argument("--batch-requests", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=BENCH / "out")
    return parser.parse_args(argv)


def connect(url: str):
    return psycopg2.connect(url.replace("postgresql+psycopg2://", "postgresql://", 1))


def seed(url: str, rows: int) -> None:
    """History over the last 7 days on the generator's accounts (acct_0 … acct_999)."""
    conn = connect(url)
    with conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO transactions (reference, account_id, amount, currency, counterparty, description, "
            "metadata, created_at) SELECT 'seed-' || g, 'acct_' || (g %% 1000), 1 + (g %% 9000), 'USD', "
            "'Seed Counterparty', 'seed payment', '{\"channel\": \"card\", \"country\": \"DE\"}', "
            "now() - (g %% 604800) * interval '1 second' FROM generate_series(1, %s) g", (rows,))
        cur.execute("ANALYZE transactions")
    conn.close()


def api(port: int, method: str, path: str, token: str, body: dict | None = None) -> dict:
    status, raw = http(method, f"http://{HOST}:{port}{path}", data=json.dumps(body).encode() if body else None,
                       headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    if status >= 300:
        raise RuntimeError(f"{method} {path} → {status}: {raw[:300]!r}")
    return json.loads(raw) if raw else {}


def admin_token(port: int) -> str:
    form = urllib.parse.urlencode({"username": ADMIN, "password": ADMIN_PASSWORD}).encode()
    status, body = http("POST", f"http://{HOST}:{port}/auth/token", data=form,
                        headers={"Content-Type": "application/x-www-form-urlencoded"})
    if status != 200:
        raise RuntimeError(f"admin token → {status}")
    return json.loads(body)["access_token"]


def create_rules(port: int, token: str) -> list[int]:
    api(port, "PUT", "/api/lists/blocked_counterparties", token,
        {"items": [f"Blocked Trading {i} Ltd" for i in range(1000)]})
    api(port, "PUT", "/api/lists/high_risk_countries", token, {"items": ["KP", "IR", "SY", "CU"]})
    return [api(port, "POST", "/api/rules", token, {"name": name, "condition": condition, "mode": "draft",
                                                  "action": {"risk": 75, "reason": name}})["id"]
            for name, condition in RULES]


def set_rules(port: int, token: str, ids: list[int], active: bool) -> None:
    for rule_id in ids:
        if active:
            api(port, "POST", f"/api/rules/{rule_id}/publish", token, {"version": 1, "mode": "active"})
        else:
            api(port, "POST", f"/api/rules/{rule_id}/disable", token)


def row(name: str, result: dict) -> str:
    cpu = result["cpu"]
    rps = result["throughput"]
    per_request = cpu["server"] / 100 / rps * 1000 if rps else float("nan")
    return (f"{name:<34} {result['requests']:>8} {result['errors']:>6} {rps:>8.0f} "
            f"{result['p50_ms']:>7.1f} {result['p99_ms']:>7.1f} {per_request:>10.2f} {cpu['server']:>8.0f} "
            f"{cpu['pg']:>7.0f} {cpu['other']:>6.0f}")


def main(argv=None) -> int:
    args = parse_args(argv)
    out, res = begin_run(args.out)
    started = time.monotonic()
    try:
        url = start_database(res, out)
        postmaster = res.pg_server.get_pid()
        env = {**os.environ, "DATABASE_URL": url, "APP_ENV": "test", "LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1"}
        run_cli(["migrate"], env)
        run_cli(["create-user", AGENT, "--role", "agent", "--password-stdin"], env, stdin=AGENT_PASSWORD + "\n")
        run_cli(["create-user", ADMIN, "--role", "admin", "--password-stdin"], env, stdin=ADMIN_PASSWORD + "\n")
        log(f"seeding {args.rows} transactions of history")
        seed(url, args.rows)
        port, pid = start_server(res, "rules-app", ["app.main:app"], env, out)
        token, admin = get_token(port), admin_token(port)
        ids = create_rules(port, admin)
        common = {"host": HOST, "port": port, "token": token, "concurrency": args.concurrency,
                  "warmup": args.warmup, "duration": args.duration, "kind": "post", "path": "/transactions"}
        timeout = args.warmup + args.duration + 60
        results: dict[str, list[dict]] = {"without": [], "with": []}
        for n in range(args.rounds):
            for label in (("without", "with") if n % 2 == 0 else ("with", "without")):
                set_rules(port, admin, ids, active=label == "with")
                log(f"round {n + 1}/{args.rounds}: POST /transactions {label} 20 rules")
                results[label].append(measure_load({**common, "ref_prefix": f"{label}-{n}"}, pid, postmaster,
                                                   timeout))
        batches: dict[str, list[dict]] = {"without": [], "with": []}
        for n in range(args.rounds):
            for label in (("with", "without") if n % 2 == 0 else ("without", "with")):
                set_rules(port, admin, ids, active=label == "with")
                log(f"round {n + 1}/{args.rounds}: batch ingest {label} 20 rules")
                job = {"host": HOST, "port": port, "token": token, "kind": "batch", "path": "/transactions/batch",
                       "concurrency": 2, "warmup": 0, "duration": 0, "warmup_requests": 2,
                       "requests": args.batch_requests, "batch_size": args.batch_size,
                       "ref_prefix": f"batch-{label}-{n}"}
                batches[label].append(measure_load(job, pid, postmaster, 600))
        conn = connect(url)
        with conn, conn.cursor() as cur:
            cur.execute("SELECT count(*), count(*) FILTER (WHERE case_id IS NOT NULL) FROM rule_hits")
            hits, flagging = cur.fetchone()
            cur.execute("SELECT r.name, h.outcome, count(*) FROM rule_hits h JOIN rules r ON r.id = h.rule_id "
                        "GROUP BY 1, 2 ORDER BY 3 DESC")
            by_rule = cur.fetchall()
        conn.close()
    finally:
        close_resources(res)

    print(f"\nPOST /transactions with and without 20 active rules, one uvicorn worker, concurrency {args.concurrency}; "
          f"{args.rows} transactions of history")
    print(f"{'scenario':<34} {'requests':>8} {'errors':>6} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} "
          f"{'srv ms/req':>10} {'srv cpu%':>8} {'pg cpu%':>7} {'other%':>6}")
    for label in ("without", "with"):
        for n, result in enumerate(results[label]):
            print(row(f"round {n + 1} {label} rules", result))
    ratios = [w["throughput"] / wo["throughput"] for w, wo in zip(results["with"], results["without"])
              if wo["throughput"]]
    print(f"\nratio with/without: {statistics.median(ratios):.1%} median of the rounds "
          f"({', '.join(f'{r:.1%}' for r in ratios)}); target ≥ 80%")
    for label in ("without", "with"):
        rates = [b["items_created"] / b["elapsed_s"] if b["elapsed_s"] else 0.0 for b in batches[label]]
        cpu = [b["cpu"]["server"] / 100 * b["elapsed_s"] / b["items_created"] * 1e6 for b in batches[label]
               if b["items_created"]]
        print(f"batch ingest {label} 20 rules: {statistics.median(rates):,.0f} transactions/s median "
              f"({', '.join(f'{r:,.0f}' for r in rates)}); worker CPU {statistics.median(cpu):.0f} µs/item"
              + ("; target ≥ 8,000/s" if label == "with" else ""))
    print(f"rule hits recorded: {hits:,} ({flagging:,} opened or joined a case): "
          + ", ".join(f"{name} {outcome} {count:,}" for name, outcome, count in by_rule))
    print(f"total run time {time.monotonic() - started:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
