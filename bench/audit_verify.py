"""Audit history at size: load --events events through the chain trigger, then time the admin's tools.

1. load: one INSERT … SELECT generate_series per --chunk rows; the BEFORE INSERT trigger
   chains every row (id, prev_hash, hash) exactly as in production.
2. verify: `python -m app audit verify` (wall clock, subprocess) and GET /api/audit/verify.
3. export: GET /api/audit/export.csv of every event, streamed; time, bytes, rows and the
   peak RSS of the app's uvicorn worker (sampled every 50 ms) against its RSS before.
4. explorer: first page and filtered pages of GET /api/audit/events (median of 5), and
   EXPLAIN (ANALYZE) of the explorer's statements.

    XDG_RUNTIME_DIR=/tmp .venv/bin/python bench/audit_verify.py [--events 1000000]
"""

import argparse
import secrets
import statistics
import sys
import threading
import time
import urllib.parse
from pathlib import Path

import psutil

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
import harness  # noqa: E402  embedded PostgreSQL, uvicorn, processes
from review_queue import connect, database_env  # noqa: E402

ROOT = harness.ROOT
sys.path.insert(0, str(ROOT))
HOST = harness.HOST
log = harness.log
ADMIN, ADMIN_PASSWORD = "bench-admin", "velvet-orbit-kiln-58"
TARGET_VERIFY_SECONDS = 20.0

# Realistic mix: agents post most events, analysts and admins fewer; JSON before/after.
LOAD_SQL = """
INSERT INTO audit_events (actor, actor_id, actor_role, actor_type, action, entity_type, entity_id,
                          before, after, reason, request_id, client_addr)
SELECT CASE WHEN g %% 10 < 7 THEN 'agent-' || (g %% 5) WHEN g %% 10 < 9 THEN 'analyst-' || (g %% 40) ELSE 'admin-1' END,
       g %% 50,
       CASE WHEN g %% 10 < 7 THEN 'agent' WHEN g %% 10 < 9 THEN 'analyst' ELSE 'admin' END,
       CASE WHEN g %% 10 < 7 THEN 'agent' ELSE 'human' END,
       (ARRAY['transaction.created', 'risk_score.posted', 'case.opened', 'case.claimed', 'case.approved',
              'case.rejected', 'transaction.settled'])[1 + g %% 7],
       CASE WHEN g %% 7 IN (2, 3, 4, 5) THEN 'case' ELSE 'transaction' END,
       CASE WHEN g %% 7 IN (2, 3, 4, 5) THEN (g / 7)::text ELSE 'ref-' || g END,
       CASE WHEN g %% 3 = 0 THEN jsonb_build_object('state', 'open', 'version', g %% 4) END,
       jsonb_build_object('state', 'in_review', 'amount', (g %% 100000)::text || '.50', 'n', g),
       CASE WHEN g %% 11 = 0 THEN 'score ' || (g %% 100) || ' is at or above the flag threshold 70' END,
       md5(g::text), '10.0.' || (g %% 250) || '.' || (g %% 200)
FROM generate_series(%(start)s, %(stop)s) AS g
"""


def load(cur, events: int, chunk: int) -> float:
    began = time.perf_counter()
    for start in range(1, events + 1, chunk):
        cur.execute(LOAD_SQL, {"start": start, "stop": min(events, start + chunk - 1)})
        log(f"  loaded {min(events, start + chunk - 1):,} events ({time.perf_counter() - began:.0f}s)")
    seconds = time.perf_counter() - began
    cur.execute("VACUUM ANALYZE audit_events")
    return seconds


def timed_get(url: str, token: str) -> tuple[int, float, bytes]:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    began = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=300) as response:  # a full verify takes seconds
            status, body = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read()
    return status, time.perf_counter() - began, body


class PeakRss:
    """The highest RSS of a process, sampled every 50 ms until stopped."""

    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)
        self.peak = self.proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self.proc.memory_info().rss)

    def __enter__(self) -> "PeakRss":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def export(port: int, token: str) -> dict:
    import http.client

    conn = http.client.HTTPConnection(HOST, port, timeout=600)
    began = time.perf_counter()
    conn.request("GET", "/api/audit/export.csv", headers={"Authorization": f"Bearer {token}"})
    response = conn.getresponse()
    first_byte = time.perf_counter() - began
    size = lines = 0
    while chunk := response.read(1 << 16):
        size += len(chunk)
        lines += chunk.count(b"\n")
    conn.close()
    return {"status": response.status, "seconds": time.perf_counter() - began, "first_byte": first_byte,
            "bytes": size, "lines": lines}


