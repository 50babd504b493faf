"""Login throttling from outside: concurrent wrong passwords, and the audit rows a throttled flood writes.

1. concurrent: --concurrency (40) clients, each bound to its own source address
   (127.0.0.2, 127.0.0.3, …: all of 127/8 is loopback), connected first, then released
   together by a barrier to POST one wrong password each to /auth/token for one user.
   A 401 is a password that was checked; the limit is 5. Repeated --rounds times, each
   round with a user of its own.
2. flood: one address (127.0.0.250) sends wrong passwords for one user as fast as
   --flood-connections keep-alive connections allow, for --flood-seconds or
   --flood-requests, whichever ends first. Reported: the answers, and the audit_events rows
   written during the flood (auth.login_throttled and in total).

The server is `uvicorn app.main:app` with proxy headers off (as `python -m app run`), one
worker, on its own embedded PostgreSQL in a throwaway directory under bench/out/pg/.
--app-root measures another checkout's app with this one's venv, e.g. the code before the
fix:

    git worktree add /tmp/before 1c71b52
    XDG_RUNTIME_DIR=/tmp .venv/bin/python bench/login_throttle.py --app-root /tmp/before
    XDG_RUNTIME_DIR=/tmp .venv/bin/python bench/login_throttle.py
    git worktree remove --force /tmp/before
"""

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import psycopg2
from sqlalchemy.engine import make_url

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
import harness  # noqa: E402 - after the sys.path insert above; embedded PostgreSQL, processes, clean-up

HOST = harness.HOST
PASSWORD = "correct-horse-battery"  # meets the old rule (length) and the new one (zxcvbn)
WRONG = "wrong-password-123"
FLOOD_ADDRESS = "127.0.0.250"


def run_app_cli(app_root: Path, args: list[str], env: dict, stdin: str | None = None) -> None:
    result = subprocess.run([str(harness.PYTHON), "-m", "app", *args], cwd=app_root, env=env, input=stdin,
                            capture_output=True, text=True, timeout=120, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"python -m app {' '.join(args)} failed:\n{result.stdout}{result.stderr}")


def start_app(res: harness.Resources, app_root: Path, env: dict, out: Path) -> int:
    port = harness.free_port()
    args = [str(harness.PYTHON), "-m", "uvicorn", "app.main:app", "--host", HOST, "--port", str(port),
            "--workers", "1", "--no-proxy-headers", "--log-level", "warning"]
    with open(out / "login_throttle_app.log", "wb") as log_file:
        proc = subprocess.Popen(args, cwd=app_root, env=env, stdout=log_file, stderr=subprocess.STDOUT,
                                start_new_session=True)
    res.processes.append(("app", proc))
    harness.wait_healthy(port, proc, "app")
    return port


def audit_counts(dsn: str) -> dict[str, int]:
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT action, count(*) FROM audit_events GROUP BY action")
            return dict(cur.fetchall())
    finally:
        conn.close()


def concurrent_round(base_url: str, username: str, clients: int) -> Counter:
    sessions = [httpx.Client(base_url=base_url, timeout=60,
                             transport=httpx.HTTPTransport(local_address=f"127.0.0.{n}"))
                for n in range(2, 2 + clients)]
    barrier = threading.Barrier(clients)
    statuses: Counter = Counter()
    lock = threading.Lock()

    def fire(session: httpx.Client) -> None:
        session.get("/healthz")  # connected before the barrier: the requests start together
        barrier.wait(timeout=60)
        status = session.post("/auth/token", data={"username": username, "password": WRONG}).status_code
        with lock:
            statuses[status] += 1

    threads = [threading.Thread(target=fire, args=(s,)) for s in sessions]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        for s in sessions:
            s.close()
    return statuses


