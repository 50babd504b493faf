"""Soak: steady mixed traffic against one uvicorn worker for --minutes, then check the data.

Starts a throwaway embedded PostgreSQL (bench/harness.py), migrates,
creates an agent, --analysts analysts and an admin, starts one uvicorn worker of the real
app and drives it at a steady rate from threads in this process:

  agent     POST /transactions (--tx-rate per second), each followed by
            POST /transactions/{ref}/risk-scores (--flag-share of the scores ≥ 70 open a case);
            GET /transactions/{ref} (--read-rate per second) of transactions it created
  analysts  POST /api/cases/next, then POST /api/cases/{id}/decision (approve or reject,
            with the case version), each analyst up to --analyst-rate cases per second
  admin     GET /api/cases/counts every 2 s, GET /api/audit/verify every 60 s

Every --interval seconds it prints elapsed time, requests, errors by status, p50/p99 of that
window and the worker's RSS. At the end: totals, errors by status, RSS first/last/max, p99 per
minute, every acknowledged write looked up in the database, the transaction/audit pairing,
and `python -m app audit verify`. It stops by itself and stops everything it started, also on
an error, Ctrl-C or SIGTERM (a summary of what ran is still printed).

    XDG_RUNTIME_DIR=/tmp .venv/bin/python bench/soak.py                # 10 minutes
    XDG_RUNTIME_DIR=/tmp .venv/bin/python bench/soak.py --minutes 1    # smoke run
"""

import argparse
import json
import math
import os
import random
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import (  # noqa: E402 - the shared bench harness
    BENCH,
    HOST,
    PYTHON,
    ROOT,
    begin_run,
    close_resources,
    log,
    run_cli,
    start_database,
    start_server,
)

PASSWORD = "granite-pelican-rowboat-9"
CURRENCIES = ("USD", "EUR", "GBP")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


# --------------------------------------------------------------------------- recording


@dataclass
class Stats:
    """Every request's end time, latency, kind and status (or exception name)."""

    started: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)
    samples: list[tuple[float, float, str, int | str]] = field(default_factory=list)
    # Writes the server acknowledged, to be found in the database afterwards.
    transactions: set[str] = field(default_factory=set)
    scores: set[int] = field(default_factory=set)
    cases_opened: set[int] = field(default_factory=set)
    decisions: dict[int, str] = field(default_factory=dict)  # case id → decision
    error_samples: list[str] = field(default_factory=list)

    def record(self, kind: str, began: float, status: int | str, detail: str = "") -> None:
        ended = time.monotonic()
        with self.lock:
            self.samples.append((ended - self.started, ended - began, kind, status))
            if not (isinstance(status, int) and status < 400) and len(self.error_samples) < 10:
                self.error_samples.append(f"{kind} → {status}: {detail[:200]}")

    def since(self, offset: float) -> list[tuple[float, float, str, int | str]]:
        with self.lock:
            # Appended in time order (near enough): scan back from the end.
            i = len(self.samples)
            while i > 0 and self.samples[i - 1][0] >= offset:
                i -= 1
            return self.samples[i:]


def is_error(status: int | str) -> bool:
    return not isinstance(status, int) or status >= 400


class Client:
    """One user's keep-alive httpx client that records every request in Stats."""

    def __init__(self, base_url: str, token: str, stats: Stats) -> None:
        self.http = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        self.stats = stats

    def call(self, kind: str, method: str, path: str, body: dict | None = None) -> httpx.Response | None:
        began = time.monotonic()
        try:
            response = self.http.request(method, path, json=body)
        except httpx.HTTPError as exc:
            self.stats.record(kind, began, type(exc).__name__, str(exc))
            return None
        self.stats.record(kind, began, response.status_code, "" if response.is_success else response.text)
        return response

    def close(self) -> None:
        self.http.close()


# --------------------------------------------------------------------------- traffic


class Paced(threading.Thread):
    """Calls step() `rate` times per second on a fixed schedule until stop is set. A step that
    overruns delays the next ones; more than a second behind, the schedule restarts from now
    (so a stall shows as lower throughput, never as a burst)."""

    def __init__(self, name: str, rate: float, step, stop: threading.Event, phase: float = 0.0) -> None:
        super().__init__(name=name, daemon=True)
        self.interval, self.step, self.stop_event, self.phase = 1.0 / rate, step, stop, phase
        self.failure: BaseException | None = None

    def run(self) -> None:
        next_at = time.monotonic() + self.phase
        try:
            while not self.stop_event.is_set():
                delay = next_at - time.monotonic()
                if delay > 0 and self.stop_event.wait(delay):
                    return
                self.step()
                next_at += self.interval
                if time.monotonic() - next_at > 1.0:
                    next_at = time.monotonic()
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            self.failure = exc


