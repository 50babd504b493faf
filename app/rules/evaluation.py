"""Running the rules on live traffic, inside the request's own unit of work.

`on_created` runs when transactions are inserted (one POST, a commit group, a batch) and
`on_scored` when a score is posted. Both evaluate every running rule of the request's
generation, record each match or run-time failure as a hit (with the values the condition
read), and leave the case work to the caller's cases module: an active, unsnoozed match
flags the transaction. Hits, cases and audit events commit together with the request.
Queries per request: none when no rule runs; otherwise one for the windows (if any rule
uses one), one for snoozes (only when an active rule matched), one to store the hits.
"""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import text

from app import money
from app.rules import windows
from app.rules.cel_values import EvalError
from app.rules.enums import HitOutcome, RuleEvent
from app.rules.language import Env, Run
from app.rules.running import RuleSet, RunningRule
from app.uow.unit import AnySession

_INSERT_HITS = text(
    "INSERT INTO rule_hits (rule_id, version, mode, transaction_id, account_id, event, outcome, values, error, "
    "risk, reason, case_id, snoozed) SELECT rule_id, version, mode, transaction_id, account_id, event, outcome, "
    "values, error, risk, reason, case_id, snoozed FROM json_to_recordset(CAST(:hits AS json)) AS h(rule_id bigint, "
    "version int, mode text, transaction_id bigint, account_id text, event text, outcome text, values jsonb, "
    "error text, risk smallint, reason text, case_id bigint, snoozed boolean)"
)
_SNOOZED = text(
    "SELECT DISTINCT s.rule_id, s.account_id FROM rule_snoozes s "
    "JOIN json_to_recordset(CAST(:pairs AS json)) AS p(rule_id bigint, account_id text) "
    "ON s.rule_id = p.rule_id AND s.account_id = p.account_id WHERE s.until > now()"
)


@dataclass
class Hit:
    rule: RunningRule
    transaction_id: int
    account_id: str
    event: RuleEvent
    values: dict[str, str]
    error: str | None = None
    snoozed: bool = False
    case_id: int | None = None

    @property
    def flags(self) -> bool:
        """An active rule's match that is not snoozed: it opens (or joins) a case."""
        return self.error is None and self.rule.active and not self.snoozed

    def row(self) -> dict[str, Any]:
        return {"rule_id": self.rule.rule_id, "version": self.rule.version, "mode": self.rule.mode.value,
                "transaction_id": self.transaction_id, "account_id": self.account_id, "event": self.event.value,
                "outcome": (HitOutcome.ERROR if self.error else HitOutcome.HIT).value, "values": self.values,
                "error": self.error, "risk": self.rule.risk, "reason": self.rule.reason, "case_id": self.case_id,
                "snoozed": self.snoozed}


@dataclass
class Flag:
    """What a transaction's flagging hits ask of its case: the highest risk and every rule's reason."""

    risk: int = 0
    reasons: list[str] = field(default_factory=list)
    hits: list[Hit] = field(default_factory=list)

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)[:500]


def tx_view(tx: Mapping[str, Any]) -> dict[str, Any]:
    """A transaction as a condition sees it: the amount in its currency's minor units, exact."""
    return {
        "reference": tx["reference"], "account_id": tx["account_id"],
        "amount": Decimal(money.format_amount(tx["amount"], tx["currency"])), "currency": tx["currency"],
        "counterparty": tx["counterparty"], "description": tx["description"],
        # `metadata_` first: inserted rows carry that key, and a row mapping's miss costs a KeyError
        "metadata": tx.get("metadata_") or tx.get("metadata") or {}, "created_at": tx["created_at"],
    }


def _evaluate(rules: Sequence[RunningRule], ruleset: RuleSet, event: RuleEvent, tx: dict[str, Any], tx_id: int,
              score: Mapping[str, Any], stats: windows.Stats) -> list[Hit]:
    currency = tx["currency"]
    mine = stats.get(tx_id, {})

    def account_count(window: timedelta) -> int:
        return mine[window][0]

    def account_sum(window: timedelta) -> Decimal:
        total = mine[window][1]
        if total is None:  # cannot happen: the rules that read a sum asked for it
            raise EvalError("account_sum of a window that was not computed")
        return Decimal(money.format_amount(total, currency))

    def in_list(name: str, value: str) -> bool:
        return value in ruleset.lists.get(name, ())

    run = Run(Env(event=event.value, tx=tx, score=score, account_count=account_count, account_sum=account_sum,
                  in_list=in_list))
    hits = []
    for rule in rules:
        outcome = rule.program.evaluate_in(run)
        if outcome.matched or outcome.error:
            hits.append(Hit(rule=rule, transaction_id=tx_id, account_id=tx["account_id"], event=event,
                            values=outcome.values, error=outcome.error))
    return hits


def _mark_snoozed(session: AnySession, hits: list[Hit]) -> None:
    candidates = [hit for hit in hits if hit.flags]
    if not candidates:
        return
    pairs = sorted({(hit.rule.rule_id, hit.account_id) for hit in candidates})
    snoozed = {(row.rule_id, row.account_id) for row in session.execute(
        _SNOOZED, {"pairs": json.dumps([{"rule_id": r, "account_id": a} for r, a in pairs])})}
    for hit in candidates:
        hit.snoozed = (hit.rule.rule_id, hit.account_id) in snoozed


def flags_of(hits: list[Hit]) -> dict[int, Flag]:
    """Per transaction id, the case its flagging hits ask for."""
    flags: dict[int, Flag] = {}
    for hit in hits:
        if hit.flags:
            flag = flags.setdefault(hit.transaction_id, Flag())
            flag.risk = max(flag.risk, hit.rule.risk)
            flag.reasons.append(f"rule {hit.rule.name} (v{hit.rule.version}): {hit.rule.reason}")
            flag.hits.append(hit)
    return flags


def store(session: AnySession, hits: list[Hit]) -> None:
    """Write the hits (after their cases were opened: a flagging hit names its case)."""
    if hits:
        session.execute(_INSERT_HITS, {"hits": json.dumps([hit.row() for hit in hits], default=str)})


def on_created(session: AnySession, ruleset: RuleSet, rows: Sequence[Mapping[str, Any]]) -> list[Hit]:
    """Evaluate the rules on newly inserted transactions (rows as RETURNING gave them)."""
    rules = ruleset.on_create
    if not rules or not rows:
        return []
    stats = windows.compute(session, (windows.Probe(row["id"], row["account_id"], row["currency"],
                                                    row["created_at"]) for row in rows),
                            ruleset.windows(rules), ruleset.sum_windows(rules))
    hits: list[Hit] = []
    for row in rows:
        hits.extend(_evaluate(rules, ruleset, RuleEvent.TRANSACTION_CREATED, tx_view(row), row["id"], {}, stats))
    _mark_snoozed(session, hits)
    return hits


def on_scored(session: AnySession, ruleset: RuleSet, tx: Mapping[str, Any], score: Mapping[str, Any]) -> list[Hit]:
    """Evaluate the rules that read `score` or `event` on one transaction's new score."""
    rules = ruleset.on_score
    if not rules:
        return []
    probe = windows.Probe(tx["id"], tx["account_id"], tx["currency"], tx["created_at"])
    stats = windows.compute(session, [probe], ruleset.windows(rules), ruleset.sum_windows(rules))
    hits = _evaluate(rules, ruleset, RuleEvent.RISK_SCORE_POSTED, tx_view(tx), tx["id"], score, stats)
    _mark_snoozed(session, hits)
    return hits
