"""The rules vocabulary: a rule's mode, a hit's outcome and the events rules are evaluated on."""

from enum import StrEnum


class RuleMode(StrEnum):
    """How a rule runs: draft (not evaluated), shadow (hits recorded, no case), active (hits open cases), disabled."""

    DRAFT = "draft"
    SHADOW = "shadow"
    ACTIVE = "active"
    DISABLED = "disabled"


# The modes a published version runs in (what `POST /api/rules/{id}/publish` takes).
RUNNING_MODES = (RuleMode.SHADOW, RuleMode.ACTIVE)


class HitOutcome(StrEnum):
    """What one evaluation recorded: the condition matched, or it failed at run time."""

    HIT = "hit"
    ERROR = "error"


class RuleEvent(StrEnum):
    """When rules are evaluated (the condition's `event` variable)."""

    TRANSACTION_CREATED = "transaction.created"
    RISK_SCORE_POSTED = "risk_score.posted"
