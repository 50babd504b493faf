"""Rule backtest at size: POST /api/rules/backtest over --transactions stored transactions.

One run starts an embedded PostgreSQL (bench/harness.py), migrates it, and loads with
set-based SQL (generate_series) --transactions transactions over --accounts accounts spread
over the last 30 days (skewed: some accounts far busier than others), in five currencies,
and a risk case for about 1 % of them (approved, rejected, escalated or open). It starts
one uvicorn worker of the app, signs in an admin and posts one backtest per --condition
through the HTTP API, printing its seconds and answer, then EXPLAIN (ANALYZE, BUFFERS) of
the statement the backtest sends (app/rules/backtest_sql.py), with the settings the app
uses for it.

    XDG_RUNTIME_DIR=/tmp .venv/bin/python bench/rules_backtest.py [--keep] [--transactions 1000000]

--keep keeps the data dir (out/rules_backtest_pg) and reuses its load on the next run.
Goal: 1M transactions, a 24 h window rule, within 10 s on the 2-core machine.
"""

import argparse
import json
import os
import re
import secrets
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
import harness  # noqa: E402  embedded PostgreSQL, uvicorn
from review_queue import connect, database_env, scalar  # noqa: E402

ROOT = harness.ROOT
sys.path.insert(0, str(ROOT))
log = harness.log
LOAD_MARK = "bench/rules_backtest.py load"
CONDITIONS = ['account_count("24h") > 5 && tx.amount > 1000', 'account_sum("24h") > 20000',
              'tx.amount > 1000 && tx.metadata.channel == "wire"']

TRANSACTIONS_SQL = """
INSERT INTO transactions (reference, account_id, amount, currency, counterparty, description, metadata,
                          status, review_status, created_at, updated_at)
SELECT 'bt-' || lpad(r.g::text, 8, '0'),
       'acct_' || lpad(floor(%(accounts)s * r.a * r.a)::int::text, 5, '0'),
       CASE WHEN r.cur = 'JPY' THEN round(100 * exp(r.x * 9))::numeric ELSE round(exp(r.x * 9)::numeric, 2) END,
       r.cur, 'Merchant ' || (r.g %% 5000), 'bench payment ' || r.g,
       jsonb_build_object('channel', (ARRAY['card', 'sepa', 'wire', 'ach'])[1 + r.g %% 4]),
       'settled', 'clear', r.at, r.at
FROM (SELECT g, random() AS a, random() AS x, now() - random() * interval '30 days' AS at,
             (ARRAY['USD', 'USD', 'USD', 'USD', 'EUR', 'EUR', 'EUR', 'GBP', 'GBP', 'JPY'])
                 [1 + floor(random() * 10)::int] AS cur
      FROM generate_series(1, %(rows)s) AS g OFFSET 0) AS r
"""
CASES_SQL = """
INSERT INTO review_cases (kind, state, transaction_id, risk, amount, currency, reason, opened_at, updated_at,
                          decided_at)
SELECT 'risk', s.state, s.id, 70, s.amount, s.currency, 'bench', s.created_at, s.created_at,
       CASE WHEN s.state IN ('approved', 'rejected') THEN s.created_at + interval '1 hour' END
FROM (SELECT id, amount, currency, created_at,
             (ARRAY['approved', 'rejected', 'rejected', 'escalated', 'open'])[1 + (id / 100 %% 5)::int] AS state
      FROM transactions WHERE id %% 100 = 0) AS s
"""


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--transactions", type=int, default=1_000_000)
    p.add_argument("--accounts", type=int, default=3_000)
    p.add_argument("--condition", action="append", help="a condition to backtest (repeatable); default: three")
    p.add_argument("--keep", action="store_true", help="keep the data dir and reuse its load next time")
    p.add_argument("--out", type=Path, default=BENCH / "out")
    return p.parse_args(argv)