class Agent:
    def __init__(self, client: Client, stats: Stats, flag_share: float, seed: int) -> None:
        self.client, self.stats, self.flag_share = client, stats, flag_share
        self.rng = random.Random(seed)
        self.seq = 0
        self.lock = threading.Lock()
        self.recent: list[str] = []
        self.run_id = f"soak-{int(time.time())}"

    def _next(self) -> int:
        with self.lock:
            self.seq += 1
            return self.seq

    def post_transaction_and_score(self) -> None:
        n = self._next()
        reference = f"{self.run_id}-{n}"
        currency = CURRENCIES[n % len(CURRENCIES)]
        # Below the dual-control threshold (10,000), so one analyst's approval is final.
        amount = Decimal(self.rng.randint(100, 900_000)) / 100
        body = {"account_id": f"acct_{self.rng.randint(1, 2000):05d}", "reference": reference,
                "amount": str(amount), "currency": currency, "counterparty": f"Merchant {n % 300}",
                "description": "soak payment", "metadata": {"channel": "card", "country": "DE"}}
        response = self.client.call("POST /transactions", "POST", "/transactions", body)
        if response is None or response.status_code != 200:
            return
        with self.stats.lock:
            self.stats.transactions.add(reference)
        with self.lock:
            self.recent.append(reference)
            del self.recent[:-1000]
        flagged = self.rng.random() < self.flag_share
        score = self.rng.randint(70, 100) if flagged else self.rng.randint(0, 69)
        weight = Decimal(self.rng.randint(1, 99)) / 100
        body = {"score": score, "model": "soak-gbm", "model_version": "2026.11",
                "reasons": [{"code": "velocity", "description": "payments per hour", "weight": str(weight)}]}
        response = self.client.call("POST /transactions/{ref}/risk-scores", "POST",
                                    f"/transactions/{reference}/risk-scores", body)
        if response is not None and response.status_code == 201:
            created = response.json()
            with self.stats.lock:
                self.stats.scores.add(created["id"])
                if created.get("case_id"):
                    self.stats.cases_opened.add(created["case_id"])

    def read_transaction(self) -> None:
        with self.lock:
            reference = self.rng.choice(self.recent) if self.recent else None
        if reference is not None:
            self.client.call("GET /transactions/{ref}", "GET", f"/transactions/{reference}")


class Analyst:
    def __init__(self, client: Client, stats: Stats, seed: int) -> None:
        self.client, self.stats = client, stats
        self.rng = random.Random(seed)

    def review_next(self) -> None:
        response = self.client.call("POST /api/cases/next", "POST", "/api/cases/next")
        if response is None or response.status_code != 200:
            return  # 204: the queue is empty
        case = response.json()
        if self.rng.random() < 0.6:
            decision = {"decision": "approve", "reason_code": "false_positive", "note": "Known customer pattern"}
        else:
            decision = {"decision": "reject", "reason_code": "suspected_fraud", "note": "Card testing pattern"}
        decision["version"] = case["version"]
        response = self.client.call("POST /api/cases/{id}/decision", "POST", f"/api/cases/{case['id']}/decision",
                                    decision)
        if response is not None and response.status_code == 200:
            with self.stats.lock:
                self.stats.decisions[case["id"]] = response.json()["state"]


class Admin:
    def __init__(self, client: Client) -> None:
        self.client = client
        self.verify_results: list[dict] = []

    def counts(self) -> None:
        self.client.call("GET /api/cases/counts", "GET", "/api/cases/counts")

    def verify(self) -> None:
        response = self.client.call("GET /api/audit/verify", "GET", "/api/audit/verify")
        if response is not None and response.status_code == 200:
            self.verify_results.append(response.json())


# --------------------------------------------------------------------------- setup and checks


def token_for(base_url: str, username: str) -> str:
    response = httpx.post(f"{base_url}/auth/token", data={"username": username, "password": PASSWORD}, timeout=30)
    if response.status_code != 200:
        raise RuntimeError(f"POST /auth/token for {username} → {response.status_code}: {response.text[:200]}")
    return response.json()["access_token"]


