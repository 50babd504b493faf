"""Review settings: admin-editable values with defaults, read once per unit of work."""

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.settings.models import Setting

DEFAULTS = {
    "flag_threshold": 70,
    "dual_control_threshold": "10000",
    "claim_lease_minutes": 15,
}


@dataclass(frozen=True)
class ReviewSettings:
    flag_threshold: int
    dual_control_threshold: Decimal
    claim_lease_minutes: int


def get_review_settings(*, session: Session) -> ReviewSettings:
    """The current review settings, defaults filled in."""
    stored = {key: value for key, value in session.execute(select(Setting.key, Setting.value))}
    values = {**DEFAULTS, **{k: v for k, v in stored.items() if k in DEFAULTS}}
    return ReviewSettings(
        flag_threshold=int(values["flag_threshold"]),
        dual_control_threshold=Decimal(str(values["dual_control_threshold"])),
        claim_lease_minutes=int(values["claim_lease_minutes"]),
    )