def prepare(res, args, out: Path) -> str:
    if args.keep:
        url = harness.start_database(res, out, data_dir=out / "rules_backtest_pg",
                                     database=f"bt_t{args.transactions}_a{args.accounts}")
        res.keep_data = True
    else:
        url = harness.start_database(res, out)
    log("migrating")
    harness.run_cli(["migrate"], database_env(url, ""))
    conn = connect(url)
    cur = conn.cursor()
    comment = scalar(cur, "SELECT obj_description('transactions'::regclass, 'pg_class')")
    if comment != LOAD_MARK:
        if scalar(cur, "SELECT count(*) FROM transactions"):
            raise RuntimeError("the kept database holds a partial load; delete out/rules_backtest_pg")
        params = {"rows": args.transactions, "accounts": args.accounts}
        for name, sql in (("transactions", TRANSACTIONS_SQL), ("review_cases", CASES_SQL)):
            began = time.perf_counter()
            cur.execute(sql, params)
            log(f"loaded {cur.rowcount:,} {name} in {time.perf_counter() - began:.1f}s")
        began = time.perf_counter()
        cur.execute("VACUUM ANALYZE")
        log(f"VACUUM ANALYZE in {time.perf_counter() - began:.1f}s")
        cur.execute("COMMENT ON TABLE transactions IS %s", (LOAD_MARK,))
    else:
        log(f"reusing the load in {res.pg_dir}")
    from app.security.passwords import hash_password

    cur.execute("INSERT INTO users (username, password_hash, role) VALUES ('bench-admin', %s, 'admin') "
                "ON CONFLICT (username) DO NOTHING", (hash_password(secrets.token_urlsafe(16)),))
    conn.close()
    return url


def post(port: int, token: str, body: dict) -> tuple[int, dict, float]:
    request = urllib.request.Request(f"http://{harness.HOST}:{port}/api/rules/backtest", method="POST",
                                     data=json.dumps(body).encode(),
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    began = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=180) as r:
            status, payload = r.status, r.read()
    except urllib.error.HTTPError as exc:
        status, payload = exc.code, exc.read()
    return status, json.loads(payload), time.perf_counter() - began


def explain(url: str, condition: str) -> list[str]:
    from app.rules import backtest_plan, backtest_sql
    from app.rules.language import compile_condition

    program = compile_condition(condition)
    sql = backtest_sql.statement(backtest_plan.plan(condition), tuple(sorted(program.windows)), since=False,
                                 until=False)
    conn = connect(url)
    cur = conn.cursor()
    cur.execute("BEGIN")
    for name, value in backtest_sql.SETTINGS.items():  # what the backtest sets for its scan
        cur.execute("SELECT set_config(%s, %s, true)", (name, value))
    cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql.replace("%", "%%"))
    lines = [row[0] for row in cur.fetchall()]
    cur.execute("ROLLBACK")
    conn.close()
    # The minor-units CASE lists every currency; shorten it for reading.
    return [re.sub(r"CASE t\.currency WHEN .*? ELSE 2 END", "CASE t.currency … END", line) for line in lines]


def main(argv=None) -> int:
    args = parse_args(argv)
    out, res = harness.begin_run(args.out)
    try:
        url = prepare(res, args, out)
        secret = secrets.token_urlsafe(48)
        conn = connect(url)
        admin_id = scalar(conn.cursor(), "SELECT id FROM users WHERE username = 'bench-admin'")
        facts = {s: scalar(conn.cursor(), f"SHOW {s}") for s in ("server_version", "shared_buffers", "work_mem")}
        facts["transactions"] = scalar(conn.cursor(), "SELECT count(*) FROM transactions")
        facts["accounts"] = scalar(conn.cursor(), "SELECT count(DISTINCT account_id) FROM transactions")
        conn.close()
        from app.security import tokens

        token = tokens.issue(user_id=admin_id, username="bench-admin", role="admin", token_version=0, key=secret,
                             ttl_seconds=3600)[0]
        log("starting the app (one uvicorn worker)")
        port, _ = harness.start_server(res, "backtest-app", ["app.main:app"], database_env(url, secret), out)
        print(f"PostgreSQL {facts['server_version']}, shared_buffers {facts['shared_buffers']}, work_mem "
              f"{facts['work_mem']}; {facts['transactions']:,} transactions over {facts['accounts']:,} accounts, "
              f"30 days; {os.cpu_count()} cores; background load {harness.background_load(1):.0f}% of a core")
        for condition in args.condition or CONDITIONS:
            status, answer, seconds = post(port, token, {"condition": condition})
            print(f"\nPOST /api/rules/backtest {condition!r} → {status} in {seconds:.2f} s")
            print("  " + json.dumps({k: v for k, v in answer.items() if k != "sample"}))
            print("\n  EXPLAIN (ANALYZE, BUFFERS) of its statement (no since/until):")
            print("\n".join("    " + line for line in explain(url, condition)))
        return 0
    except KeyboardInterrupt:
        log("interrupted; stopping everything")
        return 130
    finally:
        harness.close_resources(res)


if __name__ == "__main__":
    raise SystemExit(main())
