"""The CSV upload screen: chunked processing with progress in the database, malformed lines, size limits."""

import re

from app.reconciliation import service
from tests.reconciliation.conftest import count, form_csrf, meta_csrf
from tests.reconciliation.statements import BOOKED_AT, load_ledger, statement

HEADER = "bank_reference,reference,amount,currency,status,booked_at"


def upload(client, content: bytes, filename: str = "statement.csv"):
    token = form_csrf(client.get("/reconciliation").text)
    return client.post("/reconciliation/upload", data={"csrf_token": token},
                       files={"file": (filename, content, "text/csv")}, follow_redirects=False)


def run_to_completion(client, run_id: int, max_requests: int = 200) -> int:
    """Drive the run like the page does (HTMX posts to /advance); returns how many requests it took."""
    token = meta_csrf(client.get(f"/reconciliation/runs/{run_id}").text)
    for request_no in range(1, max_requests + 1):
        response = client.post(f"/reconciliation/runs/{run_id}/advance",
                               headers={"X-CSRF-Token": token, "HX-Request": "true"})
        assert response.status_code == 200, response.text
        if response.headers.get("HX-Redirect"):
            return request_no
        assert "rows processed" in response.text
    raise AssertionError("run did not finish")


def run_id_of(response) -> int:
    assert response.status_code == 303, response.text
    return int(re.search(r"/reconciliation/runs/(\d+)$", response.headers["location"]).group(1))


def test_upload_reports_malformed_lines_and_goes_on(client, sign_in, db):
    load_ledger(db, 3)
    sign_in("analyst")
    content = "\n".join([
        HEADER,
        f"BNK-0,stmt-0,10.00,USD,booked,{BOOKED_AT}",
        f"BNK-1,stmt-1,10.001,USD,booked,{BOOKED_AT}",     # line 3: too many decimals
        "BNK-2,stmt-2,10.00,USD",                           # line 4: missing fields
        "",                                                  # line 5: blank, skipped
        f"BNK-3,stmt-2,10.00,XYZ,booked,{BOOKED_AT}",      # line 6: unknown currency
        f'"BNK-4,stmt-2,10.00,USD,booked,{BOOKED_AT}',     # line 7: unclosed quote
        f"BNK-5,nowhere,10.00,USD,booked,{BOOKED_AT}",     # line 8: missing in ledger
        f"BNK-6,stmt-2,12.00,USD,booked,{BOOKED_AT}",      # line 9: amount mismatch
    ]).encode()
    run_id = run_id_of(upload(client, content))
    page = client.get(f"/reconciliation/runs/{run_id}")
    assert "rows processed" in page.text and 'hx-trigger="load"' in page.text
    run_to_completion(client, run_id)
    run = service.get_run(session=db, run_id=run_id)
    assert (run.status, run.total_rows, run.rows_processed, run.matched, run.mismatched, run.malformed) == (
        "completed", 7, 7, 1, 2, 4)
    errors = [(e.line_no, e.field) for e in service.row_errors(session=db, run_id=run_id)]
    assert errors == [(3, "amount"), (4, None), (6, "currency"), (7, None)]
    summary = client.get(f"/reconciliation/runs/{run_id}").text
    assert "missing in ledger" in summary and "amount mismatch" in summary
    case_ids = [m.case_id for m in service.mismatches(session=db, run_id=run_id)]
    assert all(f'href="/cases/{case_id}"' in summary for case_id in case_ids)
    assert "10.001" not in summary or "decimal" in summary
    assert count(db, "reconciliation_uploads") == 0  # the file is dropped once processed
    assert f"#{run_id}" in client.get("/reconciliation").text  # listed with past runs


def test_a_file_over_several_chunks_keeps_exact_line_numbers(client, sign_in, db):
    rows = 12_000  # ~0.8 MB: several 256 KiB chunks
    load_ledger(db, rows)
    sign_in("admin")
    content = statement(rows, amount_mismatch_every=1000)
    lines = content.split(b"\n")
    lines[7000] = b"broken line"  # line 7001 of the file
    requests = run_to_completion(client, run_id_of(upload(client, b"\n".join(lines))))
    assert requests >= 3
    run = service.list_runs(session=db)[0]
    assert (run.total_rows, run.rows_processed, run.malformed) == (rows, rows, 1)
    assert run.matched + run.mismatched == rows - 1 and run.mismatched == 12
    assert [(e.line_no, e.message) for e in service.row_errors(session=db, run_id=run.id)] == [
        (7001, "expected 6 fields, found 1")]


def test_a_bad_header_is_refused_and_nothing_is_stored(client, sign_in, db):
    sign_in("analyst")
    response = upload(client, b"ref,amount\nx,1\n")
    assert response.status_code == 422
    assert "file: line 1 must be the header" in response.text
    assert count(db, "reconciliation_runs") == 0
    assert upload(client, (HEADER + "\n").encode()).status_code == 422


def test_the_upload_route_alone_accepts_bodies_over_1_mib(client, sign_in, db, agent_headers):
    sign_in("analyst")
    big = statement(20_000, prefix="big")  # ~1.5 MB
    assert len(big) > 1024 * 1024
    assert upload(client, big).status_code == 303
    elsewhere = client.post("/reconciliation/bank-events", content=b" " * (len(big)),
                            headers={**agent_headers, "content-type": "application/json"})
    assert elsewhere.status_code == 413
    too_big = client.post("/reconciliation/upload", content=b"x" * (33 * 1024 * 1024),
                          headers={"content-type": "multipart/form-data; boundary=x"})
    assert too_big.status_code == 413


def test_agents_cannot_use_the_upload_screen(client, sign_in):
    sign_in("agent")
    assert client.get("/reconciliation").status_code == 403


def test_two_instances_never_process_the_same_chunk(db, users):
    """The upload row is claimed with SKIP LOCKED: a second request finds it busy instead of re-processing."""
    from app.audit.service import Actor
    from app.db import database

    load_ledger(db, 5000)
    admin = users.create("admin")
    actor = Actor(name=admin.username, id=admin.id, role="admin")
    run_id = service.start_upload(session=db, actor=actor, filename="s.csv", content=statement(5000))
    db.commit()
    first, second = database.session(), database.session()
    try:
        assert service.process_next_chunk(session=first, actor=actor, run_id=run_id) is True
        assert service.process_next_chunk(session=second, actor=actor, run_id=run_id) is False
        first.commit()
        second.rollback()
        while service.get_run(session=second, run_id=run_id).status == "processing":
            assert service.process_next_chunk(session=second, actor=actor, run_id=run_id) is True
            second.commit()
        run = service.get_run(session=second, run_id=run_id)
        assert (run.rows_processed, run.matched) == (5000, 5000)
        assert count(db, "bank_events") == 5000
    finally:
        first.close()
        second.close()
