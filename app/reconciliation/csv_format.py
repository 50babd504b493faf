"""The bank statement CSV: a header naming the columns, then one bank event per line.

Columns (any order, names exact): bank_reference, reference, amount, currency, status,
booked_at. Values follow the JSON API's rules (docs/reconciliation.md). Fields never
contain line breaks, so a line is a row and line numbers are exact; each line is parsed
on its own, so one malformed line is reported and the rest of the file goes on. Lines may
end in LF, CRLF or a lone CR (old Mac exports): an upload is stored with LF endings.
"""

import csv
import re
from dataclasses import dataclass

from pydantic import ValidationError

from app.errors import field_errors
from app.reconciliation.matching import Numbered
from app.reconciliation.schemas import BankEventIn

COLUMNS = ("bank_reference", "reference", "amount", "currency", "status", "booked_at")
MAX_LINE_BYTES = 4096


class BadFile(ValueError):
    """The file as a whole cannot be read (no header, wrong columns, not UTF-8)."""


@dataclass(frozen=True)
class RowError:
    line: int
    field: str | None
    message: str


# What a stored file name may not hold: control characters (NUL breaks PostgreSQL text and
# JSON audit records), lone surrogates, and the path a browser may send before the name.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
MAX_FILENAME = 255


def normalize_line_endings(content: bytes) -> bytes:
    """`content` with CRLF and lone CR line breaks as LF (a CR is never inside a field)."""
    if b"\r" not in content:
        return content
    return content.replace(b"\r\n", b"\n").replace(b"\r", b"\n")


def display_filename(filename: str | None) -> str | None:
    """The upload's file name as stored and shown: last path part, no control characters, ≤ 255."""
    if not filename:
        return None
    name = _UNPRINTABLE.sub("", filename.replace("\\", "/").rsplit("/", 1)[-1]).strip()
    return name[:MAX_FILENAME] or None


def read_header(content: bytes) -> tuple[list[str], int]:
    """The column order and the byte offset of the first data line; BadFile if the header is wrong."""
    if content.startswith(b"\xef\xbb\xbf"):
        content = content[3:]
        skip = 3
    else:
        skip = 0
    end = content.find(b"\n")
    raw = content if end < 0 else content[:end]
    try:
        header = next(csv.reader([raw.decode("utf-8").rstrip("\r")]), [])
    except UnicodeDecodeError:
        raise BadFile("the file is not UTF-8 text") from None
    except csv.Error:
        raise BadFile("line 1 must be the header " + ",".join(COLUMNS) + " (one line, plain CSV)") from None
    names = [name.strip() for name in header]
    missing = [c for c in COLUMNS if c not in names]
    unknown = [n for n in names if n not in COLUMNS]
    if missing or unknown or len(set(names)) != len(names):
        raise BadFile(
            "line 1 must be the header " + ",".join(COLUMNS)
            + (f"; missing: {', '.join(missing)}" if missing else "")
            + (f"; unknown: {', '.join(unknown)}" if unknown else "")
        )
    return names, skip + (len(content) if end < 0 else end + 1)


def count_rows(content: bytes, offset: int) -> int:
    """Data lines after the header (blank lines do not count)."""
    body = content[offset:]
    return sum(1 for line in body.split(b"\n") if line.strip())


def parse_lines(columns: list[str], lines: list[tuple[int, bytes]]) -> tuple[list[Numbered], list[RowError]]:
    """Valid events (with their line numbers) and one error per malformed line."""
    events: list[Numbered] = []
    errors: list[RowError] = []
    for line_no, raw in lines:
        if len(raw) > MAX_LINE_BYTES:
            errors.append(RowError(line_no, None, f"line longer than {MAX_LINE_BYTES} bytes"))
            continue
        try:
            text = raw.decode("utf-8").rstrip("\r")
            values = next(csv.reader([text], strict=True))
        except (UnicodeDecodeError, csv.Error) as exc:
            message = "not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else f"not valid CSV ({exc})"
            errors.append(RowError(line_no, None, message))
            continue
        if len(values) != len(columns):
            errors.append(RowError(line_no, None, f"expected {len(columns)} fields, found {len(values)}"))
            continue
        try:
            events.append(Numbered(line_no, BankEventIn.model_validate(dict(zip(columns, values)))))
        except ValidationError as exc:
            first = field_errors(exc.errors(include_input=False))[0]
            errors.append(RowError(line_no, first["field"], first["msg"][:400]))
    return events, errors


def format_rows(rows: list[dict[str, str]]) -> bytes:
    """A bank statement CSV (header and rows) in the layout above, e.g. for samples and exports."""
    lines = [",".join(COLUMNS)] + [",".join(str(row[c]) for c in COLUMNS) for row in rows]
    return ("\n".join(lines) + "\n").encode()
