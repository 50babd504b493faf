"""Reconciliation throughput and webhook delivery rate, on a throwaway embedded PostgreSQL.

1. reconciliation: bulk-loads --rows settled transactions, then reconciles a --rows-line
   bank statement CSV through the upload path (start_upload + process_next_chunk, one
   committed chunk at a time, exactly what each HTMX /advance request runs) and the same
   events through the JSON path (reconcile_events, --json-batch events per request).
   Prints bank events per second; 1 in 1,000 rows is an amount mismatch (opens a case).
2. webhooks: enqueues --deliveries outbox events for one endpoint, starts a receiver on
   127.0.0.1 in its own process, and times `python -m app worker --once` with one and
   then two worker processes until every delivery is delivered; checks none was
   delivered twice.

    XDG_RUNTIME_DIR=/tmp .venv/bin/python bench/reconciliation.py [--rows 100000] [--deliveries 3000]
"""

import argparse
import multiprocessing
import os
import shutil
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("APP_ENV", "test")
os.environ.setdefault("LOG_LEVEL", "WARNING")

from sqlalchemy import text  # noqa: E402

from app import embedded_pg  # noqa: E402
from app.audit.service import Actor  # noqa: E402
from app.db import database  # noqa: E402
from app.migrations import upgrade_to_head  # noqa: E402
from app.reconciliation import service  # noqa: E402
from app.reconciliation.csv_format import format_rows  # noqa: E402
from app.reconciliation.schemas import BankEventIn  # noqa: E402
from app.webhooks import outbox  # noqa: E402

ACTOR = Actor(name="bench", id=None, role="admin")


def statement_rows(rows: int, prefix: str) -> list[dict[str, str]]:
    return [{"bank_reference": f"BNK-{prefix}-{i}", "reference": f"{prefix}-{i}",
             "amount": "10.01" if i % 1000 == 0 else "10.00", "currency": "USD", "status": "booked",
             "booked_at": "2026-11-24T10:15:00Z"} for i in range(rows)]


def load_ledger(rows: int, prefix: str) -> None:
    with database.session() as session:
        session.execute(text(
            "INSERT INTO transactions (reference, account_id, amount, currency, status, settled_at)"
            " SELECT :p || '-' || i, 'acct_bench', 10.00, 'USD', 'settled', now() FROM generate_series(0, :n - 1) i"
        ), {"p": prefix, "n": rows})
        session.commit()


def bench_csv(rows: int) -> None:
    load_ledger(rows, "csv")
    content = format_rows(statement_rows(rows, "csv"))
    started = time.perf_counter()
    with database.session() as session:
        run_id = service.start_upload(session=session, actor=ACTOR, filename="bench.csv", content=content)
        session.commit()
        chunks = 0
        while service.get_run(session=session, run_id=run_id).status == "processing":
            service.process_next_chunk(session=session, actor=ACTOR, run_id=run_id)
            session.commit()
            chunks += 1
        run = service.get_run(session=session, run_id=run_id)
    elapsed = time.perf_counter() - started
    print(f"csv upload path : {rows:,} rows ({len(content) / 2**20:.1f} MiB) in {elapsed:.1f} s over {chunks} chunks"
          f" = {rows / elapsed:,.0f} bank events/s  (matched {run.matched:,}, mismatches {run.mismatched:,})")


def bench_json(rows: int, batch: int) -> None:
    load_ledger(rows, "api")
    events = [BankEventIn.model_validate(r) for r in statement_rows(rows, "api")]
    started = time.perf_counter()
    matched = 0
    for i in range(0, rows, batch):
        with database.session() as session:
            matched += service.reconcile_events(session=session, actor=ACTOR, events=events[i:i + batch]).matched
            session.commit()
    elapsed = time.perf_counter() - started
    print(f"json api path   : {rows:,} events in {elapsed:.1f} s, {batch:,} per request"
          f" = {rows / elapsed:,.0f} bank events/s  (matched {matched:,}; validation excluded)")


def serve(port_queue) -> None:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):  # noqa: N802
            self.rfile.read(int(self.headers.get("content-length", 0)))
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port_queue.put(server.server_address[1])
    server.serve_forever()


def bench_webhooks(url: str, deliveries: int, batch: int) -> None:
    queue = multiprocessing.Queue()
    receiver = multiprocessing.Process(target=serve, args=(queue,), daemon=True)
    receiver.start()
    port = queue.get(timeout=10)
    with database.session() as session:
        session.execute(text(
            "INSERT INTO webhook_endpoints (url, secret, event_types) VALUES (:u, :s, ARRAY['case.opened'])"
        ), {"u": f"http://127.0.0.1:{port}/hook", "s": "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODk="})
        for i in range(0, deliveries, 1000):
            outbox.enqueue_many(session, [("case.opened", {"case_id": n}) for n in range(i, min(deliveries, i + 1000))])
        session.commit()
    env = {**os.environ, "DATABASE_URL": url}
    try:
        for workers in (1, 2):
            with database.session() as session:
                session.execute(text("TRUNCATE webhook_attempts"))
                session.execute(text("UPDATE webhook_deliveries SET status = 'pending', attempt_count = 0,"
                                     " next_attempt_at = now(), delivered_at = NULL"))
                session.commit()
            command = [sys.executable, "-m", "app", "worker", "--once", "--batch", str(batch)]
            started = time.perf_counter()
            processes = [subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
                         for _ in range(workers)]
            outputs = [p.communicate(timeout=600)[0].strip() for p in processes]
            elapsed = time.perf_counter() - started
            with database.session() as session:
                done, twice = session.execute(text(
                    "SELECT count(*) FILTER (WHERE status = 'delivered'),"
                    " (SELECT count(*) FROM (SELECT delivery_id FROM webhook_attempts GROUP BY delivery_id"
                    "  HAVING count(*) > 1) x) FROM webhook_deliveries")).one()
            print(f"webhooks, {workers} worker{'s' if workers > 1 else ' '}: {done:,}/{deliveries:,} delivered in "
                  f"{elapsed:.1f} s = {done / elapsed:,.0f} deliveries/s (incl. process start); "
                  f"delivered twice: {twice}; {outputs}")
    finally:
        receiver.terminate()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--json-batch", type=int, default=5000)
    parser.add_argument("--deliveries", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=50, help="worker claim batch")
    args = parser.parse_args()
    pg_dir = ROOT / "bench" / "out" / "reconciliation_pg"
    shutil.rmtree(pg_dir, ignore_errors=True)
    url = embedded_pg.start(pg_dir)
    try:
        upgrade_to_head(url)
        database.configure(url)
        bench_csv(args.rows)
        bench_json(args.rows, args.json_batch)
        bench_webhooks(url, args.deliveries, args.batch)
    finally:
        database.dispose()  # the embedded server stops when this process exits; its data is removed on the next run
    return 0


if __name__ == "__main__":
    sys.exit(main())
