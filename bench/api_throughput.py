"""API throughput: the real transaction endpoints against a minimal "floor" app.

One run starts a throwaway embedded PostgreSQL, migrates a fresh database, creates an agent,
bulk-loads seed transactions, starts one uvicorn worker of the real app and one of
bench/floor_app.py, and drives each scenario from a separate load-generator process
(bench/loadgen.py). It prints a table and stops everything it started, also on error or
Ctrl-C. See bench/README.md.

    XDG_RUNTIME_DIR=/tmp .venv/bin/python bench/api_throughput.py [--duration 15] [--concurrency 16]
"""

import argparse
import json
import os
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from harness import (  # the shared bench harness
    AGENT,
    AGENT_PASSWORD,
    BENCH,
    HOST,
    PYTHON,
    ROOT,
    background_load,
    begin_run,
    close_resources,
    find_py_spy,
    fmt_row,
    get_token,
    http,
    log,
    measure_load,
    py_spy_record,
    run_cli,
    start_database,
    start_server,
    summarize_profile,
)

SEED_PREFIX = "seed-"
TARGET_RATIO = 0.80
TARGET_BATCH_TPS = 10_000
TARGET_CONTEXT_COST = 2.0

SEED_SQL = """
INSERT INTO transactions (reference, account_id, amount, currency, counterparty, description, metadata,
                          created_by, created_at, updated_at)
SELECT 'seed-' || lpad(g::text, 6, '0'),
       'acct_' || (g %% 1000),
       round((1 + random() * 9999)::numeric, 2),
       'USD',
       'Counterparty ' || (g %% 500),
       'seeded payment',
       jsonb_build_object('channel', 'card', 'country', 'DE'),
       %(user_id)s,
       now() - (g || ' seconds')::interval,
       now() - (g || ' seconds')::interval
FROM generate_series(1, %(rows)s) AS g
"""








# --------------------------------------------------------------------------- resources










# --------------------------------------------------------------------------- setup






# Every transaction gets a score; one in five is flagged with an open case, one in ten of
# those decided, so the account context reads real scores, cases and decisions.
SEED_REVIEW_SQL = """
INSERT INTO risk_scores (transaction_id, score, model, model_version, reasons, is_flagged, created_by)
SELECT id, (id * 37) %% 100, 'fraud-gbm', '2026.11',
       '[{"code": "velocity", "description": "7 payments in 10 minutes", "weight": "0.41"}]'::jsonb,
       (id * 37) %% 100 >= 80, %(user_id)s
FROM transactions WHERE reference LIKE 'seed-%%';
INSERT INTO review_cases (kind, state, transaction_id, risk, amount, currency, reason, decided_by, decision,
                          reason_code, note, decided_at)
SELECT 'risk', CASE WHEN id %% 10 = 0 THEN 'rejected' ELSE 'open' END, id, (id * 37) %% 100, amount, currency,
       'score at or above the flag threshold',
       CASE WHEN id %% 10 = 0 THEN %(user_id)s END, CASE WHEN id %% 10 = 0 THEN 'reject' END,
       CASE WHEN id %% 10 = 0 THEN 'suspected_fraud' END, CASE WHEN id %% 10 = 0 THEN 'card testing' END,
       CASE WHEN id %% 10 = 0 THEN now() END
FROM transactions WHERE reference LIKE 'seed-%%' AND (id * 37) %% 100 >= 80;
UPDATE transactions SET review_status = 'flagged'
WHERE id IN (SELECT transaction_id FROM review_cases WHERE state = 'open');
"""