def flood(base_url: str, username: str, connections: int, seconds: float, requests: int) -> dict:
    statuses: Counter = Counter()
    lock = threading.Lock()
    sent = [0]
    deadline = time.monotonic() + seconds

    def worker() -> None:
        with httpx.Client(base_url=base_url, timeout=30,
                          transport=httpx.HTTPTransport(local_address=FLOOD_ADDRESS)) as session:
            while time.monotonic() < deadline:
                with lock:
                    if sent[0] >= requests:
                        return
                    sent[0] += 1
                status = session.post("/auth/token", data={"username": username, "password": WRONG}).status_code
                with lock:
                    statuses[status] += 1

    began = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"statuses": dict(sorted(statuses.items())), "requests": sum(statuses.values()),
            "seconds": round(time.perf_counter() - began, 2)}


def throttled_metric(base_url: str) -> str:
    text = httpx.get(f"{base_url}/metrics", timeout=10).text
    lines = [line for line in text.splitlines() if line.startswith("riskdesk_login_throttled_total")]
    return "; ".join(lines) or "(no riskdesk_login_throttled_total metric)"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--app-root", type=Path, default=harness.ROOT, help="checkout whose app is measured")
    parser.add_argument("--concurrency", type=int, default=40, help="simultaneous clients, one address each")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--flood-seconds", type=float, default=10.0)
    parser.add_argument("--flood-requests", type=int, default=2000)
    parser.add_argument("--flood-connections", type=int, default=8)
    parser.add_argument("--out", type=Path, default=BENCH / "out")
    parser.add_argument("--json", type=Path, help="also write the results here")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    app_root = args.app_root.resolve()
    out, res = harness.begin_run(args.out)
    results: dict = {"app_root": str(app_root)}
    try:
        commit = subprocess.run(["git", "-C", str(app_root), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, check=False).stdout.strip()
        results["commit"] = commit
        url = harness.start_database(res, out, database="riskdesk_login_throttle")
        dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        env = {**os.environ, "DATABASE_URL": url, "APP_ENV": "test", "LOG_LEVEL": "WARNING",
               "PYTHONPATH": str(app_root)}
        run_app_cli(app_root, ["migrate"], env)
        users = [f"root{n}" for n in range(args.rounds)] + ["flooded"]
        for name in users:
            run_app_cli(app_root, ["create-user", name, "--role", "admin", "--password-stdin"], env,
                        stdin=PASSWORD + "\n")
        port = start_app(res, app_root, env, out)
        base_url = f"http://{HOST}:{port}"
        harness.log(f"measuring {app_root} at {commit or '?'} on {base_url}")

        rounds = []
        for n in range(args.rounds):
            statuses = concurrent_round(base_url, f"root{n}", args.concurrency)
            rounds.append(dict(sorted(statuses.items())))
            print(f"concurrent round {n + 1}: {args.concurrency} simultaneous wrong passwords for one user "
                  f"from {args.concurrency} addresses -> 401 (checked): {statuses[401]}, "
                  f"429 (refused): {statuses[429]}, other: {sum(statuses.values()) - statuses[401] - statuses[429]}",
                  flush=True)
        results["concurrent"] = rounds

        before = audit_counts(dsn)
        flooded = flood(base_url, "flooded", args.flood_connections, args.flood_seconds, args.flood_requests)
        after = audit_counts(dsn)
        written = {action: after.get(action, 0) - before.get(action, 0) for action in after}
        flooded["audit_rows"] = {k: v for k, v in written.items() if v}
        flooded["audit_rows_total"] = sum(written.values())
        flooded["metric"] = throttled_metric(base_url)
        results["flood"] = flooded
        print(f"flood from one address: {flooded['requests']} requests in {flooded['seconds']} s "
              f"({flooded['requests'] / max(flooded['seconds'], 1e-9):.0f}/s), "
              f"answers {flooded['statuses']}", flush=True)
        print(f"  audit_events rows written: {flooded['audit_rows_total']} {flooded['audit_rows']}", flush=True)
        print(f"  metric: {flooded['metric']}", flush=True)
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
    finally:
        harness.close_resources(res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
