"""The CSV upload screen: chunked processing with progress in the database, malformed lines, size limits."""

import re

from sqlalchemy import text

from app.reconciliation import service
from tests.reconciliation.conftest import count, form_csrf, meta_csrf
from tests.reconciliation.statements import BOOKED_AT, load_ledger, statement

HEADER = "bank_reference,reference,amount,currency,status,booked_at"


def upload(client, content: bytes, filename: str = "statement.csv"):
    token = form_csrf(client.get("/reconciliation").text)
    return client.post("/reconciliation/upload", data={"csrf_token": token},
                       files={"file": (filename, content, "text/csv")}, follow_redirects=False)


def raw_upload(client, content: bytes, raw_filename: bytes):
    """An upload whose multipart header carries the file name byte for byte (httpx would escape it)."""
    token = form_csrf(client.get("/reconciliation").text)
    body = (b"--B\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n" + token.encode()
            + b"\r\n--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"" + raw_filename
            + b"\"\r\nContent-Type: text/csv\r\n\r\n" + content + b"\r\n--B--\r\n")
    return client.post("/reconciliation/upload", content=body, follow_redirects=False,
                       headers={"content-type": "multipart/form-data; boundary=B"})


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
    found = re.search(r"/reconciliation/runs/(\d+)$", response.headers["location"])
    assert found is not None, response.headers["location"]
    return int(found.group(1))


def test_upload_reports_malformed_lines_and_goes_on(client, sign_in, db):
    load_ledger(db, 3)
    sign_in("admin")
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
    sign_in("admin")
    response = upload(client, b"ref,amount\nx,1\n")
    assert response.status_code == 422
    assert "file: line 1 must be the header" in response.text
    assert count(db, "reconciliation_runs") == 0
    assert upload(client, (HEADER + "\n").encode()).status_code == 422


def test_the_upload_route_alone_accepts_bodies_over_1_mib(client, sign_in, db, agent_headers):
    sign_in("admin")
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


def test_analysts_read_runs_but_get_no_upload_form(client, sign_in, db, users):
    run_id = started_run(db, users)
    sign_in("analyst")
    page = client.get("/reconciliation")
    assert page.status_code == 200 and f"#{run_id}" in page.text
    assert 'action="/reconciliation/upload"' not in page.text and "uploaded by an admin" in page.text
    run_page = client.get(f"/reconciliation/runs/{run_id}")
    assert run_page.status_code == 200 and "rows processed" in run_page.text
    assert "/advance" not in run_page.text  # an analyst's open page does not drive the run


def test_an_analysts_upload_is_refused_403_and_stores_nothing(client, sign_in, db):
    load_ledger(db, 1)
    sign_in("analyst")
    token = meta_csrf(client.get("/reconciliation").text)
    response = client.post("/reconciliation/upload", data={"csrf_token": token},
                           files={"file": ("s.csv", statement(1), "text/csv")}, follow_redirects=False)
    assert response.status_code == 403
    assert count(db, "reconciliation_runs") == 0 and count(db, "reconciliation_uploads") == 0


def test_an_analyst_cannot_drive_a_run_either(client, sign_in, db, users):
    run_id = started_run(db, users)
    sign_in("analyst")
    token = meta_csrf(client.get("/reconciliation").text)
    response = client.post(f"/reconciliation/runs/{run_id}/advance",
                           headers={"X-CSRF-Token": token, "HX-Request": "true"})
    assert response.status_code == 403
    assert count(db, "bank_events") == 0
    assert service.get_run(session=db, run_id=run_id).rows_processed == 0


def started_run(db, users) -> int:
    from app.audit.service import Actor

    load_ledger(db, 2)
    admin = users.create("admin")
    run_id = service.start_upload(session=db, actor=Actor(name=admin.username, id=admin.id, role="admin"),
                                  filename="s.csv", content=statement(2))
    db.commit()
    return run_id


def test_a_statement_with_old_mac_cr_line_endings_is_read_line_by_line(client, sign_in, db):
    load_ledger(db, 3)
    sign_in("admin")
    content = statement(3).replace(b"\n", b"\r")
    lines = content.split(b"\r")
    lines[2] = b"broken line"  # line 3
    run_id = run_id_of(upload(client, b"\r".join(lines)))
    run_to_completion(client, run_id)
    run = service.get_run(session=db, run_id=run_id)
    assert (run.status, run.total_rows, run.matched, run.malformed) == ("completed", 3, 2, 1)
    assert [(e.line_no, e.message) for e in service.row_errors(session=db, run_id=run_id)] == [
        (3, "expected 6 fields, found 1")]


def test_crlf_and_mixed_line_endings_keep_line_numbers(client, sign_in, db):
    load_ledger(db, 4)
    sign_in("admin")
    header, *rows = statement(4).rstrip(b"\n").split(b"\n")
    content = header + b"\r\n" + rows[0] + b"\r" + rows[1] + b"\n" + b"oops" + b"\r\n" + rows[2] + b"\r" + rows[3]
    run_id = run_id_of(upload(client, content))
    run_to_completion(client, run_id)
    run = service.get_run(session=db, run_id=run_id)
    assert (run.total_rows, run.matched, run.malformed) == (5, 4, 1)
    assert [e.line_no for e in service.row_errors(session=db, run_id=run_id)] == [4]


def test_a_header_that_is_not_one_plain_csv_line_is_a_422_not_a_500(client, sign_in, db):
    sign_in("admin")
    for content in (b'"bank_reference\x00,reference\n', b"\x00\x00\x00", b'"unclosed,\nx'):
        response = upload(client, content)
        assert response.status_code == 422, (content, response.text)
        assert "file: " in response.text
    assert count(db, "reconciliation_runs") == 0


def test_an_upload_file_name_with_nul_or_control_characters_is_stored_cleaned(client, sign_in, db):
    load_ledger(db, 1)
    sign_in("admin")
    run_id = run_id_of(raw_upload(client, statement(1), "bank\x00\x01 statement\u0085.csv".encode()))
    run = service.get_run(session=db, run_id=run_id)
    assert run.filename == "bank statement.csv"
    assert "bank statement.csv" in client.get("/reconciliation").text
    db.expire_all()
    after = db.execute(text("SELECT after FROM audit_events WHERE action = 'reconciliation.run_started'")).scalar_one()
    assert after["filename"] == "bank statement.csv"


def test_an_upload_file_name_that_is_only_control_characters_or_a_path_is_handled(client, sign_in, db):
    load_ledger(db, 1)
    sign_in("admin")
    nameless = service.get_run(session=db, run_id=run_id_of(raw_upload(client, statement(1), b"\x00\x00")))
    assert nameless.filename is None
    pathed = service.get_run(session=db, run_id=run_id_of(upload(
        client, statement(1, prefix="p"), filename="C:\\Users\\me\\" + "x" * 300 + ".csv")))
    assert pathed.filename == ("x" * 300)[:255]


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
