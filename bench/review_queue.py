"""Review queue at size: claim-next latency under concurrent analysts, queue and case reads, query plans.

One run starts an embedded PostgreSQL (or uses --database-url's), migrates it, and loads with set-based SQL
(generate_series, not the API) --transactions transactions over about 1 account per 20
transactions, --cases open review cases (one per flagged transaction) with one risk score
each, and the audit history the app would have written for them. It creates --analysts
analyst users, mints their bearer tokens and starts one uvicorn worker of the app. Then:

1. claims: one analyst alone (latency without queueing), then all analysts at once, each
   looping POST /api/cases/next → POST /api/cases/{id}/decision (reject), so every
   "next" claims a new case. Proves that no case was claimed twice, from the ids the
   clients received and from the audit trail, and samples pg_stat_activity to show
   what the database was doing meanwhile.
2. reads: the queue's first page (and filtered), its search (?q=: reference, account,
   counterparty, short text, no match), one case, the counts, and the HTML
   queue and case screens (each measured only once it answers with HTML), at
   --read-concurrency.
3. plans: EXPLAIN (ANALYZE, BUFFERS) of the statements the app itself sends for "next
   case", the queue's first page, the counts and the case page (timeline included).

    XDG_RUNTIME_DIR=/tmp .venv/bin/python bench/review_queue.py [--keep] [--think-ms 1000] [--profile 10]
    .venv/bin/python bench/review_queue.py --database-url postgresql://postgres@127.0.0.1:5432/rq_bench

Everything listens on 127.0.0.1 and stops at the end, also on an error or Ctrl-C. See
bench/README.md.
"""

import argparse
import asyncio
import html
import http.client
import json
import os
import random
import re
import secrets
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import psutil

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
import harness  # noqa: E402  embedded PostgreSQL, uvicorn, CPU meter, py-spy
import loadgen  # noqa: E402  keep-alive HTTP/1.1 client, percentiles

ROOT = harness.ROOT
sys.path.insert(0, str(ROOT))
HOST = harness.HOST
log = harness.log

TARGET_NEXT_P95_MS = 20.0
TARGET_READ_P95_MS = 50.0
AGENT = "bench-agent"
ANALYST_PASSWORD = "amber-sluice-canyon-23"
DECISION = json.dumps({"decision": "reject", "reason_code": "suspected_fraud", "note": "bench"}).encode()
LOAD_MARK = "bench/review_queue.py load"
KEEP_ALIVE_SECONDS = 4  # uvicorn closes a connection idle for 5 s

# --------------------------------------------------------------------------- data

# The rows the app would have written, in one statement per table. OFFSET 0 keeps each
# random() in its subquery, evaluated once per row, instead of once per reference.
TRANSACTIONS_SQL = """
INSERT INTO transactions (reference, account_id, amount, currency, counterparty, description, metadata,
                          status, review_status, created_by, created_at, updated_at)
SELECT 'rq-' || lpad(r.g::text, 8, '0'),
       -- skewed: a few busy accounts with thousands of payments, most with a handful
       'acct_' || lpad(floor(%(accounts)s * r.a * r.a)::int::text, 6, '0'),
       CASE WHEN r.cur = 'JPY' THEN round(100 * exp(r.x * 9))::numeric ELSE round(exp(r.x * 10)::numeric, 2) END,
       r.cur,
       'Merchant ' || (r.g %% 5000),
       'bench payment ' || r.g,
       jsonb_build_object('channel', (ARRAY['card', 'sepa', 'wire', 'ach'])[1 + r.g %% 4],
                          'country', (ARRAY['DE', 'FR', 'GB', 'US', 'JP', 'KW'])[1 + r.g %% 6]),
       CASE WHEN r.is_case THEN 'pending' ELSE 'settled' END,
       CASE WHEN r.is_case THEN 'flagged' ELSE 'clear' END,
       %(agent_id)s,
       now() - (%(rows)s - r.g) * interval '1 second',
       now() - (%(rows)s - r.g) * interval '1 second'
FROM (SELECT g, random() AS a, random() AS x,
             -- USD 40 %%, EUR 30 %%, GBP 15 %%, JPY 10 %%, KWD 5 %%
             (ARRAY['USD', 'USD', 'USD', 'USD', 'USD', 'USD', 'USD', 'USD', 'EUR', 'EUR', 'EUR', 'EUR', 'EUR',
                    'EUR', 'GBP', 'GBP', 'GBP', 'JPY', 'JPY', 'KWD'])[1 + floor(random() * 20)::int] AS cur,
             -- exactly %(cases)s flagged transactions, spread evenly over the history
             g::bigint * %(cases)s / %(rows)s > (g::bigint - 1) * %(cases)s / %(rows)s AS is_case
      FROM generate_series(1, %(rows)s) AS g
      OFFSET 0) AS r
"""

CASES_SQL = """
INSERT INTO review_cases (kind, state, transaction_id, risk, amount, currency, reason, opened_at, updated_at)
SELECT 'risk', 'open', t.id, t.risk, t.amount, t.currency,
       CASE WHEN t.risk >= 70 THEN 'score ' || t.risk || ' is at or above the flag threshold 70'
            ELSE 'amount is at or above the ' || t.currency || ' amount rule' END,
       t.created_at + interval '2 seconds', t.created_at + interval '2 seconds'
FROM (SELECT id, amount, currency, created_at, floor(random() * 101)::int AS risk
      FROM transactions WHERE review_status = 'flagged' OFFSET 0) AS t
ORDER BY t.id
"""

REASONS = [
    {"code": "velocity", "description": "7 payments from this account in the last 10 minutes", "weight": "0.41"},
    {"code": "new_device", "description": "First payment from this device fingerprint", "weight": "0.22"},
    {"code": "geo_mismatch", "description": "Card country differs from IP country", "weight": "0.30"},
    {"code": "amount_spike", "description": "Amount is 12x the account's 90-day median", "weight": "0.35"},
    {"code": "high_risk_mcc", "description": "Merchant category has an elevated chargeback rate", "weight": "0.18"},
]
REASON_SETS = [REASONS[0:1], REASONS[1:3], REASONS[2:5], [REASONS[0], REASONS[3]]]

SCORES_SQL = """
INSERT INTO risk_scores (transaction_id, score, model, model_version, reasons, is_flagged, created_by, created_at)
SELECT transaction_id, risk, 'fraud-gbm', '2026.11', %(reason_sets)s::jsonb -> (id %% %(sets)s)::int, true,
       %(agent_id)s, opened_at - interval '1 second'
FROM review_cases ORDER BY id
"""