def explain(url: str, params: dict) -> list[str]:
    from sqlalchemy import select
    from sqlalchemy.dialects import postgresql

    from app.audit import explorer
    from app.audit.models import AuditEvent

    query, _ = explorer.parse_query(params)
    statement = query.apply(select(AuditEvent)).order_by(AuditEvent.id.desc()).limit(query.limit + 1)
    sql = str(statement.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
    conn = connect(url)
    cur = conn.cursor()
    cur.execute("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + sql)
    plan = [row[0] for row in cur.fetchall()]
    conn.close()
    return plan


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--chunk", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=BENCH / "out")
    args = parser.parse_args(argv)
    out, res = harness.begin_run(args.out)
    try:
        log("starting embedded PostgreSQL")
        url = harness.start_database(res, out)
        secret = secrets.token_urlsafe(48)
        env = database_env(url, secret)
        harness.run_cli(["migrate"], env)
        harness.run_cli(["create-user", ADMIN, "--role", "admin", "--password-stdin"], env, stdin=ADMIN_PASSWORD)
        conn = connect(url)
        conn.autocommit = True
        log(f"loading {args.events:,} audit events through the chain trigger")
        load_seconds = load(conn.cursor(), args.events, args.chunk)
        conn.close()
        print(f"\n1. load: {args.events:,} events in {load_seconds:.1f}s "
              f"({args.events / load_seconds:,.0f} events/s, chained by the trigger)")

        began = time.perf_counter()
        harness.run_cli(["audit", "verify"], env)
        cli_seconds = time.perf_counter() - began
        port, pid = harness.start_server(res, "audit-app", ["app.main:app"], env, out)
        form = urllib.parse.urlencode({"username": ADMIN, "password": ADMIN_PASSWORD}).encode()
        status, body = harness.http("POST", f"http://{HOST}:{port}/auth/token", data=form,
                                    headers={"Content-Type": "application/x-www-form-urlencoded"})
        import json
        token = json.loads(body)["access_token"]
        base = f"http://{HOST}:{port}"
        status, api_seconds, body = timed_get(f"{base}/api/audit/verify", token)
        verdict = "met" if max(cli_seconds, api_seconds) <= TARGET_VERIFY_SECONDS else "NOT met"
        print(f"\n2. verify: CLI {cli_seconds:.1f}s (process start included), GET /api/audit/verify "
              f"{api_seconds:.1f}s → {status} {body.decode()[:200]}; target ≤ {TARGET_VERIFY_SECONDS:g}s {verdict}")

        rss_before = psutil.Process(pid).memory_info().rss
        with PeakRss(pid) as peak:
            result = export(port, token)
        print(f"\n3. export: GET /api/audit/export.csv → {result['status']}, {result['lines'] - 1:,} rows, "
              f"{result['bytes'] / 1e6:,.0f} MB in {result['seconds']:.1f}s "
              f"({(result['lines'] - 1) / result['seconds']:,.0f} rows/s, "
              f"first byte {result['first_byte'] * 1000:.0f} ms); "
              f"worker RSS {rss_before / 1e6:.0f} MB before, peak {peak.peak / 1e6:.0f} MB "
              f"(+{(peak.peak - rss_before) / 1e6:.0f} MB)")

        pages = {
            "first page": {},
            "actor=admin-1": {"actor": "admin-1"},
            "role=admin": {"role": "admin"},
            "action=case.approved": {"action": "case.approved"},
            "entity case 4242": {"entity_type": "case", "entity_id": "4242"},
            "actor+action": {"actor": "analyst-7", "action": "case.claimed"},
            "time range (last 10 min)": {"since": time.strftime("%Y-%m-%dT%H:%M", time.gmtime(time.time() - 600))},
            "page 2 000 deep (cursor)": {"cursor": str(args.events - 100_000)},
        }
        print("\n4. explorer: GET /api/audit/events?limit=50 (median of 5, ms)")
        for name, params in pages.items():
            url_ = f"{base}/api/audit/events?{urllib.parse.urlencode({**params, 'limit': 50})}"
            times, count = [], 0
            for _ in range(5):
                status, seconds, body = timed_get(url_, token)
                times.append(seconds * 1000)
                count = len(json.loads(body)["items"]) if status == 200 else status
            print(f"   {name:<28} {statistics.median(times):7.1f} ms  ({count} items)")
        for name in ("actor=admin-1", "role=admin", "entity case 4242", "actor+action"):
            print(f"\n   EXPLAIN {name}")
            for line in explain(url, pages[name]):
                print(f"     {line}")
        return 0
    except KeyboardInterrupt:
        log("interrupted; stopping everything")
        return 130
    finally:
        harness.close_resources(res)


if __name__ == "__main__":
    raise SystemExit(main())