def seed(url: str, rows: int) -> dict:
    import psycopg2
    from sqlalchemy.engine import make_url

    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = psycopg2.connect(dsn)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT id FROM users WHERE username = %s", (AGENT,))
            user_id = cur.fetchone()[0]
            began = time.perf_counter()
            cur.execute(SEED_SQL, {"user_id": user_id, "rows": rows})
            cur.execute(SEED_REVIEW_SQL, {"user_id": user_id})
            for table in ("transactions", "risk_scores", "review_cases"):
                cur.execute(f"VACUUM ANALYZE {table}")
            seconds = time.perf_counter() - began
            settings = {}
            for name in ("server_version", "shared_buffers", "fsync", "synchronous_commit", "max_connections"):
                cur.execute(f"SHOW {name}")
                settings[name] = cur.fetchone()[0]
            cur.execute("SELECT count(*) FROM transactions")
            settings["rows"] = cur.fetchone()[0]
            settings["seed_seconds"] = seconds
            return settings
    finally:
        conn.close()










def group_commit_totals(port: int) -> tuple[float, float]:
    """(creates, database transactions) of POST /transactions so far, from the worker's /metrics."""
    _, body = http("GET", f"http://{HOST}:{port}/metrics")
    totals = {}
    for line in body.decode().splitlines():
        name, _, value = line.partition(" ")
        if name in ("riskdesk_transaction_group_size_sum", "riskdesk_transaction_group_size_count"):
            totals[name.rsplit("_", 1)[1]] = float(value)
    return totals.get("sum", 0.0), totals.get("count", 0.0)


def smoke_check(full_port: int, floor_port: int, token: str) -> None:
    """One request per endpoint, so a broken setup fails loudly instead of as 100 % errors."""
    auth = {"Authorization": f"Bearer {token}"}
    body = json.dumps({"account_id": "acct_smoke", "reference": "smoke-1", "amount": "10.00",
                       "currency": "USD"}).encode()
    checks = [
        ("full POST", "POST", f"http://{HOST}:{full_port}/transactions", body,
         {**auth, "Content-Type": "application/json"}),
        ("floor POST", "POST", f"http://{HOST}:{floor_port}/floor/transactions",
         body.replace(b"smoke-1", b"smoke-2"), {"Content-Type": "application/json"}),
        ("full GET", "GET", f"http://{HOST}:{full_port}/transactions/{SEED_PREFIX}000001", None, auth),
        ("floor GET", "GET", f"http://{HOST}:{floor_port}/floor/transactions/{SEED_PREFIX}000001", None, {}),
    ]
    for name, method, url, data, headers in checks:
        status, reply = http(method, url, data=data, headers=headers)
        if status != 200 or b'"reference"' not in reply:
            raise RuntimeError(f"smoke check {name} → {status}: {reply[:300]!r}")


# --------------------------------------------------------------------------- measuring




@dataclass
class Scenario:
    name: str
    group: str  # "POST" | "GET" | "CONTEXT" | "BATCH"
    side: str  # "full" | "floor"
    job: dict
    server_pid: int
    rounds: list[dict] = field(default_factory=list)  # one loadgen result per round

    @property
    def result(self) -> dict:
        """The rounds together: counts summed, rates and latencies the median round's."""
        rounds = self.rounds
        merged = {key: statistics.median(r[key] for r in rounds)
                  for key in ("throughput", "p50_ms", "p99_ms", "elapsed_s") if key in rounds[0]}
        for key in ("requests", "errors", "ok", "items_created", "items_failed"):
            if key in rounds[0]:
                merged[key] = sum(r[key] for r in rounds)
        merged["cpu"] = {key: statistics.median(r["cpu"][key] for r in rounds) for key in rounds[0]["cpu"]}
        merged["cpu_ms_per_request"] = statistics.median(
            10 * r["cpu"]["server"] / r["throughput"] if r["throughput"] else 0.0 for r in rounds)
        merged["statuses"] = {}
        for r in rounds:
            for status, n in r.get("statuses", {}).items():
                merged["statuses"][status] = merged["statuses"].get(status, 0) + n
        merged["error_samples"] = [e for r in rounds for e in r.get("error_samples", [])][:5]
        return merged


