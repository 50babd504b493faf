"""A light HTTP/1.1 load generator for the benchmark (run as a separate process).

Why not httpx: on a 2-core machine the generator competes with the server and PostgreSQL
for CPU, and httpx costs several times more CPU per request than the server-side work we
want to measure. This client keeps N keep-alive connections on one asyncio loop (uvloop
when available), writes pre-built request bytes and parses responses with httptools (the
same C parser uvicorn uses), so it costs a few tens of microseconds per request.

Input: one JSON object (the "job") as argv[1]. Output: one JSON object on stdout.

Job fields:
  host, port          target (loopback only: the benchmark refuses anything else)
  kind                "post" | "get" | "batch"
  path                "/transactions" (post, batch) or "/transactions/" prefix (get)
  token               bearer token or null
  concurrency         connections / workers
  warmup, duration    seconds (time-bounded mode; post and get)
  requests            total request count (count-bounded mode; batch) plus warmup_requests
  batch_size          items per batch request
  ref_prefix          unique prefix for created references
  get_refs            [prefix, count]: GETs pick "<prefix><n:06d>" for random n in 1..count
"""

import asyncio
import json
import random
import resource
import signal
import sys
import time

import httptools

try:
    import uvloop
except ImportError:  # pragma: no cover - uvicorn[standard] brings uvloop
    uvloop = None

LOOPBACK = ("127.0.0.1", "localhost", "::1")


class Response:
    __slots__ = ("status", "body", "done", "keep_alive")

    def __init__(self) -> None:
        self.status = 0
        self.body = bytearray()
        self.done = False
        self.keep_alive = True


class _Callbacks:
    """httptools callbacks; the body is kept only when the job asks for it (batch)."""

    def __init__(self, keep_body: bool) -> None:
        self.keep_body = keep_body
        self.response = Response()
        self.parser: httptools.HttpResponseParser | None = None

    def on_headers_complete(self) -> None:
        # Ask now: llhttp resets its flags once the message is complete.
        assert self.parser is not None
        self.response.keep_alive = self.parser.should_keep_alive()
        self.response.status = self.parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        if self.keep_body:
            self.response.body += body

    def on_message_complete(self) -> None:
        self.response.done = True


CONNECTIONS_OPENED = 0


class Connection:
    def __init__(self, host: str, port: int, keep_body: bool) -> None:
        self.host, self.port, self.keep_body = host, port, keep_body
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        global CONNECTIONS_OPENED
        CONNECTIONS_OPENED += 1
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def request(self, raw: bytes) -> Response:
        if self.writer is None:
            await self.open()
        assert self.reader is not None and self.writer is not None
        callbacks = _Callbacks(self.keep_body)
        parser = httptools.HttpResponseParser(callbacks)
        callbacks.parser = parser
        self.writer.write(raw)
        while not callbacks.response.done:
            chunk = await self.reader.read(65536)
            if not chunk:
                raise ConnectionError("server closed the connection")
            parser.feed_data(chunk)
        response = callbacks.response
        if not response.keep_alive:
            self.close()
        return response


def build_request(method: str, path: str, host: str, token: str | None, body: bytes | None,
                  headers: dict[str, str] | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "User-Agent: riskdesk-bench"]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if body is not None:
        lines.append("Content-Type: application/json")
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


def transaction_json(reference: str, n: int) -> bytes:
    return (
        f'{{"account_id":"acct_{n % 1000}","reference":"{reference}","amount":"{1 + n % 9000}.{n % 100:02d}",'
        '"currency":"USD","counterparty":"Bench Counterparty Ltd","description":"bench payment",'
        '"metadata":{"channel":"card","country":"DE"}}'
    ).encode()


class Stats:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.errors = 0
        self.statuses: dict[str, int] = {}
        self.error_samples: list[str] = []
        self.items_created = 0
        self.items_failed = 0

    def error(self, what: str) -> None:
        self.errors += 1
        if len(self.error_samples) < 5:
            self.error_samples.append(what[:300])


def percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, round(q / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[index]


async def run_timed(job: dict) -> dict:
    """post/get: every worker loops until warmup+duration; only the measured window counts."""
    host, port, kind = job["host"], job["port"], job["kind"]
    hostport = f"{host}:{port}"
    token = job.get("token")
    concurrency = job["concurrency"]
    stats = Stats()
    start = time.perf_counter()
    measure_from = start + job["warmup"]
    stop_at = measure_from + job["duration"]
    rng = random.Random(job.get("seed", 1))
    ref_prefix = job.get("ref_prefix", "bench")
    get_prefix, get_count = job.get("get_refs") or ("", 0)

    def next_request(worker: int, seq: int) -> bytes:
        if kind == "post":
            n = worker * 10_000_000 + seq
            return build_request("POST", job["path"], hostport, token,
                                 transaction_json(f"{ref_prefix}-{worker}-{seq}", n))
        if kind == "context":
            account = f"{get_prefix}{rng.randrange(get_count)}"
            return build_request("GET", f"{job['path']}{account}/context", hostport, token, None)
        ref = f"{get_prefix}{rng.randint(1, get_count):06d}"
        return build_request("GET", job["path"] + ref, hostport, token, None)

    async def worker(index: int) -> None:
        conn = Connection(host, port, keep_body=False)
        seq = 0
        try:
            while True:
                raw = next_request(index, seq)
                seq += 1
                began = time.perf_counter()
                if began >= stop_at:
                    return
                try:
                    response = await conn.request(raw)
                except (OSError, ConnectionError, httptools.HttpParserError) as exc:
                    conn.close()
                    if began >= measure_from:
                        stats.error(f"{type(exc).__name__}: {exc}")
                    await asyncio.sleep(0.01)
                    continue
                ended = time.perf_counter()
                if began < measure_from or ended > stop_at:
                    continue
                stats.statuses[str(response.status)] = stats.statuses.get(str(response.status), 0) + 1
                if 200 <= response.status < 300:
                    stats.latencies.append(ended - began)
                else:
                    stats.error(f"HTTP {response.status}")
        finally:
            conn.close()

    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return summarize(stats, job["duration"], job)


async def run_counted(job: dict) -> dict:
    """batch: warmup_requests, then exactly `requests` requests spread over the workers."""
    host, port = job["host"], job["port"]
    hostport = f"{host}:{port}"
    token = job.get("token")
    size = job["batch_size"]
    ref_prefix = job.get("ref_prefix", "batch")
    stats = Stats()

    def body(request_no: int) -> bytes:
        items = b",".join(
            transaction_json(f"{ref_prefix}-{request_no}-{i}", request_no * size + i) for i in range(size)
        )
        return b'{"items":[' + items + b"]}"

    async def drain(total: int, first_no: int, record: bool) -> None:
        counter = iter(range(first_no, first_no + total))

        async def worker() -> None:
            conn = Connection(host, port, keep_body=True)
            try:
                for request_no in counter:
                    raw = build_request("POST", job["path"], hostport, token, body(request_no))
                    began = time.perf_counter()
                    try:
                        response = await conn.request(raw)
                    except (OSError, ConnectionError, httptools.HttpParserError) as exc:
                        conn.close()
                        if record:
                            stats.error(f"{type(exc).__name__}: {exc}")
                        continue
                    ended = time.perf_counter()
                    if not record:
                        continue
                    stats.statuses[str(response.status)] = stats.statuses.get(str(response.status), 0) + 1
                    if response.status != 200:
                        stats.error(f"HTTP {response.status}: {bytes(response.body[:200])!r}")
                        continue
                    stats.latencies.append(ended - began)
                    result = json.loads(response.body)
                    stats.items_created += result.get("created", 0)
                    stats.items_failed += result.get("failed", 0)
            finally:
                conn.close()

        await asyncio.gather(*(worker() for _ in range(job["concurrency"])))

    await drain(job.get("warmup_requests", 0), 1_000_000, record=False)
    began = time.perf_counter()
    await drain(job["requests"], 0, record=True)
    elapsed = time.perf_counter() - began
    return summarize(stats, elapsed, job)


def summarize(stats: Stats, elapsed: float, job: dict) -> dict:
    latencies = sorted(stats.latencies)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    ok = len(latencies)
    return {
        "requests": ok + stats.errors,
        "ok": ok,
        "errors": stats.errors,
        "statuses": stats.statuses,
        "error_samples": stats.error_samples,
        "elapsed_s": elapsed,
        "throughput": ok / elapsed if elapsed > 0 else 0.0,
        "p50_ms": (percentile(latencies, 50) or 0) * 1000,
        "p90_ms": (percentile(latencies, 90) or 0) * 1000,
        "p99_ms": (percentile(latencies, 99) or 0) * 1000,
        "max_ms": (latencies[-1] if latencies else 0) * 1000,
        "items_created": stats.items_created,
        "items_failed": stats.items_failed,
        "loadgen_cpu_s": usage.ru_utime + usage.ru_stime,
        "connections_opened": CONNECTIONS_OPENED,
    }


def main() -> int:
    # A terminal's Ctrl-C reaches the whole process group; the benchmark stops us itself
    # (and every run is bounded), so stay quiet instead of dying with a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    job = json.loads(sys.argv[1])
    if job["host"] not in LOOPBACK:
        print(json.dumps({"fatal": "the load generator only targets loopback addresses"}))
        return 2
    if uvloop is not None:
        uvloop.install()
    runner = run_counted if job["kind"] == "batch" else run_timed
    result = asyncio.run(runner(job))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