def libpq(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class Database:
    """A direct connection for the queue depth and the final checks."""

    def __init__(self, url: str) -> None:
        import psycopg2

        self.conn = psycopg2.connect(libpq(url), application_name="riskdesk-soak")
        self.conn.autocommit = True

    def scalar(self, statement: str, params=None):
        with self.conn.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchone()[0]

    def close(self) -> None:
        self.conn.close()


def verify_writes(db: Database, stats: Stats) -> dict:
    refs, scores, decided = sorted(stats.transactions), sorted(stats.scores), stats.decisions
    return {
        "transactions": (db.scalar("SELECT count(*) FROM transactions WHERE reference = ANY(%s)", (refs,)),
                         len(refs)),
        "risk scores": (db.scalar("SELECT count(*) FROM risk_scores WHERE id = ANY(%s)", (scores,)), len(scores)),
        "cases opened": (db.scalar("SELECT count(*) FROM review_cases WHERE id = ANY(%s)",
                                   (sorted(stats.cases_opened),)), len(stats.cases_opened)),
        "decisions": (db.scalar("SELECT count(*) FROM review_cases WHERE id = ANY(%s) AND decision IS NOT NULL",
                                (sorted(decided),)), len(decided)),
    }


def audit_pairing(db: Database) -> dict:
    """Transactions without exactly one transaction.created event, and such events without a transaction."""
    return {
        "transactions": db.scalar("SELECT count(*) FROM transactions"),
        "without one created event": db.scalar("""
            SELECT count(*) FROM (
              SELECT t.reference FROM transactions t
              LEFT JOIN audit_events e ON e.action = 'transaction.created' AND e.entity_type = 'transaction'
                                      AND e.entity_id = t.reference
              GROUP BY t.reference HAVING count(e.id) <> 1) AS bad"""),
        "orphan created events": db.scalar("""
            SELECT count(*) FROM audit_events e WHERE e.action = 'transaction.created'
              AND NOT EXISTS (SELECT 1 FROM transactions t WHERE t.reference = e.entity_id)"""),
        "audit events": db.scalar("SELECT count(*) FROM audit_events"),
    }


def audit_verify(env: dict) -> tuple[int, str]:
    result = subprocess.run([str(PYTHON), "-m", "app", "audit", "verify"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=600)
    return result.returncode, (result.stdout + result.stderr).strip()


def fmt_statuses(samples) -> str:
    counts = Counter(status for _, _, _, status in samples if is_error(status))
    return "{" + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items(), key=str)) + "}" if counts else "none"


def busy(times) -> float:
    return times.user + times.nice + times.system + times.irq + times.softirq + times.steal


def mb(n: int) -> str:
    return f"{n / 2**20:.1f} MB"