def round_ratios(numerator: Scenario, denominator: Scenario) -> list[float]:
    """Per round, numerator's req/s over denominator's: the two ran back to back in that round."""
    return [a["throughput"] / b["throughput"] if b["throughput"] else 0.0
            for a, b in zip(numerator.rounds, denominator.rounds)]


def run_rounds(group: list[Scenario], rounds: int, postmaster_pid: int, timeout: float) -> None:
    """Run the group's scenarios back to back, `rounds` times, rotating which goes first.

    This VM's speed drifts by tens of percent over minutes. Measured side by side in short
    alternating rounds, both sides of a ratio see the same drift, and the median round
    ignores a round that a burst of background work spoiled.
    """
    for n in range(rounds):
        for s in group[n % len(group):] + group[:n % len(group)]:
            job = dict(s.job)
            if "ref_prefix" in job:
                job["ref_prefix"] = f"{job['ref_prefix']}-r{n}"  # every round creates new references
            log(f"round {n + 1}/{rounds}: {s.name.strip()}")
            s.rounds.append(measure(s, job, postmaster_pid, timeout))


def measure(scenario: Scenario, job: dict, postmaster_pid: int, timeout: float) -> dict:
    return measure_load(job, scenario.server_pid, postmaster_pid, timeout)


# --------------------------------------------------------------------------- profiling






def profile_worker(args, ports: dict[str, int], pids: dict[str, int], token: str, out: Path) -> None:
    """Load one app's worker (--profile-app) with one scenario while py-spy samples it."""
    py_spy = find_py_spy()
    if not py_spy:
        return
    what, target = args.profile_scenario, args.profile_app
    if target == "floor" and what == "batch":
        log("--profile: the floor app has no batch endpoint; skipped")
        return
    port, pid = ports[target], pids[target]
    prefix = "/floor/transactions" if target == "floor" else "/transactions"
    raw = out / f"profile_{target}_{what}.txt"
    seconds = max(1, round(args.profile))
    tag = f"prof-{int(time.time())}"
    if what == "batch":
        job = {"host": HOST, "port": port, "kind": "batch", "path": "/transactions/batch", "token": token,
               "concurrency": args.batch_concurrency, "warmup": 0, "duration": 0, "warmup_requests": 0,
               "requests": seconds * 8 + 8, "batch_size": args.batch_size, "ref_prefix": tag}
    elif what == "get":
        job = {"host": HOST, "port": port, "kind": "get", "path": prefix + "/", "token": token,
               "concurrency": args.concurrency, "warmup": 1, "duration": seconds + 2,
               "get_refs": [SEED_PREFIX, args.rows]}
    else:
        job = {"host": HOST, "port": port, "kind": "post", "path": prefix, "token": token,
               "concurrency": args.concurrency, "warmup": 1, "duration": seconds + 2, "ref_prefix": tag}
    log(f"profiling the {target} app under {what} load for {seconds}s with py-spy → {raw}")
    loadgen = subprocess.Popen([str(PYTHON), str(BENCH / "loadgen.py"), json.dumps(job)], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.5)
        if not py_spy_record(py_spy, pid, seconds, raw, args.profile_gil):
            return
    finally:
        if loadgen.poll() is None:
            loadgen.kill()
        loadgen.wait()
    mode = "thread holding the GIL only" if args.profile_gil else "all threads py-spy considers active"
    summarize_profile(raw, top=args.profile_top, title=f"{target} {what.upper()}, {mode}")








# --------------------------------------------------------------------------- report