# What the app records when an agent posts a transaction and a flagging score: the chain
# trigger assigns id, time and hashes row by row, so one INSERT … SELECT makes a valid chain.
AUDIT_SQL = """
INSERT INTO audit_events (actor, actor_id, actor_role, actor_type, action, entity_type, entity_id,
                          before, after, reason)
SELECT %(agent)s, %(agent_id)s, 'agent', 'agent', e.action, e.entity_type, e.entity_id, e.before, e.after, e.reason
FROM review_cases c
JOIN transactions t ON t.id = c.transaction_id
CROSS JOIN LATERAL (VALUES
  (1, 'transaction.created', 'transaction', t.reference, NULL::jsonb,
   jsonb_build_object('id', t.id, 'account_id', t.account_id, 'amount', t.amount::text, 'currency', t.currency,
                      'status', t.status), NULL::text),
  (2, 'risk_score.posted', 'transaction', t.reference, NULL,
   jsonb_build_object('score', c.risk, 'model', 'fraud-gbm', 'model_version', '2026.11', 'flagged', true), c.reason),
  (3, 'case.opened', 'case', c.id::text, NULL,
   jsonb_build_object('state', 'open', 'kind', 'risk', 'risk', c.risk, 'transaction', t.reference), c.reason),
  (4, 'transaction.review_status_changed', 'transaction', t.reference, '{"review_status": "clear"}'::jsonb,
   '{"review_status": "flagged"}'::jsonb, 'case ' || c.id || ' opened')
) AS e(n, action, entity_type, entity_id, before, after, reason)
WHERE e.n <= %(per_case)s
ORDER BY c.id, e.n
"""

USERS_SQL = """
INSERT INTO users (username, password_hash, role)
SELECT name, %(hash)s, role FROM unnest(%(names)s::text[], %(roles)s::text[]) AS u(name, role)
ON CONFLICT (username) DO NOTHING
"""

# A reused data dir starts every run from the same queue: every case open and unclaimed.
# (The audit history of earlier runs stays: it is append-only.)
RESET_SQL = [
    """UPDATE review_cases SET state = 'open', assignee_id = NULL, lease_expires_at = NULL,
              needs_second_approval = false, first_approved_by = NULL, decision = NULL, reason_code = NULL,
              note = NULL, decided_by = NULL, decided_at = NULL, version = version + 1, updated_at = now()
       WHERE state <> 'open' OR assignee_id IS NOT NULL""",
    """UPDATE transactions t SET review_status = 'flagged', updated_at = now()
       FROM review_cases c WHERE t.id = c.transaction_id AND t.review_status <> 'flagged'""",
]


