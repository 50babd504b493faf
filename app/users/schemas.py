from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator

from app.security.passwords import check_password_strength
from app.users.service import validate_username

Role = Literal["admin", "analyst", "agent"]


class _Password(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: str

    @field_validator("password")
    @classmethod
    def _strong(cls, value: str) -> str:
        check_password_strength(value)
        return value


class UserCreate(_Password):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"username": "dana", "role": "analyst", "password": "a-long-unique-passphrase"}]})

    username: str
    role: Role

    @field_validator("username")
    @classmethod
    def _username(cls, value: str) -> str:
        return validate_username(value)


class RoleChange(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"role": "admin"}]})

    role: Role


class PasswordReset(_Password):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"password": "another-long-passphrase"}]})


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
