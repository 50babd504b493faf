"""What the rule screens show, shaped for the templates: versions side by side, hits in plain words.

Pure functions of what the rules services return (no SQL, no request): the admin rule
page (app/web/admin_rules.py) and the case page's "Why flagged" panel (app/web/rules_case.py).
"""

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from urllib.parse import quote

from app.web.templating import money


@dataclass(frozen=True, slots=True)
class DiffRow:
    """One line pair of two versions: `kind` is same, changed, removed (left only) or added (right only)."""

    left: str | None
    right: str | None
    kind: str


def side_by_side(left: str, right: str) -> list[DiffRow]:
    """The two condition texts line by line, differing lines marked (difflib's line matching)."""
    a, b = left.splitlines() or [""], right.splitlines() or [""]
    rows: list[DiffRow] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if tag == "equal":
            rows.extend(DiffRow(x, y, "same") for x, y in zip(a[i1:i2], b[j1:j2], strict=True))
            continue
        olds, news = a[i1:i2], b[j1:j2]
        for k in range(max(len(olds), len(news))):
            old = olds[k] if k < len(olds) else None
            new = news[k] if k < len(news) else None
            rows.append(DiffRow(old, new, "changed" if old is not None and new is not None
                                else "removed" if old is not None else "added"))
    return rows


_COMPARISON = r"\s*(<=|>=|==|!=|<|>)\s*(-?\d[\d_]*(?:\.\d+)?|\"[^\"]*\"|'[^']*'|true|false)"
_MONEY_KEYS = re.compile(r"^(tx\.amount|account_sum\(.*\))$")


def _number_text(literal: str) -> str:
    try:
        number = Decimal(literal.replace("_", ""))
    except InvalidOperation:
        return literal
    return f"{number:,f}"


def _shown_value(key: str, value: object, currency: str | None) -> str:
    """Money as every screen shows it ("12,500.00 EUR"); without a known currency, at least grouped."""
    text = "" if value is None else str(value)
    if _MONEY_KEYS.match(key):
        if not currency:
            return _number_text(text)
        try:
            return money(Decimal(text), currency)
        except InvalidOperation:
            return text
    return text


def _short_key(key: str) -> str:
    # account_count("24h") reads better as account_count(24h) in a sentence.
    return re.sub(r'\("([^"]*)"\)', r"(\1)", key)


def read_values(values: Mapping[str, object], condition: str | None, currency: str | None) -> list[str]:
    """Each value a hit read, in words: `tx.amount 12,500.00 EUR > 10,000.00 EUR`, `account_count(24h) = 0`.

    Where the condition compares that value with a literal, the comparison is shown with it
    (the first such comparison in the condition's text).
    """
    phrases = []
    read_currency = str(values.get("tx.currency") or "").strip('"')  # stored as the CEL value read: '"USD"'
    currency = currency or (read_currency if re.fullmatch(r"[A-Z]{3}", read_currency) else None)
    for key, value in values.items():
        shown = _shown_value(key, value, currency)
        match = re.search(re.escape(key) + _COMPARISON, condition or "")
        if match and match.group(1) != "==":  # "x = 0" says all an equality would
            operator, literal = match.groups()
            if literal[0].isdigit() or literal[0] == "-":  # an amount's limit reads as money too
                literal = _shown_value(key, literal.replace("_", ""), currency)
                literal = literal if _MONEY_KEYS.match(key) else _number_text(literal)
            phrases.append(f"{_short_key(key)} {shown} {operator} {literal}")
        else:
            phrases.append(f"{_short_key(key)} = {shown}")
    return phrases


@dataclass(frozen=True, slots=True)
class HitLine:
    """One rule hit on a case, for the "Why flagged" panel."""

    rule_id: int | None
    name: str           # "Large first payment"
    title: str          # "Large first payment (v2)"
    reason: str
    risk: int | None
    mode: str | None
    values: list[str]   # read_values' phrases

    @property
    def sentence(self) -> str:
        return f"{self.title}: {'; '.join(self.values)}" if self.values else self.title


def _field(item: object, name: str, default: object = None) -> object:
    if isinstance(item, Mapping):
        return item.get(name, default)
    return getattr(item, name, default)


def hit_lines(explanations: Iterable[object], currency: str | None,
              conditions: Mapping[tuple[int, int], str] | None = None) -> list[HitLine]:
    """The case's explanations (dicts or objects with rule_id, rule_name, version, risk, reason, values)."""
    lines = []
    for item in explanations:
        rule_id, version = _field(item, "rule_id"), _field(item, "version")
        condition = (conditions or {}).get((rule_id, version)) if isinstance(rule_id, int) and isinstance(
            version, int) else None
        values = _field(item, "values") or {}
        name = str(_field(item, "rule_name", "") or f"Rule {rule_id}")
        risk = _field(item, "risk")
        mode = _field(item, "mode")
        lines.append(HitLine(
            rule_id=rule_id if isinstance(rule_id, int) else None, name=name,
            title=f"{name} (v{version})" if version is not None else name,
            reason=str(_field(item, "reason", "") or ""),
            risk=risk if isinstance(risk, int) else None,
            mode=str(mode) if mode else None,
            values=read_values(values if isinstance(values, Mapping) else {}, condition, currency),
        ))
    return lines


def transaction_href(reference: str) -> str:
    """Where a hit's transaction is shown: the rules' transaction page (its facts and cases)."""
    return f"/admin/rules/transactions/{quote(reference, safe='')}"


def uses(windows: Iterable[object], lists: Iterable[str]) -> str:
    """"Uses windows 1h, 24h and list blocked_counterparties." for the editor's check."""
    window_names = sorted((duration_text(w) for w in windows), key=_duration_sort_key)
    parts = []
    if window_names:
        parts.append(("window " if len(window_names) == 1 else "windows ") + ", ".join(window_names))
    names = sorted(lists)
    if names:
        parts.append(("list " if len(names) == 1 else "lists ") + ", ".join(names))
    return f"Uses {' and '.join(parts)}." if parts else "Reads only the transaction (no windows, no lists)."


def duration_text(window: object) -> str:
    """A timedelta as the CEL duration a rule would write: 3600 s → "1h", 90 s → "90s"."""
    total = getattr(window, "total_seconds", None)
    if total is None:
        return str(window)
    seconds = int(total())
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"


def _duration_sort_key(text: str) -> int:
    number, unit = int(text[:-1] or 0), text[-1]
    return number * {"h": 3600, "m": 60, "s": 1}.get(unit, 1)