# --------------------------------------------------------------------------- main


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=10, help="how long to run the traffic (default 10)")
    p.add_argument("--interval", type=float, default=10, help="seconds between progress lines (default 10)")
    p.add_argument("--tx-rate", type=float, default=20, help="transactions (each with a score) per second")
    p.add_argument("--read-rate", type=float, default=10, help="GET /transactions/{ref} per second")
    p.add_argument("--flag-share", type=float, default=0.3, help="share of scores ≥ 70 (each opens a case)")
    p.add_argument("--analysts", type=int, default=3)
    p.add_argument("--analyst-rate", type=float, default=3, help="cases each analyst reviews per second at most")
    p.add_argument("--out", type=Path, default=BENCH / "out", help="logs and the throwaway data dir")
    p.add_argument("--json", type=Path, help="also write the summary as JSON here")
    args = p.parse_args(argv)
    if args.minutes <= 0 or args.tx_rate <= 0 or args.interval <= 0 or args.analysts < 1:
        p.error("--minutes, --tx-rate, --interval and --analysts must be positive")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    out, res = begin_run(args.out)
    stop = threading.Event()
    threads: list[Paced] = []
    clients: list[Client] = []
    stats = Stats()
    rss: list[tuple[float, int]] = []
    interrupted = False
    db: Database | None = None
    try:
        try:
            log("starting embedded PostgreSQL")
            url = start_database(res, out, database="riskdesk_soak")
            token_minutes = min(24 * 60, max(60, int(args.minutes) + 30))
            env = {**os.environ, "DATABASE_URL": url, "APP_ENV": "test", "LOG_LEVEL": "WARNING",
                   "PYTHONUNBUFFERED": "1", "ACCESS_TOKEN_MINUTES": str(token_minutes)}
            log(f"migrating; creating an agent, {args.analysts} analysts and an admin")
            run_cli(["migrate"], env)
            users = [("soak-agent", "agent"), ("soak-admin", "admin")] + [
                (f"soak-analyst-{i}", "analyst") for i in range(1, args.analysts + 1)]
            for name, role in users:
                run_cli(["create-user", name, "--role", role, "--password-stdin"], env, stdin=PASSWORD + "\n")
            port, server_pid = start_server(res, "soak-app", ["app.main:app"], env, out)
            base_url = f"http://{HOST}:{port}"
            server = psutil.Process(server_pid)
            db = Database(url)

            agent_client = Client(base_url, token_for(base_url, "soak-agent"), stats)
            admin_client = Client(base_url, token_for(base_url, "soak-admin"), stats)
            clients += [agent_client, admin_client]
            agent = Agent(agent_client, stats, args.flag_share, seed=1)
            admin = Admin(admin_client)
            # Several threads per stream, phase-shifted, so one slow request does not stall the rate.
            tx_threads = max(1, min(8, round(args.tx_rate / 5)))
            for i in range(tx_threads):
                threads.append(Paced(f"agent-post-{i}", args.tx_rate / tx_threads, agent.post_transaction_and_score,
                                     stop, phase=i / args.tx_rate))
            if args.read_rate > 0:
                threads.append(Paced("agent-read", args.read_rate, agent.read_transaction, stop, phase=0.5))
            for i in range(1, args.analysts + 1):
                client = Client(base_url, token_for(base_url, f"soak-analyst-{i}"), stats)
                clients.append(client)
                threads.append(Paced(f"analyst-{i}", args.analyst_rate,
                                     Analyst(client, stats, seed=100 + i).review_next, stop,
                                     phase=i / (args.analysts * args.analyst_rate)))
            threads.append(Paced("admin-counts", 0.5, admin.counts, stop, phase=1.0))
            threads.append(Paced("admin-verify", 1 / 60, admin.verify, stop, phase=30.0))

            print(f"Riskdesk soak — {args.minutes:g} min, one uvicorn worker (pid {server_pid}), "
                  f"{psutil.cpu_count()} cores; {args.tx_rate:g} transactions/s each with a risk score "
                  f"({args.flag_share:.0%} flagged), {args.read_rate:g} reads/s, {args.analysts} analysts at "
                  f"≤ {args.analyst_rate:g} cases/s each, admin counts every 2 s and audit verify every 60 s",
                  flush=True)
            rss.append((0.0, server.memory_info().rss))
            stats.started = time.monotonic()
            for thread in threads:
                thread.start()
            run_traffic(args, stats, threads, server, db, rss)
        except KeyboardInterrupt:
            interrupted = True
            log("interrupted; stopping the traffic, then everything else")
        finally:
            stop.set()
            for thread in threads:
                thread.join(35)
            for client in clients:
                client.close()
        if stats.samples and db is not None:
            summary = report(args, out, stats, rss, db, env, admin, interrupted)
            if args.json:
                args.json.write_text(json.dumps(summary, indent=2, default=str))
        return 130 if interrupted else 0
    except KeyboardInterrupt:
        log("interrupted; stopping everything")
        return 130
    finally:
        if db is not None:
            db.close()
        close_resources(res)


def run_traffic(args, stats: Stats, threads: list[Paced], server: psutil.Process, db: Database, rss: list) -> None:
    """Sample the worker's RSS every second and print a progress line every --interval, until --minutes."""
    duration = args.minutes * 60
    next_report = args.interval
    reported = 0
    cpu_before = (server.cpu_times(), psutil.cpu_times(), time.monotonic())
    while True:
        elapsed = time.monotonic() - stats.started
        if elapsed >= duration:
            return
        time.sleep(min(1.0, duration - elapsed))
        elapsed = time.monotonic() - stats.started
        rss.append((elapsed, server.memory_info().rss))
        failed = [t for t in threads if t.failure is not None]
        if failed:
            raise RuntimeError(f"traffic thread {failed[0].name} failed: {failed[0].failure!r}")
        if elapsed >= next_report or elapsed >= duration:
            window_start = next_report - args.interval
            window = stats.since(window_start)
            latencies = [lat for _, lat, _, _ in window]
            total = len(stats.samples)
            queue = db.scalar("SELECT count(*) FROM review_cases WHERE decision IS NULL")
            cpu_now = (server.cpu_times(), psutil.cpu_times(), time.monotonic())
            wall = cpu_now[2] - cpu_before[2]
            server_cpu = 100 * (sum(cpu_now[0][:2]) - sum(cpu_before[0][:2])) / wall
            machine_cpu = 100 * (busy(cpu_now[1]) - busy(cpu_before[1])) / wall
            cpu_before = cpu_now
            rate = len(window) / (elapsed - window_start)
            print(f"[{elapsed:6.0f}s] requests {total:7d} (+{total - reported}, {rate:5.1f}/s)"
                  f"  errors {fmt_statuses(window):<12}  p50 {percentile(latencies, 50) * 1000:6.1f} ms"
                  f"  p99 {percentile(latencies, 99) * 1000:6.1f} ms  server RSS {mb(rss[-1][1])}"
                  f"  undecided cases {queue}  cpu: worker {server_cpu:3.0f}%, machine {machine_cpu:3.0f}%"
                  f" of a core", flush=True)
            reported = total
            next_report += args.interval