def report(scenarios: list[Scenario], batch: Scenario | None, args, env_info: dict) -> bool:
    print()
    print(f"Riskdesk API throughput — {psutil.cpu_count()} cores, PostgreSQL {env_info.get('server_version')} "
          f"(fsync={env_info.get('fsync')}, synchronous_commit={env_info.get('synchronous_commit')}, "
          f"shared_buffers={env_info.get('shared_buffers')}), {env_info.get('rows')} rows seeded "
          f"in {env_info.get('seed_seconds', 0):.1f}s")
    print(f"one uvicorn worker per app; concurrency {args.concurrency}, keep-alive; {args.rounds} rounds, in each "
          f"every scenario of a pair back to back ({args.warmup:g}s warm-up + {args.duration:g}s measured); "
          f"background load before the run {env_info.get('background_load_pct', 0):.0f}% of a core")
    print("requests and errors are summed over the rounds; every other column is the median round's")
    print()
    headers = ["scenario", "requests", "errors", "req/s", "p50 ms", "p99 ms", "srv ms/req", "srv cpu%",
               "pg cpu%", "gen cpu%", "other%"]
    widths = [35, 8, 6, 7, 7, 7, 10, 8, 7, 8, 6]
    print(fmt_row(headers, widths))
    print(fmt_row(["-" * w for w in widths], widths))
    for s in scenarios:
        r, c = s.result, s.result["cpu"]
        cpu_ms = r["cpu_ms_per_request"]
        print(fmt_row([s.name, r["requests"], r["errors"], f"{r['throughput']:.0f}", f"{r['p50_ms']:.1f}",
                       f"{r['p99_ms']:.1f}", f"{cpu_ms:.2f}", f"{c['server']:.0f}", f"{c['pg']:.0f}",
                       f"{c['loadgen']:.0f}", f"{c['other']:.0f}"], widths))
    print()
    ok = True
    by = {(s.group, s.side): s for s in scenarios}

    def rounds_text(values: list[float], fmt: str) -> str:
        return ", ".join(format(v, fmt) for v in values)

    for group in ("POST", "GET"):
        full, floor = by.get((group, "full")), by.get((group, "floor"))
        if not full or not floor:
            continue
        ratios = round_ratios(full, floor)
        ratio = statistics.median(ratios)
        verdict = "meets" if ratio >= TARGET_RATIO else "MISSES"
        ok &= ratio >= TARGET_RATIO
        print(f"ratio full/floor {group:<4}: {ratio:6.1%}   median of the rounds ({rounds_text(ratios, '.1%')}); "
              f"{verdict} target ≥ {TARGET_RATIO:.0%}")
    creates, commits = env_info.get("post_groups", (0, 0))
    if commits:
        print(f"group commit     : POST /transactions made {creates:.0f} transactions in {commits:.0f} database "
              f"transactions over the run, {creates / commits:.1f} per commit (app/transactions/group.py)")
    plain, context = by.get(("GET", "full")), by.get(("CONTEXT", "full"))
    if plain and context:
        costs = round_ratios(plain, context)
        cost = statistics.median(costs)
        verdict = "meets" if cost <= TARGET_CONTEXT_COST else "MISSES"
        ok &= cost <= TARGET_CONTEXT_COST
        print(f"account context  : {cost:5.2f}× the cost of GET /transactions/{{ref}}, median of the rounds "
              f"({rounds_text(costs, '.2f')}); p50 {context.result['p50_ms']:.1f} vs {plain.result['p50_ms']:.1f} ms; "
              f"{verdict} target ≤ {TARGET_CONTEXT_COST:g}×")
    if batch is not None:
        per_round = [r["items_created"] / r["elapsed_s"] if r["elapsed_s"] else 0.0 for r in batch.rounds]
        tps = statistics.median(per_round)
        verdict = "meets" if tps >= TARGET_BATCH_TPS else "MISSES"
        ok &= tps >= TARGET_BATCH_TPS
        r = batch.result
        c = r["cpu"]
        item_us = statistics.median(10 * b["cpu"]["server"] / t * 1000 if t else 0.0
                                    for b, t in zip(batch.rounds, per_round))
        print(f"batch ingest     : {tps:6.0f} transactions/s, median of the rounds ({rounds_text(per_round, '.0f')}); "
              f"{verdict} target ≥ {TARGET_BATCH_TPS:,}/s")
        print(f"                   {r['ok']}/{r['requests']} requests × {args.batch_size} items over the rounds, "
              f"concurrency {args.batch_concurrency}; {r['items_created']} created, {r['items_failed']} failed items, "
              f"{r['errors']} failed requests")
        print(f"                   median round: per request p50 {r['p50_ms']:.0f} ms, p99 {r['p99_ms']:.0f} ms; "
              f"server CPU {item_us:.0f} µs/item; srv cpu {c['server']:.0f}%, pg {c['pg']:.0f}%, "
              f"other {c['other']:.0f}%")
    noisy = [s.name for s in [*scenarios, *([batch] if batch else [])] if s.result["cpu"]["other"] > 15]
    if noisy:
        print(f"NOTE: other processes used >15% of a core during: {', '.join(noisy)} — numbers may be noisy; rerun.")
    for s in [*scenarios, *([batch] if batch else [])]:
        if s.result["errors"]:
            print(f"errors in {s.name}: {s.result['statuses']} {s.result['error_samples']}")
    return ok


