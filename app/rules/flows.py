"""Rules across domains: what a hit does to cases and transactions, in the request's unit of work."""

from collections.abc import Mapping, Sequence
from typing import Any

from app.audit.service import Actor
from app.cases import opening
from app.rules import evaluation, running
from app.rules.evaluation import Flag, Hit
from app.uow.unit import AnySession


def after_create(session: AnySession, rows: Sequence[Mapping[str, Any]], actors: Mapping[int, Actor]) -> dict[int, int]:
    """Run the rules on transactions just inserted (rows carry `rules_generation` from RETURNING):
    record the hits, open a case for each transaction an active rule flags; transaction id → case id."""
    if not rows:
        return {}
    ruleset = running.for_generation(session, rows[0].get("rules_generation"))
    hits = evaluation.on_created(session, ruleset, rows)
    if not hits:
        return {}
    flags = evaluation.flags_of(hits)
    by_id = {row["id"]: row for row in rows}
    opened = opening.open_for_new_transactions(session=session, cases=[
        opening.NewTransactionCase(transaction_id=tx_id, reference=by_id[tx_id]["reference"],
                                   account_id=by_id[tx_id]["account_id"],
                                   amount=by_id[tx_id]["amount"], currency=by_id[tx_id]["currency"],
                                   actor=actors[tx_id], risk=flag.risk, reason=flag.reason)
        for tx_id, flag in flags.items()
    ])
    _name_cases(flags, opened)
    evaluation.store(session, hits)
    return opened


def on_score(session: AnySession, tx: Mapping[str, Any], score: Mapping[str, Any]) -> tuple[Flag | None, list[Hit]]:
    """The hits of the rules that read a posted score, and what they ask of the case (None: nothing).
    The caller opens or joins the case, then calls `store`."""
    ruleset = running.for_generation(session, None)
    hits = evaluation.on_scored(session, ruleset, tx, score)
    return evaluation.flags_of(hits).get(tx["id"]), hits


def store(session: AnySession, hits: list[Hit], case_id: int | None) -> None:
    """Record the hits, the flagging ones naming the case they opened or joined."""
    for hit in hits:
        if hit.flags:
            hit.case_id = case_id
    evaluation.store(session, hits)


def _name_cases(flags: dict[int, Flag], opened: dict[int, int]) -> None:
    for tx_id, flag in flags.items():
        for hit in flag.hits:
            hit.case_id = opened.get(tx_id)