def dsn_of(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def connect(url: str):
    import psycopg2

    conn = psycopg2.connect(dsn_of(url), application_name="riskdesk-bench")
    conn.autocommit = True
    return conn


def scalar(cur, sql: str, params=None):
    cur.execute(sql, params)
    return cur.fetchone()[0]


def load_mark(cur) -> dict | None:
    comment = scalar(cur, "SELECT obj_description('review_cases'::regclass, 'pg_class')")
    if not comment or not comment.startswith(LOAD_MARK):
        return None
    return json.loads(comment[len(LOAD_MARK):])


def ensure_users(cur, analysts: int) -> tuple[int, list[tuple[int, str]]]:
    """The agent's id and (id, username) of each analyst, creating them if missing."""
    from app.security.passwords import hash_password

    names = [AGENT] + [f"bench-analyst-{n:03d}" for n in range(1, analysts + 1)]
    roles = ["agent"] + ["analyst"] * analysts
    cur.execute(USERS_SQL, {"hash": hash_password(ANALYST_PASSWORD), "names": names, "roles": roles})
    cur.execute("SELECT username, id FROM users WHERE username = ANY(%s)", (names,))
    ids = dict(cur.fetchall())
    return ids[AGENT], [(ids[name], name) for name in names[1:]]


def load(cur, args, agent_id: int) -> dict[str, float]:
    """Bulk-load the history; seconds per step."""
    timings = {}
    params = {"rows": args.transactions, "cases": args.cases, "accounts": max(1, args.transactions // 20),
              "agent_id": agent_id, "agent": AGENT, "per_case": args.audit_per_case,
              "reason_sets": json.dumps(REASON_SETS), "sets": len(REASON_SETS)}
    for name, sql in (("transactions", TRANSACTIONS_SQL), ("review_cases", CASES_SQL),
                      ("risk_scores", SCORES_SQL), ("audit_events", AUDIT_SQL)):
        log(f"loading {name}")
        began = time.perf_counter()
        cur.execute(sql, params)
        timings[name] = time.perf_counter() - began
        log(f"  {cur.rowcount:,} rows in {timings[name]:.1f}s")
    began = time.perf_counter()
    cur.execute("VACUUM ANALYZE")
    timings["vacuum analyze"] = time.perf_counter() - began
    mark = {"transactions": args.transactions, "cases": args.cases, "audit_per_case": args.audit_per_case}
    cur.execute("COMMENT ON TABLE review_cases IS %s", (LOAD_MARK + json.dumps(mark),))
    return timings


def prepare_database(res, args, out: Path) -> tuple[str, dict]:
    """Start PostgreSQL and make sure it holds the requested data set; (url, facts)."""
    from app import embedded_pg

    facts: dict = {}
    if args.database_url:
        from app.db import normalize_database_url

        url = normalize_database_url(args.database_url)
    elif args.keep:
        name = f"rq_t{args.transactions}_c{args.cases}_a{args.audit_per_case}"
        url = harness.start_database(res, out, data_dir=out / "review_queue_pg", database=name)
        res.keep_data = True
    else:
        url = harness.start_database(res, out)
    env = database_env(url, "")
    log("migrating")
    harness.run_cli(["migrate"], env)
    conn = connect(url)
    try:
        cur = conn.cursor()
        mark = load_mark(cur)
        if mark is None and scalar(cur, "SELECT count(*) FROM transactions") and args.database_url:
            raise RuntimeError(f"{data_source(res, args)} holds transactions but no complete load of this bench; "
                               "give an empty database (this bench never drops one it did not create)")
        if mark is None and scalar(cur, "SELECT count(*) FROM transactions"):
            # An interrupted load: start that database over.
            log("the kept database holds a partial load; recreating it")
            conn.close()
            admin = connect_admin(res)
            admin.cursor().execute(f'DROP DATABASE "{make_url_database(url)}" WITH (FORCE)')
            admin.close()
            embedded_pg.create_database(res.pg_server.get_uri(), make_url_database(url))
            harness.run_cli(["migrate"], env)
            conn = connect(url)
            cur = conn.cursor()
        agent_id, analysts = ensure_users(cur, args.analysts)
        facts["analysts"] = analysts
        if mark is None:
            facts["load"] = load(cur, args, agent_id)
        else:
            log(f"reusing the data set loaded earlier in {data_source(res, args)}; "
                "reopening the cases earlier runs decided")
            began = time.perf_counter()
            reset = 0
            for sql in RESET_SQL:
                cur.execute(sql)
                reset += cur.rowcount
            if reset:
                cur.execute("VACUUM ANALYZE review_cases, transactions")
            facts["reused"] = time.perf_counter() - began
        for setting in ("server_version", "shared_buffers", "work_mem", "fsync", "synchronous_commit"):
            facts[setting] = scalar(cur, f"SHOW {setting}")
        cur.execute("""SELECT relname, reltuples::bigint, pg_size_pretty(pg_total_relation_size(oid))
                       FROM pg_class
                       WHERE relname IN ('transactions', 'review_cases', 'risk_scores', 'audit_events')
                       ORDER BY pg_total_relation_size(oid) DESC""")
        facts["tables"] = cur.fetchall()
        facts["accounts"] = scalar(cur, "SELECT count(DISTINCT account_id) FROM transactions")
        facts["open"] = scalar(cur, "SELECT count(*) FROM review_cases WHERE state = 'open'")
    finally:
        conn.close()
    return url, facts


def data_source(res, args) -> str:
    """Where the data lives, for the report: the given database (no password) or the embedded server's dir."""
    if args.database_url:
        from sqlalchemy.engine import make_url

        return make_url(args.database_url).render_as_string(hide_password=True)
    return str(res.pg_dir)


def postmaster_pid(res, url: str) -> int | None:
    """The PostgreSQL server's process, for its CPU: the embedded one's, or a local server's (a backend's parent)."""
    if res.pg_server is not None:
        return res.pg_server.get_pid()
    conn = connect(url)
    try:
        backend = scalar(conn.cursor(), "SELECT pg_backend_pid()")
    finally:
        conn.close()
    try:
        return psutil.Process(backend).ppid()
    except psutil.Error:  # the server runs elsewhere: its CPU is not measured
        return None


def make_url_database(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).database


def connect_admin(res):
    import psycopg2

    conn = psycopg2.connect(res.pg_server.get_uri())
    conn.autocommit = True
    return conn


def database_env(url: str, secret: str) -> dict:
    env = {**os.environ, "DATABASE_URL": url, "APP_ENV": "test", "LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1"}
    if secret:
        env["SECRET_KEY"] = secret
    return env


def mint_tokens(analysts: list[tuple[int, str]], key: str) -> list[str]:
    """Bearer tokens signed with `key`, the SECRET_KEY the server gets too (passed in: this
    process's settings may have been read, and cached, before the key was chosen)."""
    from app.security import tokens

    return [tokens.issue(user_id=user_id, username=name, role="analyst", token_version=0, key=key,
                         ttl_seconds=3600)[0]
            for user_id, name in analysts]


# --------------------------------------------------------------------------- claims


@dataclass
class ClaimRun:
    next_ms: list[float] = field(default_factory=list)
    decision_ms: list[float] = field(default_factory=list)
    claims: list[tuple[int, int]] = field(default_factory=list)  # (analyst index, case id), warm-up included
    errors: Counter = field(default_factory=Counter)
    error_samples: list[str] = field(default_factory=list)
    empty: int = 0
    elapsed: float = 0.0
    cpu: dict = field(default_factory=dict)
    server: dict = field(default_factory=dict)

    def error(self, what: str) -> None:
        self.errors[what.split(":")[0]] += 1
        if len(self.error_samples) < 5:
            self.error_samples.append(what[:300])


async def run_analysts(port: int, tokens: list[str], claims_each: int, warmup_each: int,
                       deadline: float | None = None, think_ms: float = 0) -> ClaimRun:
    """Each token is one analyst: next → decide, claims_each + warmup_each times (or until deadline),
    pausing a random time averaging think_ms (exponential) after each decision."""
    run = ClaimRun()
    hostport = f"{HOST}:{port}"
    failures = (OSError, ConnectionError, loadgen.httptools.HttpParserError)

    async def analyst(index: int) -> None:
        token = tokens[index]
        rng = random.Random(index)
        conn = loadgen.Connection(HOST, port, keep_body=True)
        next_request = loadgen.build_request("POST", "/api/cases/next", hostport, token, b"")
        try:
            n = 0
            while (time.perf_counter() < deadline) if deadline else n < warmup_each + claims_each:
                measured = n >= warmup_each
                n += 1
                try:
                    began = time.perf_counter()
                    response = await conn.request(next_request)
                    claimed_at = time.perf_counter()
                    if response.status == 204:
                        run.empty += 1
                        return
                    if response.status != 200:
                        run.error(f"next HTTP {response.status}: {bytes(response.body[:200])!r}")
                        continue
                    case_id = json.loads(response.body)["id"]
                    run.claims.append((index, case_id))
                    decide = loadgen.build_request("POST", f"/api/cases/{case_id}/decision", hostport, token,
                                                   DECISION)
                    decided_began = time.perf_counter()
                    response = await conn.request(decide)
                    decided_at = time.perf_counter()
                except failures as exc:
                    conn.close()
                    run.error(f"{type(exc).__name__}: {exc}")
                    await asyncio.sleep(0.01)
                    continue
                if response.status != 200:
                    run.error(f"decision HTTP {response.status}: {bytes(response.body[:200])!r}")
                    continue
                if measured:
                    run.next_ms.append(1000 * (claimed_at - began))
                    run.decision_ms.append(1000 * (decided_at - decided_began))
                if think_ms:
                    pause = rng.expovariate(1000 / think_ms)
                    if pause > KEEP_ALIVE_SECONDS:
                        conn.close()  # as the server would: a browser reconnects after a long pause
                    await asyncio.sleep(pause)
        finally:
            conn.close()

    began = time.perf_counter()
    await asyncio.gather(*(analyst(i) for i in range(len(tokens))))
    run.elapsed = time.perf_counter() - began
    return run


class WaitSampler(threading.Thread):
    """Samples what the app's database sessions are doing, every `interval` seconds."""

    SQL = """
    SELECT CASE WHEN state = 'active' THEN coalesce(wait_event_type || ':' || wait_event, 'active, on CPU')
                ELSE state END, count(*)
    FROM pg_stat_activity
    WHERE datname = current_database() AND application_name = 'riskdesk' AND state <> 'idle'
    GROUP BY 1
    """

    def __init__(self, url: str, interval: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.url, self.interval = url, interval
        self.counts: Counter = Counter()
        self.samples = 0
        self.halt = threading.Event()

    def run(self) -> None:
        conn = connect(self.url)
        try:
            cur = conn.cursor()
            while not self.halt.is_set():
                cur.execute(self.SQL)
                for what, n in cur.fetchall():
                    self.counts[what] += n
                self.samples += 1
                self.halt.wait(self.interval)
        finally:
            conn.close()

    def stop(self) -> str:
        self.halt.set()
        self.join(5)
        if not self.samples:
            return "no samples"
        parts = [f"{what} {n / self.samples:.2f}" for what, n in self.counts.most_common(8)]
        return ", ".join(parts) or "nothing active"


def server_timings(port: int) -> dict[tuple[str, str], tuple[float, float]]:
    """(method, route) → (seconds, requests) from the app's Prometheus latency histogram."""
    status, body = harness.http("GET", f"http://{HOST}:{port}/metrics")
    found: dict[tuple[str, str], list[float]] = {}
    if status != 200:
        return {}
    pattern = re.compile(r'^riskdesk_http_request_duration_seconds_(sum|count)'
                         r'\{method="([^"]*)",route="([^"]*)"\} (\S+)$')
    for line in body.decode().splitlines():
        match = pattern.match(line)
        if match:
            kind, method, route, value = match.groups()
            found.setdefault((method, route), [0.0, 0.0])[0 if kind == "sum" else 1] = float(value)
    return {key: (v[0], v[1]) for key, v in found.items()}


def server_mean_ms(before: dict, after: dict, method: str, route: str) -> float | None:
    s1, n1 = after.get((method, route), (0.0, 0.0))
    s0, n0 = before.get((method, route), (0.0, 0.0))
    return 1000 * (s1 - s0) / (n1 - n0) if n1 > n0 else None


class Meter:
    """CPU of the server, PostgreSQL, this process (the load generator) and the rest, plus server-side timings."""

    def __init__(self, port: int, server_pid: int, postmaster_pid: int | None) -> None:
        self.port = port
        self.cpu = harness.CpuMeter(server_pid, postmaster_pid)
        self.me = psutil.Process()

    def start(self) -> None:
        t = self.me.cpu_times()
        self.own, self.before, self.timings = t.user + t.system, self.cpu.snapshot(), server_timings(self.port)

    def stop(self) -> tuple[dict, dict, dict]:
        after, t = self.cpu.snapshot(), self.me.cpu_times()
        return (harness.CpuMeter.delta(self.before, after, t.user + t.system - self.own), self.timings,
                server_timings(self.port))


def claim_phase(port: int, tokens: list[str], meter: Meter, claims_each: int, warmup_each: int,
                url: str | None = None, think_ms: float = 0) -> tuple[ClaimRun, str]:
    sampler = WaitSampler(url) if url else None
    meter.start()
    if sampler:
        sampler.start()
    run = asyncio.run(run_analysts(port, tokens, claims_each, warmup_each, think_ms=think_ms))
    waits = sampler.stop() if sampler else ""
    run.cpu, before, after = meter.stop()
    run.server = {"next": server_mean_ms(before, after, "POST", "/api/cases/next"),
                  "decision": server_mean_ms(before, after, "POST", "/api/cases/{case_id}/decision")}
    return run, waits


def check_claims(url: str, runs: list[ClaimRun], audit_floor: int, user_ids: list[int]) -> tuple[bool, list[str]]:
    """No case went to two analysts: per the clients, per the audit trail, and per who decided it."""
    claims = [claim for run in runs for claim in run.claims]
    analysts_of: dict[int, set[int]] = {}
    for index, case_id in claims:
        analysts_of.setdefault(case_id, set()).add(index)
    shared = {case_id: sorted(who) for case_id, who in analysts_of.items() if len(who) > 1}
    # The same analyst gets their held case back only if its decision failed (see errors).
    again = len(claims) - len(analysts_of) - sum(len(who) - 1 for who in shared.values())
    lines = [f"claims received by the clients: {len(claims):,} for {len(analysts_of):,} distinct cases; "
             f"cases received by two analysts: {len(shared)}; held case returned again to the same analyst: {again}"]
    conn = connect(url)
    try:
        cur = conn.cursor()
        cur.execute("""SELECT entity_id::bigint, count(*), min(actor_id), max(actor_id) FROM audit_events
                       WHERE action = 'case.claimed' AND id > %s GROUP BY entity_id""", (audit_floor,))
        events = {case_id: (n, lo, hi) for case_id, n, lo, hi in cur.fetchall()}
        twice = [case_id for case_id, (n, _, _) in events.items() if n > 1]
        lines.append(f"audit trail: {sum(n for n, _, _ in events.values()):,} 'case.claimed' events for "
                     f"{len(events):,} cases; cases claimed more than once: {len(twice)}")
        claimant = {case_id: user_ids[index] for index, case_id in claims}
        by_other = [c for c, (_, lo, hi) in events.items() if claimant.get(c) != lo or lo != hi]
        missing = set(claimant) - set(events)
        cur.execute("SELECT id, state, decided_by FROM review_cases WHERE id = ANY(%s)", (list(claimant),))
        decided = {case_id: (state, by) for case_id, state, by in cur.fetchall()}
        decided_by_other = [c for c, (_, by) in decided.items() if by is not None and by != claimant[c]]
        rejected = sum(1 for c, (state, by) in decided.items() if state == "rejected" and by == claimant[c])
        lines.append(f"each case's claim event is by the analyst who received it: "
                     f"{'yes' if not by_other and not missing else 'NO'} ({len(by_other)} by someone else, "
                     f"{len(missing)} without an event); rejected by that analyst: {rejected:,}/{len(claimant):,}, "
                     f"decided by someone else: {len(decided_by_other)}")
    finally:
        conn.close()
    if shared:
        lines.append(f"  cases received by two analysts (case: analyst indexes): {dict(list(shared.items())[:10])}")
    return not shared and not twice and not by_other and not missing and not decided_by_other, lines


# --------------------------------------------------------------------------- reads


@dataclass
class ReadResult:
    name: str
    latencies: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    errors: int = 0
    elapsed: float = 0.0
    cpu: dict = field(default_factory=dict)
    server_ms: float | None = None
    note: str = ""


async def run_requests(port: int, make_request, total: int, concurrency: int, warmup: int) -> ReadResult:
    """`total` measured requests (after `warmup` unmeasured ones) over `concurrency` keep-alive connections."""
    result = ReadResult("")
    numbers = iter(range(-warmup, total))
    failures = (OSError, ConnectionError, loadgen.httptools.HttpParserError)

    async def worker(w: int) -> None:
        conn = loadgen.Connection(HOST, port, keep_body=False)
        try:
            for n in numbers:
                raw = make_request(n, w)
                began = time.perf_counter()
                try:
                    response = await conn.request(raw)
                except failures:
                    conn.close()
                    result.errors += n >= 0
                    continue
                ended = time.perf_counter()
                if n < 0:
                    continue
                result.statuses[response.status] += 1
                if response.status == 200:
                    result.latencies.append(1000 * (ended - began))
                else:
                    result.errors += 1
        finally:
            conn.close()

    began = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    result.elapsed = time.perf_counter() - began
    return result


def fetch(port: int, method: str, path: str, body: bytes | None = None,
          headers: dict | None = None) -> tuple[int, list[tuple[str, str]], str]:
    """One request without following redirects: (status, headers, text)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=15)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.getheaders(), response.read().decode("utf-8", "replace")
    finally:
        conn.close()


def _set_cookies(headers: list[tuple[str, str]]) -> dict[str, str]:
    cookies = {}
    for name, value in headers:
        if name.lower() == "set-cookie":
            pair = value.split(";", 1)[0]
            key, _, val = pair.partition("=")
            cookies[key.strip()] = val.strip().strip('"')
    return cookies


def _hidden_fields(page: str) -> dict[str, str]:
    fields = {}
    for tag in re.findall(r"<input\b[^>]*>", page, flags=re.I):
        attrs = {k.lower(): html.unescape(v) for k, v in re.findall(r'([\w-]+)="([^"]*)"', tag)}
        if attrs.get("type", "").lower() == "hidden" and "name" in attrs:
            fields[attrs["name"]] = attrs.get("value", "")
    return fields


def browser_session(port: int, user: tuple[int, str]) -> tuple[dict[str, str] | None, str]:
    """Headers of a signed-in browser, and how they were obtained; (None, why) when there is no sign-in yet.

    First through the real login form (GET /login for its hidden fields and pre-session
    cookie, then POST /login), as a browser would; else a session token minted like the
    app's own (app/security/sessions.py) in the cookie app/web/session.py names.
    """
    user_id, username = user
    status, headers, page = fetch(port, "GET", "/login")
    login_note = f"GET /login → {status}"
    if status == 200:
        cookies = _set_cookies(headers)
        form = {**_hidden_fields(page), "username": username, "password": ANALYST_PASSWORD}
        status, headers, _ = fetch(port, "POST", "/login", body=urlencode(form).encode(), headers={
            "Content-Type": "application/x-www-form-urlencoded", "Accept": "text/html",
            "Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())})
        session = {k: v for k, v in _set_cookies(headers).items() if v}
        if status in (200, 302, 303) and session:
            return ({"Cookie": "; ".join(f"{k}={v}" for k, v in session.items()), "Accept": "text/html"},
                    f"signed in through POST /login (cookie {', '.join(session)})")
        login_note += f", POST /login → {status} without a session cookie"
    try:
        from app.config import get_settings
        from app.security import tokens
        from app.security.sessions import session_key
        from app.web.session import SESSION_COOKIE
    except ImportError as exc:
        return None, f"{login_note}; no session cookie to mint ({exc})"
    settings = get_settings()
    token, _ = tokens.issue(user_id=user_id, role="analyst", token_version=0, key=session_key(settings),
                            ttl_seconds=3600)
    return ({"Cookie": f"{SESSION_COOKIE}={token}", "Accept": "text/html"},
            f"{login_note}; minted a session token into cookie {SESSION_COOKIE}")


# The queue's search box (GET /api/cases?q=): a whole reference (one case), part of an account
# (its few cases), a counterparty shared by many, a reference prefix (about 1 % of the cases),
# text found nowhere, and 1–2 characters (no trigram: a filter along the queue's order).
SEARCHES = [("reference", None), ("account part", "acct_0012"), ("counterparty", "merchant 123"),
            ("reference prefix", "rq-0001"), ("no match", "zzz-nothing"), ("2 chars", "q-"),
            ("2 chars, no match", "zq")]


def read_phase(port: int, tokens: list[str], users: list[tuple[int, str]], open_ids: list[int],
               meter: Meter, args, open_refs: list[str] | None = None) -> list[ReadResult]:
    hostport = f"{HOST}:{port}"
    rng = random.Random(11)

    def api_get(path_of):
        def make(n: int, worker: int) -> bytes:
            return loadgen.build_request("GET", path_of(), hostport, tokens[worker % len(tokens)], None)
        return make

    scenarios = [
        ("GET /api/cases?limit=50", api_get(lambda: "/api/cases?limit=50"), "/api/cases"),
        ("GET /api/cases?limit=50&currency=EUR", api_get(lambda: "/api/cases?limit=50&currency=EUR"), "/api/cases"),
        ("GET /api/cases?limit=50&min_score=80", api_get(lambda: "/api/cases?limit=50&min_score=80"), "/api/cases"),
        ("GET /api/cases?limit=50&state=open", api_get(lambda: "/api/cases?limit=50&state=open"), "/api/cases"),
        ("GET /api/cases/{id} (random open)", api_get(lambda: f"/api/cases/{rng.choice(open_ids)}"),
         "/api/cases/{case_id}"),
        ("GET /api/cases/counts", api_get(lambda: "/api/cases/counts"), "/api/cases/counts"),
    ]
    refs = open_refs or ["rq-00000001"]
    for what, q in SEARCHES:
        def search_path(q=q) -> str:
            return "/api/cases?" + urlencode({"limit": 50, "q": q if q is not None else rng.choice(refs)})
        scenarios.append((f"GET /api/cases?q= ({what})", api_get(search_path), "/api/cases"))
    notes = []
    browser, how = browser_session(port, users[0])
    log(f"browser screens: {how}")
    htmx = {"HX-Request": "true", "HX-Target": "queue-rows"}  # what htmx sends for the filter bar
    # (name, path, route for the server-side timing, extra headers): measured once they answer with HTML.
    screens = [("GET / (queue screen)", lambda: "/", "/", {}),
               ("GET / HX-Request (queue rows)", lambda: "/", "/", htmx),
               ("GET /?q=merchant 123 HX-Request", lambda: "/?q=merchant+123", "/", htmx),
               ("GET /queue/counts HX-Request", lambda: "/queue/counts", "/queue/counts", htmx),
               ("GET /cases/{id} (case screen)", lambda: f"/cases/{rng.choice(open_ids)}", "/cases/{case_id}", {})]
    for name, path_of, route, extra in screens:
        if browser is None:
            notes.append(ReadResult(name, note=f"skipped: no browser session ({how})"))
            continue
        path = path_of()
        status, headers, _ = fetch(port, "GET", path, headers={**browser, **extra})
        kind = dict((k.lower(), v) for k, v in headers).get("content-type", "")
        location = dict((k.lower(), v) for k, v in headers).get("location")
        if status != 200 or not kind.startswith("text/html"):
            where = f" → {location}" if location else ""
            notes.append(ReadResult(name, note=f"skipped: GET {path} → {status}{where} ({kind or 'no body'}): "
                                              "not built yet"))
            continue

        def make(n: int, worker: int, path_of=path_of, extra=extra) -> bytes:
            return loadgen.build_request("GET", path_of(), hostport, None, None, headers={**browser, **extra})
        scenarios.append((name, make, route))

    results = []
    for name, make, route in scenarios:
        log(f"reads: {name} × {args.read_requests} at concurrency {args.read_concurrency}")
        meter.start()
        result = asyncio.run(run_requests(port, make, args.read_requests, args.read_concurrency,
                                          warmup=2 * args.read_concurrency))
        result.cpu, before, after = meter.stop()
        result.name = name
        result.server_ms = server_mean_ms(before, after, "GET", route)
        results.append(result)
    return results + notes


# --------------------------------------------------------------------------- plans


def plan_lines(node: dict, depth: int = 1) -> list[str]:
    label = node["Node Type"]
    if node.get("Index Name"):
        label += f" using {node['Index Name']}"
    if node.get("Relation Name"):
        label += f" on {node['Relation Name']}" + (f" {node['Alias']}" if node.get("Alias") not in
                                                   (None, node["Relation Name"]) else "")
    details = [f"rows={node.get('Actual Rows')}", f"loops={node.get('Actual Loops')}",
               f"{node.get('Actual Total Time', 0):.3f} ms",
               f"buffers hit={node.get('Shared Hit Blocks', 0)}"
               + (f" read={node['Shared Read Blocks']}" if node.get("Shared Read Blocks") else "")]
    for key, short in (("Rows Removed by Filter", "removed by filter"), ("Heap Fetches", "heap fetches"),
                       ("Rows Removed by Index Recheck", "removed by recheck"), ("Sort Method", "sort")):
        if node.get(key):
            details.append(f"{short}={node[key]}")
    lines = ["  " * depth + "-> " + label + "  (" + ", ".join(details) + ")"]
    for child in node.get("Plans", []):
        lines += plan_lines(child, depth + 1)
    return lines


def case_page_part(sql: str) -> str:
    """What a statement of the case page is for, by the table it reads."""
    head = " ".join(sql.split())
    for marker, what in (("transactions.reference =", "the transaction (with its latest score)"),
                         ("transactions.account_id =", "the account's history (with each latest score)"),
                         ("FROM audit_events", "the timeline"), ("FROM review_cases", "the case"),
                         ("FROM risk_scores", "every score")):
        if marker in head:
            return what
    return head[:60]


def explain_app_queries(url: str, analyst: tuple[int, str], case_id: int) -> list[str]:
    """EXPLAIN (ANALYZE, BUFFERS) of what the app itself sends: the statements are captured
    while the service functions run (then rolled back), so the SQL is never copied here."""
    from sqlalchemy import event

    from app.audit.service import Actor
    from app.cases import claims, flows, queue
    from app.cases.schemas import QueueFilter
    from app.db import database

    database.configure(url)
    captured: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        captured.append((statement, parameters))

    event.listen(database.engine, "before_cursor_execute", capture)

    def statements_of(call) -> list[tuple[str, object]]:
        captured.clear()
        session = database.session()
        try:
            call(session)
        finally:
            session.rollback()
            session.close()
        # Reads, and the claim's `WITH picked AS (SELECT … FOR UPDATE SKIP LOCKED) UPDATE …` (its
        # EXPLAIN ANALYZE runs it in a transaction rolled back below).
        return [(sql, params) for sql, params in captured if sql.lstrip().upper().startswith(("SELECT", "WITH"))]

    def cases_statement(call) -> tuple[str, object]:
        # A search first reads which grams are common (pg_stats, cached for minutes): not the query.
        return next(stmt for stmt in statements_of(call) if "pg_stats" not in stmt[0])

    user_id, username = analyst
    actor = Actor(name=username, id=user_id, role="analyst")
    claim = statements_of(lambda s: claims.claim_next(session=s, actor=actor))
    wanted = [
        ("claim-next: the case the analyst already holds",
         next(stmt for stmt in claim if "review_cases.assignee_id = %(" in stmt[0] and "SKIP" not in stmt[0])),
        ("claim-next: the top free case, FOR UPDATE SKIP LOCKED, claimed in the same UPDATE",
         next(stmt for stmt in claim if "SKIP LOCKED" in stmt[0])),
        ("queue first page (GET /api/cases?limit=50)",
         statements_of(lambda s: queue.list_page(session=s, filters=QueueFilter(), limit=50))[0]),
        ("queue first page, state=open",
         statements_of(lambda s: queue.list_page(session=s, filters=QueueFilter(state="open"), limit=50))[0]),
        *[(f"queue search q={q!r} (GET /api/cases?q=)",
           cases_statement(lambda s, q=q: queue.list_page(session=s, filters=QueueFilter(q=q), limit=50)))
          for _, q in SEARCHES if q is not None],
        ("queue search count q='merchant 123' (the screen's result count)",
         cases_statement(lambda s: queue.count_matching(session=s, filters=QueueFilter(q="merchant 123")))),
        ("queue counts (GET /api/cases/counts), first statement",
         statements_of(lambda s: queue.counts(session=s, user_id=user_id))[0]),
    ]
    for sql, params in statements_of(lambda s: flows.case_detail(session=s, case_id=case_id)):
        wanted.append((f"case page (GET /api/cases/{{id}}): {case_page_part(sql)}", (sql, params)))
    event.remove(database.engine, "before_cursor_execute", capture)
    database.dispose()
    lines = []
    conn = connect(url)
    conn.autocommit = False
    try:
        cur = conn.cursor()
        for title, (sql, params) in wanted:
            cur.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql, params)
            plan = cur.fetchone()[0][0]
            lines.append(f"{title}: execution {plan['Execution Time']:.2f} ms "
                         f"(planning {plan['Planning Time']:.2f} ms)")
            lines += plan_lines(plan["Plan"])
        conn.rollback()  # the claim's row lock, nothing else
    finally:
        conn.close()
    return lines


# --------------------------------------------------------------------------- report


def pct(values: list[float], q: float) -> float:
    return loadgen.percentile(sorted(values), q) or 0.0


def verdict(p95: float, target: float) -> str:
    return f"{'meets' if p95 <= target else 'MISSES'} ≤ {target:g}"


def latency_cells(values: list[float]) -> list[str]:
    return [f"{pct(values, 50):.1f}", f"{pct(values, 95):.1f}", f"{pct(values, 99):.1f}",
            f"{max(values) if values else 0:.1f}"]


WIDTHS = [44, 6, 4, 6, 7, 7, 7, 7, 7, 7, 5, 5, 5, 14]
HEADERS = ["scenario", "n", "err", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms", "srv ms", "cpu ms", "srv%",
           "pg%", "oth%", "p95 target"]


def claim_rows(title: str, run: ClaimRun, target: float | None) -> list[str]:
    per_s = len(run.claims) / run.elapsed if run.elapsed else 0.0  # claim+decision cycles, warm-up included
    cpu = run.cpu
    # Over the whole phase, warm-up included: every claim was followed by one decision.
    cpu_ms = 10 * cpu.get("server", 0) * run.elapsed / (2 * len(run.claims)) if run.claims else 0.0
    rows = []
    for name, values, server_ms in ((f"{title} POST /api/cases/next", run.next_ms, run.server.get("next")),
                                    (f"{title} POST …/decision (reject)", run.decision_ms,
                                     run.server.get("decision"))):
        p95 = pct(values, 95)
        rows.append(harness.fmt_row(
            [name, len(values), sum(run.errors.values()), f"{per_s:.0f}", *latency_cells(values),
             f"{server_ms:.1f}" if server_ms is not None else "-", f"{cpu_ms:.2f}", f"{cpu.get('server', 0):.0f}",
             f"{cpu.get('pg', 0):.0f}", f"{cpu.get('other', 0):.0f}",
             verdict(p95, target) if target and "next" in name else ""], WIDTHS))
    return rows


def read_row(r: ReadResult) -> str:
    if r.note:
        return f"{r.name:<44}  {r.note}"
    per_s = len(r.latencies) / r.elapsed if r.elapsed else 0.0
    cpu_ms = 10 * r.cpu.get("server", 0) / per_s if per_s else 0.0
    return harness.fmt_row(
        [r.name, len(r.latencies), r.errors, f"{per_s:.0f}", *latency_cells(r.latencies),
         f"{r.server_ms:.1f}" if r.server_ms is not None else "-", f"{cpu_ms:.2f}", f"{r.cpu.get('server', 0):.0f}",
         f"{r.cpu.get('pg', 0):.0f}", f"{r.cpu.get('other', 0):.0f}",
         verdict(pct(r.latencies, 95), TARGET_READ_P95_MS)], WIDTHS)


def print_table(rows: list[str]) -> None:
    print(harness.fmt_row(HEADERS, WIDTHS))
    print(harness.fmt_row(["-" * w for w in WIDTHS], WIDTHS))
    for row in rows:
        print(row)


# --------------------------------------------------------------------------- profile


def profile_claims(args, port: int, server_pid: int, tokens: list[str], out: Path) -> None:
    py_spy = harness.find_py_spy()
    if not py_spy:
        return
    seconds = max(1, round(args.profile))
    raw = out / "profile_review_queue_claims.txt"
    log(f"profiling the app worker under {len(tokens)} analysts claiming for {seconds}s with py-spy → {raw}")

    async def profiled() -> ClaimRun:
        load_task = asyncio.create_task(run_analysts(port, tokens, 0, 0, deadline=time.perf_counter() + seconds + 2.5))
        await asyncio.sleep(1.0)
        await asyncio.to_thread(harness.py_spy_record, py_spy, server_pid, seconds, raw, args.profile_gil)
        return await load_task

    run = asyncio.run(profiled())
    if raw.exists():
        mode = "thread holding the GIL only" if args.profile_gil else "all threads py-spy considers active"
        harness.summarize_profile(raw, top=args.profile_top,
                                  title=f"{len(tokens)} analysts' claim+decide ({len(run.claims)} claims; {mode})")


# --------------------------------------------------------------------------- main


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--transactions", type=int, default=1_000_000, help="transactions to load (default 1000000)")
    p.add_argument("--cases", type=int, default=100_000, help="open review cases to load (default 100000)")
    p.add_argument("--audit-per-case", type=int, default=4, choices=range(1, 5),
                   help="audit events per case: transaction.created, risk_score.posted, case.opened, "
                        "transaction.review_status_changed (default 4, all of them)")
    p.add_argument("--analysts", type=int, default=20, help="concurrent analysts (default 20)")
    p.add_argument("--claims-per-analyst", type=int, default=100, help="measured claims per analyst (default 100)")
    p.add_argument("--warmup-claims", type=int, default=3, help="unmeasured claims per analyst first (default 3)")
    p.add_argument("--think-ms", type=float, default=0,
                   help="mean pause of each analyst after a decision (exponential; default 0: back to back)")
    p.add_argument("--solo-claims", type=int, default=50,
                   help="measured claims of one analyst alone, before the concurrent run (0 skips; default 50)")
    p.add_argument("--read-requests", type=int, default=300, help="measured requests per read scenario (default 300)")
    p.add_argument("--read-concurrency", type=int, default=4)
    p.add_argument("--keep", action="store_true",
                   help="keep the data dir (out/review_queue_pg) and reuse its load on the next run "
                        "with the same sizes")
    p.add_argument("--database-url", metavar="URL",
                   help="use this existing PostgreSQL database instead of starting the embedded server: it is "
                        "migrated, loaded when empty, and reused (decided cases reopened) when it already holds "
                        "this data set; its CPU is measured when the server runs on this machine")
    p.add_argument("--skip-explain", action="store_true")
    p.add_argument("--profile", type=float, default=0, metavar="SECONDS",
                   help="afterwards, profile the app worker with py-spy while the analysts claim for SECONDS")
    p.add_argument("--profile-top", type=int, default=15)
    p.add_argument("--profile-gil", action="store_true", help="sample only the thread holding the GIL")
    p.add_argument("--out", type=Path, default=BENCH / "out", help="logs, profile and data dirs")
    args = p.parse_args(argv)
    if args.database_url and args.keep:
        p.error("--keep keeps the embedded server's data dir; an existing --database-url is always kept")
    if not 1 <= args.cases <= args.transactions:
        p.error("--cases must be between 1 and --transactions")
    if args.analysts < 1 or args.claims_per_analyst < 1 or args.read_concurrency < 1 or args.read_requests < 1 \
            or args.think_ms < 0:
        p.error("--analysts, --claims-per-analyst, --read-concurrency, --read-requests must be positive, "
                "--think-ms not negative")
    needed = args.analysts * (args.claims_per_analyst + args.warmup_claims) + args.solo_claims + 5
    if needed > args.cases:
        p.error(f"the claims ({needed}) would empty the queue of {args.cases} cases")
    return args


def print_setup(facts: dict, idle_load: float, pg_dir: str) -> None:
    load = facts.get("load")
    how = (f"loaded in {sum(load.values()):.0f}s (" + ", ".join(f"{k} {v:.1f}s" for k, v in load.items()) + ")"
           if load else f"reused from {pg_dir} (reset in {facts['reused']:.1f}s)")
    print(f"\nRiskdesk review queue — {psutil.cpu_count()} cores, PostgreSQL {facts['server_version']} "
          f"(fsync={facts['fsync']}, synchronous_commit={facts['synchronous_commit']}, "
          f"shared_buffers={facts['shared_buffers']}, work_mem={facts['work_mem']}); "
          f"background load before the run {idle_load:.0f}% of a core")
    print(f"data {how}:")
    print("  " + ", ".join(f"{name} {rows:,} rows ({size})" for name, rows, size in facts["tables"])
          + f"; {facts['accounts']:,} accounts; {facts['open']:,} open cases")
    print("one uvicorn worker; the load generator runs in this process (uvloop, keep-alive); "
          "srv ms = the app's own mean time per request (middleware), cpu ms = worker CPU per request;")
    print("srv/pg/oth% = CPU of the app worker, PostgreSQL and everything else (other people's tests too) "
          "as % of one core")


def claims_section(args, port: int, tokens: list[str], user_ids: list[int], meter: Meter,
                   url: str) -> tuple[bool, ClaimRun]:
    """Part 1; True when claim-next meets its target and no case went to two analysts."""
    conn = connect(url)
    audit_floor = scalar(conn.cursor(), "SELECT coalesce(max(id), 0) FROM audit_events")
    conn.close()
    runs, rows = [], []
    if args.solo_claims:
        log(f"claims: 1 analyst alone, {args.solo_claims} claims")
        solo, _ = claim_phase(port, tokens[:1], meter, args.solo_claims, 5)
        runs.append(solo)
        rows += claim_rows("1 analyst ", solo, None)
    log(f"claims: {args.analysts} analysts × {args.claims_per_analyst} claims (+{args.warmup_claims} warm-up)")
    crowd, waits = claim_phase(port, tokens, meter, args.claims_per_analyst, args.warmup_claims, url,
                               think_ms=args.think_ms)
    runs.append(crowd)
    rows += claim_rows(f"{args.analysts} analysts", crowd, TARGET_NEXT_P95_MS)
    pacing = f"{args.think_ms:g} ms mean think time" if args.think_ms else "no think time"
    print(f"\n1. Claim next, then decide (reject): {args.analysts} analysts × {args.claims_per_analyst} "
          f"measured claims (+{args.warmup_claims} warm-up each) against one worker, {pacing}; "
          f"{len(crowd.claims) / crowd.elapsed if crowd.elapsed else 0:.0f} claim+decision cycles/s")
    print_table(rows)
    print(f"the app's PostgreSQL sessions during the {args.analysts}-analyst run, mean number in each state: {waits}")
    print("  (idle in transaction: a request's transaction is open while its thread waits for Python between "
          "statements; Lock:advisory: waiting for the audit chain lock; IO:WalSync: flushing a commit)")
    claims_ok, claim_lines = check_claims(url, runs, audit_floor, user_ids)
    print(f"double claims: {'NONE' if claims_ok else 'FOUND'}")
    for line in claim_lines:
        print(f"  {line}")
    for run in runs:
        if run.errors or run.empty:
            print(f"  errors: {dict(run.errors)} {run.error_samples}; empty queue (204): {run.empty}")
    return claims_ok and pct(crowd.next_ms, 95) <= TARGET_NEXT_P95_MS, crowd


def reads_section(args, port: int, tokens: list[str], users: list[tuple[int, str]], meter: Meter,
                  open_ids: list[int], open_refs: list[str]) -> tuple[bool, list[ReadResult]]:
    """Part 2; True when every measured read meets its target."""
    reads = read_phase(port, tokens, users, open_ids, meter, args, open_refs)
    print(f"\n2. Reads at concurrency {args.read_concurrency}, {args.read_requests} requests each "
          f"(after {2 * args.read_concurrency} warm-up); the API with analysts' tokens, the screens signed in")
    print_table([read_row(r) for r in reads])
    ok = True
    for r in reads:
        if not r.note:
            ok &= pct(r.latencies, 95) <= TARGET_READ_P95_MS
            if r.errors:
                print(f"  errors in {r.name}: {dict(r.statuses)}")
    return ok, reads


def plans_section(url: str, analyst: tuple[int, str]) -> None:
    """Part 3, on the case page's worst case: an open case of the busiest account (acct_000000 by construction)."""
    conn = connect(url)
    cur = conn.cursor()
    cur.execute("""SELECT c.id, t.account_id, (SELECT count(*) FROM transactions a WHERE a.account_id = t.account_id)
                   FROM transactions t JOIN review_cases c ON c.transaction_id = t.id AND c.state = 'open'
                   WHERE t.account_id = 'acct_000000' ORDER BY t.id DESC LIMIT 1""")
    found = cur.fetchone()
    if found is None:
        cur.execute("SELECT c.id, t.account_id, 1 FROM review_cases c JOIN transactions t ON t.id = c.transaction_id "
                    "WHERE c.state = 'open' LIMIT 1")
        found = cur.fetchone()
    conn.close()
    case_id, account, history = found
    log("explaining the app's queries")
    print(f"\n3. EXPLAIN (ANALYZE, BUFFERS) of the app's own statements, after the runs above: analyst "
          f"{analyst[1]}, case {case_id} on the busiest account {account} ({history} transactions)")
    for line in explain_app_queries(url, analyst, case_id):
        print(line if line.startswith(" ") else f"\n{line}")


def main(argv=None) -> int:
    args = parse_args(argv)
    out, res = harness.begin_run(args.out)
    started = time.monotonic()
    try:
        idle_load = harness.background_load()
        log(f"background load before the run: {idle_load:.0f}% of a core")
        log(f"using {args.database_url and data_source(res, args)}" if args.database_url
            else "starting embedded PostgreSQL")
        url, facts = prepare_database(res, args, out)

        # One key for this process's tokens and the server's checks, never the dev default.
        secret = secrets.token_urlsafe(48)
        os.environ["SECRET_KEY"] = secret
        os.environ["DATABASE_URL"] = url
        from app.config import get_settings

        get_settings.cache_clear()  # settings read while loading the data had the dev key
        users = facts["analysts"]
        tokens = mint_tokens(users, secret)
        log("starting the app (one uvicorn worker)")
        port, server_pid = harness.start_server(res, "review-app", ["app.main:app"], database_env(url, secret), out)
        status, body = harness.http("GET", f"http://{HOST}:{port}/api/cases?limit=1",
                                    headers={"Authorization": f"Bearer {tokens[0]}"})
        if status != 200:
            raise RuntimeError(f"smoke check GET /api/cases → {status}: {body[:300]!r}")
        meter = Meter(port, server_pid, postmaster_pid(res, url))
        print_setup(facts, idle_load, data_source(res, args))

        claims_ok, crowd = claims_section(args, port, tokens, [user_id for user_id, _ in users], meter, url)
        conn = connect(url)
        cur = conn.cursor()
        cur.execute("SELECT c.id, t.reference FROM review_cases c JOIN transactions t ON t.id = c.transaction_id "
                    "WHERE c.state = 'open' ORDER BY random() LIMIT 1000")
        open_rows = cur.fetchall()
        open_ids, open_refs = [row[0] for row in open_rows], [row[1] for row in open_rows]
        conn.close()
        reads_ok, reads = reads_section(args, port, tokens, users, meter, open_ids, open_refs)
        if not args.skip_explain:
            plans_section(url, users[0])
        if args.profile > 0:
            profile_claims(args, port, server_pid, tokens, out)

        noisy = [name for name, cpu in [("claims", crowd.cpu)] + [(r.name, r.cpu) for r in reads if r.cpu]
                 if cpu.get("other", 0) > 15]
        if noisy:
            print(f"\nNOTE: other processes (e.g. someone's test run) used >15% of a core during: {', '.join(noisy)}; "
                  "those numbers may be inflated — rerun to compare.")
        print(f"\ntotal run time {time.monotonic() - started:.0f}s; targets "
              f"{'met' if claims_ok and reads_ok else 'NOT all met'} (claim-next p95 ≤ {TARGET_NEXT_P95_MS:g} ms "
              f"with no double claims, reads p95 ≤ {TARGET_READ_P95_MS:g} ms)")
        return 0
    except KeyboardInterrupt:
        log("interrupted; stopping everything")
        return 130
    finally:
        harness.close_resources(res)


if __name__ == "__main__":
    raise SystemExit(main())
