"""The user vocabulary: roles."""

from enum import StrEnum


class Role(StrEnum):
    """What a user may do (SPEC.md, Roles): agents are service accounts for software."""

    ADMIN = "admin"
    ANALYST = "analyst"
    AGENT = "agent"
