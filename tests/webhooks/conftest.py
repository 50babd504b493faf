"""A real HTTP receiver on 127.0.0.1 (http.server in a thread) and webhook helpers."""

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import text

from tests.cases.conftest import desk  # noqa: F401


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    url: str
    fail_first: int = 0  # answer 500 to this many requests before succeeding
    delay: float = 0.0  # seconds each request takes, so concurrent workers overlap
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, headers: dict[str, str], body: bytes) -> int:
        with self.lock:
            self.requests.append(Received(headers, body))
            return 500 if len(self.requests) <= self.fail_first else 200


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            time.sleep(state["receiver"].delay)
            status = state["receiver"].handle({k.lower(): v for k, v in self.headers.items()}, body)
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state["receiver"] = Receiver(url=f"http://127.0.0.1:{server.server_address[1]}/hook")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state["receiver"]
    server.shutdown()
    server.server_close()


def register(client, admin_headers, url: str, event_types=("transaction.settled",)) -> dict:
    response = client.post("/api/webhooks/endpoints", json={"url": url, "event_types": list(event_types)},
                           headers=admin_headers)
    assert response.status_code == 201, response.text
    return response.json()


def rows(db, sql: str, **params) -> list:
    db.commit()
    return db.execute(text(sql), params).all()
