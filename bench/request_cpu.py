"""CPU per request, in process: the app's ASGI callable driven directly, one request at a time.

No HTTP server, no load generator, no other request in flight: `time.process_time()` around
each request is the CPU this process spent on it (every thread: the event loop and the
endpoint's threadpool thread), however busy the rest of the machine is. It measures what a
change to the per-request path costs or saves; bench/api_throughput.py measures throughput.

Scenarios: GET /transactions/{ref} (agent), the floor's GET (bench/floor_app.py, same
process), GET /accounts/{id}/context (agent), and POST /api/cases/next (an analyst; each
claim is decided, unmeasured, so the next one claims a new case). Prints the median and the
lowest of several rounds' mean CPU per request.

Needs a PostgreSQL server; it makes a database of its own and drops it at the end.

    .venv/bin/python bench/request_cpu.py [--url postgresql://postgres@127.0.0.1:5432/postgres] [--requests 2000]
"""

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode

import psycopg2
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
AGENT, ANALYST, PASSWORD = "cpu-agent", "cpu-analyst", "quartz-meadow-ferry-41"
DECISION = json.dumps({"decision": "reject", "reason_code": "suspected_fraud", "note": "bench"}).encode()
SEED = """
INSERT INTO transactions (reference, account_id, amount, currency, counterparty, description, metadata, created_by)
SELECT 'cpu-' || lpad(g::text, 6, '0'), 'acct_' || (g %% 100), round((1 + random() * 9999)::numeric, 2), 'USD',
       'Counterparty ' || (g %% 50), 'seeded payment', '{"channel": "card"}'::jsonb, %(user_id)s
FROM generate_series(1, %(rows)s) AS g;
INSERT INTO risk_scores (transaction_id, score, model, model_version, reasons, is_flagged, created_by)
SELECT id, 90, 'fraud-gbm', '2026.11', '[]'::jsonb, true, %(user_id)s FROM transactions;
INSERT INTO review_cases (kind, state, transaction_id, risk, amount, currency, reason)
SELECT 'risk', 'open', id, 50 + id %% 50, amount, currency, 'score at or above the flag threshold' FROM transactions;
UPDATE transactions SET review_status = 'flagged';
"""


class Client:
    """Requests straight into the ASGI app; `call` gives (status, body)."""

    def __init__(self, app) -> None:
        self.app = app

    async def call(self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None):
        raw_headers = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
        raw_headers.append((b"content-length", str(len(body)).encode()))
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
                 "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
                 "root_path": "", "headers": raw_headers, "client": ("127.0.0.1", 5000),
                 "server": ("127.0.0.1", 8000)}
        sent = False

        async def receive():
            nonlocal sent
            if sent:
                await asyncio.sleep(3600)
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        reply: dict = {"body": b""}

        async def send(message):
            if message["type"] == "http.response.start":
                reply["status"] = message["status"]
            elif message["type"] == "http.response.body":
                reply["body"] += message.get("body", b"")

        await self.app(scope, receive, send)
        return reply["status"], reply["body"]

    async def token(self, username: str) -> str:
        status, body = await self.call("POST", "/auth/token", urlencode({"username": username, "password": PASSWORD})
                                       .encode(), {"Content-Type": "application/x-www-form-urlencoded"})
        assert status == 200, body
        return json.loads(body)["access_token"]


async def measure(client: Client, requests: int, rounds: int, request, after=None) -> list[float]:
    """Each round's mean CPU ms per request (`request()` measured; `after(reply)` not)."""
    means = []
    for _ in range(rounds):
        spent = 0.0
        for _ in range(requests):
            began = time.process_time()
            status, body = await request()
            spent += time.process_time() - began
            if after is not None:
                await after(status, body)
        means.append(1000 * spent / requests)
    return means


async def run(args, url: str) -> None:
    os.environ.update({"DATABASE_URL": url, "APP_ENV": "test", "LOG_LEVEL": "WARNING"})
    sys.path.insert(0, str(ROOT))
    from app.main import app

    sys.path.insert(0, str(ROOT / "bench"))
    import floor_app  # the floor: the same SELECT without auth, audit or middleware (bench/floor_app.py)

    client, floor = Client(app), Client(floor_app.app)
    async with app.router.lifespan_context(app):
        agent = {"Authorization": f"Bearer {await client.token(AGENT)}"}
        analyst = {"Authorization": f"Bearer {await client.token(ANALYST)}",
                   "Content-Type": "application/json"}
        counter = iter(range(10**9))

        def get():
            return client.call("GET", f"/transactions/cpu-{next(counter) % args.rows + 1:06d}", headers=agent)

        def floor_get():
            return floor.call("GET", f"/floor/transactions/cpu-{next(counter) % args.rows + 1:06d}")

        def context():
            return client.call("GET", f"/accounts/acct_{next(counter) % 100}/context", headers=agent)

        def claim():
            return client.call("POST", "/api/cases/next", headers=analyst)

        async def decide(status, body):
            assert status == 200, (status, body)
            case_id = json.loads(body)["id"]
            status, body = await client.call("POST", f"/api/cases/{case_id}/decision", DECISION, analyst)
            assert status == 200, (status, body)

        scenarios = {"get": ("GET /transactions/{ref}", get, None, args.requests),
                     "floor": ("floor GET /floor/transactions/{ref}", floor_get, None, args.requests),
                     "context": ("GET /accounts/{id}/context", context, None, args.requests // 2),
                     "next": ("POST /api/cases/next", claim, decide, args.requests // 4)}
        for name, request, after, n in (scenarios[key] for key in args.only or scenarios):
            status, body = await request()
            assert status == 200, (name, status, body[:300])
            if after:
                await after(status, body)
            await measure(client, max(n // 10, 1), 1, request, after)  # warm-up
            means = await measure(client, n // args.rounds, args.rounds, request, after)
            print(f"{name:<36} CPU ms/request: median {statistics.median(means):.3f}, min {min(means):.3f} "
                  f"(rounds: {', '.join(f'{m:.3f}' for m in means)})", flush=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default=os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    p.add_argument("--requests", type=int, default=2000, help="measured GETs; half as many contexts, a quarter claims")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--rows", type=int, default=2000, help="seeded transactions, each with an open case")
    p.add_argument("--only", nargs="+", choices=["get", "floor", "context", "next"], help="these scenarios only")
    args = p.parse_args(argv)
    name = f"riskdesk_cpu_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(make_url(args.url).set(drivername="postgresql").render_as_string(hide_password=False))
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    url = make_url(args.url).set(database=name).render_as_string(hide_password=False)
    try:
        env = {**os.environ, "DATABASE_URL": url, "APP_ENV": "test", "LOG_LEVEL": "WARNING"}
        for cli, stdin in ((["migrate"], None),
                           (["create-user", AGENT, "--role", "agent", "--password-stdin"], PASSWORD + "\n"),
                           (["create-user", ANALYST, "--role", "analyst", "--password-stdin"], PASSWORD + "\n")):
            subprocess.run([sys.executable, "-m", "app", *cli], cwd=ROOT, env=env, input=stdin, text=True,
                           check=True, capture_output=True)
        with psycopg2.connect(make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)) as conn:
            with conn.cursor() as cur:
                cur.execute("SELECT id FROM users WHERE username = %s", (AGENT,))
                cur.execute(SEED, {"user_id": cur.fetchone()[0], "rows": args.rows})
                cur.execute("ANALYZE")
        asyncio.run(run(args, url))
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
