"""The case operations the case screen (app/web/cases.py) calls by their old names.

The cases domain lives in queries.py (reading), opening.py, queue.py, claims.py and
decisions.py; new callers import those. This module goes once the screen does.
"""


from app.audit.service import Actor
from app.cases import decisions
from app.cases.claims import claim, release
from app.cases.messages import decision_message
from app.cases.schemas import CaseOut, DecisionRequest
from app.uow.unit import OrmSession

__all__ = ["claim", "decide", "release"]


def decide(*, session: OrmSession, actor: Actor, case_id: int, data: DecisionRequest) -> tuple[CaseOut, str]:
    """Record a decision; returns the case and a message saying what happened."""
    outcome = decisions.decide(session=session, actor=actor, case_id=case_id, data=data)
    return outcome.case, decision_message(outcome)