# --------------------------------------------------------------------------- main


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3,
                   help="rounds per pair; the report gives the median round (default 3)")
    p.add_argument("--duration", type=float, default=8, help="measured seconds per scenario and round (default 8)")
    p.add_argument("--warmup", type=float, default=2, help="warm-up seconds before each measurement (default 2)")
    p.add_argument("--concurrency", type=int, default=16, help="connections for the single-request scenarios")
    p.add_argument("--workers", type=int, default=1,
                   help="uvicorn workers per app (default 1, as the issue's target); srv columns add them up")
    p.add_argument("--rows", type=int, default=100_000, help="seed transactions (default 100000)")
    p.add_argument("--batch-requests", type=int, default=20, help="measured batch requests (0 skips batch)")
    p.add_argument("--batch-size", type=int, default=1000, help="items per batch request (max 1000)")
    p.add_argument("--batch-concurrency", type=int, default=2)
    p.add_argument("--only", choices=["post", "get", "context", "batch"],
                   help="run only the POST pair, the GET pair, account context beside a plain GET, or batch ingest")
    p.add_argument("--profile", type=float, default=0, metavar="SECONDS",
                   help="afterwards, profile the full app's worker with py-spy for SECONDS (needs the bench extra)")
    p.add_argument("--profile-scenario", choices=["post", "get", "batch"], default="post")
    p.add_argument("--profile-app", choices=["full", "floor"], default="full", help="which app --profile samples")
    p.add_argument("--profile-top", type=int, default=15)
    p.add_argument("--profile-gil", action="store_true",
                   help="sample only the thread holding the GIL (what the single worker is busy with)")
    p.add_argument("--out", type=Path, default=BENCH / "out", help="logs, profile and the throwaway data dir")
    p.add_argument("--keep-data", action="store_true", help="keep the PostgreSQL data dir (default: delete)")
    p.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = p.parse_args(argv)
    if not 1 <= args.batch_size <= 1000:
        p.error("--batch-size must be 1..1000")
    if args.duration <= 0 or args.concurrency < 1 or args.rounds < 1:
        p.error("--duration, --concurrency and --rounds must be positive")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    out, res = begin_run(args.out, args.keep_data)
    started = time.monotonic()
    try:
        idle_load = background_load()
        log(f"background load before the run: {idle_load:.0f}% of a core")
        log("starting embedded PostgreSQL")
        url = start_database(res, out)
        postmaster_pid = res.pg_server.get_pid()
        env = {**os.environ, "DATABASE_URL": url, "APP_ENV": "test", "LOG_LEVEL": "WARNING",
               "PYTHONUNBUFFERED": "1"}
        log("migrating and creating the agent user")
        run_cli(["migrate"], env)
        run_cli(["create-user", AGENT, "--role", "agent", "--password-stdin"], env, stdin=AGENT_PASSWORD + "\n")
        log(f"seeding {args.rows} transactions")
        env_info = seed(url, args.rows)
        env_info["background_load_pct"] = idle_load
        log(f"seeded in {env_info['seed_seconds']:.1f}s; starting servers")
        full_port, full_pid = start_server(res, "full-app", ["app.main:app"], env, out, args.workers)
        floor_port, floor_pid = start_server(res, "floor-app", ["--app-dir", str(BENCH), "floor_app:app"], env, out,
                                             args.workers)
        token = get_token(full_port)
        smoke_check(full_port, floor_port, token)

        run_id = f"{int(time.time())}"
        common = {"host": HOST, "concurrency": args.concurrency, "warmup": args.warmup, "duration": args.duration}
        groups: list[list[Scenario]] = []  # each group's scenarios run round-robin, side by side
        if args.only in (None, "post"):
            groups.append([
                Scenario("full  POST /transactions", "POST", "full",
                         {**common, "port": full_port, "kind": "post", "path": "/transactions", "token": token,
                          "ref_prefix": f"full-{run_id}"}, full_pid),
                Scenario("floor POST /floor/transactions", "POST", "floor",
                         {**common, "port": floor_port, "kind": "post", "path": "/floor/transactions",
                          "ref_prefix": f"floor-{run_id}"}, floor_pid),
            ])
        if args.only in (None, "get", "context"):
            # The plain GET is the floor's partner and the yardstick of the account context.
            refs = [SEED_PREFIX, args.rows]
            group = [Scenario("full  GET /transactions/{ref}", "GET", "full",
                              {**common, "port": full_port, "kind": "get", "path": "/transactions/", "token": token,
                               "get_refs": refs, "seed": 7}, full_pid)]
            if args.only != "context":
                group.append(Scenario("floor GET /floor/transactions/{ref}", "GET", "floor",
                                      {**common, "port": floor_port, "kind": "get", "path": "/floor/transactions/",
                                       "get_refs": refs, "seed": 7}, floor_pid))
            if args.only != "get":
                group.append(Scenario("full  GET /accounts/{id}/context", "CONTEXT", "full",
                                      {**common, "port": full_port, "kind": "context", "path": "/accounts/",
                                       "token": token, "get_refs": ["acct_", 1000], "seed": 11}, full_pid))
            groups.append(group)
        timeout = args.warmup + args.duration + 60
        for group in groups:
            run_rounds(group, args.rounds, postmaster_pid, timeout)
        if args.only in (None, "post"):
            env_info["post_groups"] = group_commit_totals(full_port)
        scenarios = [s for group in groups for s in group]
        batch = None
        if args.batch_requests > 0 and args.only in (None, "batch"):
            batch = Scenario("full  POST /transactions/batch", "BATCH", "full",
                             {"host": HOST, "port": full_port, "kind": "batch", "path": "/transactions/batch",
                              "token": token, "concurrency": args.batch_concurrency, "warmup": 0, "duration": 0,
                              "requests": args.batch_requests, "warmup_requests": args.batch_concurrency,
                              "batch_size": args.batch_size, "ref_prefix": f"batch-{run_id}"}, full_pid)
            run_rounds([batch], args.rounds, postmaster_pid, timeout=240)
        ok = report(scenarios, batch, args, env_info)
        if args.json:
            args.json.write_text(json.dumps({"env": env_info, "scenarios": {s.name: s.rounds for s in scenarios},
                                             "batch": batch.rounds if batch else None}, indent=2))
        if args.profile > 0:
            profile_worker(args, {"full": full_port, "floor": floor_port}, {"full": full_pid, "floor": floor_pid},
                           token, out)
        print(f"\ntotal run time {time.monotonic() - started:.0f}s; targets {'met' if ok else 'NOT all met'}")
        return 0
    except KeyboardInterrupt:
        log("interrupted; stopping everything")
        return 130
    finally:
        close_resources(res)


if __name__ == "__main__":
    raise SystemExit(main())
