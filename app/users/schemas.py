from datetime import datetime

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator

from app.security.passwords import check_password_strength
from app.users.enums import Role
from app.users.service import validate_username


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"username": "dana", "role": "analyst", "password": "a-long-unique-passphrase"}]})

    # username first: the password check reads it (a password may not contain it).
    username: str
    role: Role
    password: str

    @field_validator("username")
    @classmethod
    def _username(cls, value: str) -> str:
        return validate_username(value)

    @field_validator("password")
    @classmethod
    def _strong(cls, value: str, info: ValidationInfo) -> str:
        check_password_strength(value, username=info.data.get("username"))
        return value


class RoleChange(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"role": "admin"}]})

    role: Role


class PasswordReset(BaseModel):
    """A new password; the service checks it against the user's name too."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"password": "another-long-passphrase"}]})

    password: str

    @field_validator("password")
    @classmethod
    def _strong(cls, value: str) -> str:
        check_password_strength(value)
        return value


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    role: str
    is_active: bool
    token_version: int
    created_at: datetime
    updated_at: datetime


class UserList(BaseModel):
    items: list[UserOut]