def report(args, out: Path, stats: Stats, rss, db: Database, env: dict, admin: Admin, interrupted: bool) -> dict:
    samples = list(stats.samples)
    elapsed = samples[-1][0]
    statuses = Counter(status for *_, status in samples)
    errors = {str(k): v for k, v in statuses.items() if is_error(k)}
    by_kind: dict[str, Counter] = defaultdict(Counter)
    for _, _, kind, status in samples:
        by_kind[kind][status] += 1
    per_minute: dict[int, list[float]] = defaultdict(list)
    last_minute = max(0, math.ceil(args.minutes) - 1)  # the few requests ending after the end count in the last
    for at, latency, _, _ in samples:
        per_minute[min(int(at // 60), last_minute)].append(latency)
    latencies = [lat for _, lat, _, _ in samples]
    rss_values = [value for _, value in rss]

    print()
    print(f"Soak summary{' (interrupted)' if interrupted else ''}: {len(samples)} requests in {elapsed:.0f}s "
          f"({len(samples) / elapsed:.1f}/s); errors by status: {errors or 'none'}")
    for kind, counts in sorted(by_kind.items()):
        print(f"  {kind:<36} {sum(counts.values()):7d}  "
              + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items(), key=str)))
    print(f"  latency overall: p50 {percentile(latencies, 50) * 1000:.1f} ms, "
          f"p99 {percentile(latencies, 99) * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms")
    print("  p99 per minute (ms): " + ", ".join(
        f"{minute + 1}: {percentile(values, 99) * 1000:.1f}" for minute, values in sorted(per_minute.items())))
    print(f"  server RSS: first {mb(rss_values[0])}, last {mb(rss_values[-1])}, max {mb(max(rss_values))}")
    if stats.error_samples:
        print("  error samples: " + " | ".join(stats.error_samples[:5]))

    writes = verify_writes(db, stats)
    pairing = audit_pairing(db)
    print("Writes acknowledged with a 2xx and found in the database: " + ", ".join(
        f"{name} {found}/{expected}" for name, (found, expected) in writes.items()))
    print(f"Audit pairing: {pairing['transactions']} transactions, {pairing['without one created event']} without "
          f"exactly one transaction.created event, {pairing['orphan created events']} created events without a "
          f"transaction; {pairing['audit events']} audit events in all")
    if admin.verify_results:
        last = admin.verify_results[-1]
        print(f"GET /api/audit/verify during the run: {len(admin.verify_results)} runs, "
              f"all ok: {all(r['ok'] for r in admin.verify_results)}, last {last['events']} events")
    code, output = audit_verify(env)
    print(f"python -m app audit verify → exit {code}: {output}")
    server_log = out / "soak-app.log"
    error_lines = [line for line in server_log.read_text(errors="replace").splitlines()
                   if '"level": "error"' in line or line.startswith("Traceback")] if server_log.exists() else []
    print(f"Server log: {len(error_lines)} error-level lines")
    all_found = all(found == expected for found, expected in writes.values())
    ok = (not errors and all_found and code == 0 and pairing["without one created event"] == 0
          and pairing["orphan created events"] == 0 and not error_lines)
    print(f"Result: {'OK' if ok else 'PROBLEMS (see above)'}")
    return {"requests": len(samples), "seconds": elapsed, "errors": errors,
            "by_kind": {k: {str(s): n for s, n in v.items()} for k, v in by_kind.items()},
            "p99_per_minute_ms": {m + 1: percentile(v, 99) * 1000 for m, v in per_minute.items()},
            "rss": {"first": rss_values[0], "last": rss_values[-1], "max": max(rss_values)},
            "writes": writes, "pairing": pairing, "audit_verify": [code, output], "ok": ok}


if __name__ == "__main__":
    raise SystemExit(main())
