"""Settings from the environment (pydantic-settings); read once per process."""

import base64
import binascii
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEV_SECRET_KEY = "riskdesk-development-secret-key-not-for-production"
MIN_SECRET_KEY_BYTES = 32


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore")

    database_url: str | None = None
    # Migrations connect as this owner of the schema (default: DATABASE_URL); when the two
    # users differ, migrate grants DATABASE_URL's user only what the app needs (app/roles.py).
    migration_database_url: str | None = None
    app_env: Literal["development", "test", "production"] = "development"
    secret_key: str | None = None

    access_token_minutes: int = Field(default=60, ge=1, le=24 * 60)
    # Lifetime of a browser sign-in (the session cookie and the token it holds): a working day.
    browser_session_minutes: int = Field(default=480, ge=1, le=7 * 24 * 60)
    max_body_bytes: int = 1024 * 1024
    # Only POST /reconciliation/upload (a 100k-row bank statement is ~8 MB); streamed to a temp file.
    max_upload_bytes: int = 32 * 1024 * 1024
    # Failed logins tolerated per username / per client address in the window.
    login_max_failures_per_user: int = 5
    login_max_failures_per_address: int = 20
    login_failure_window_seconds: int = Field(default=15 * 60, ge=1)
    # A device or address that signed in as a user before has its own allowance, so
    # strangers at the per-user cap cannot lock that user out (app/auth/throttle.py).
    login_max_failures_per_known_client: int = 5
    login_known_client_days: int = Field(default=90, ge=1)
    # Off: only the browser's device cookie is a known client (say, when many users share one NAT address).
    login_remember_addresses: bool = True
    db_pool_size: int = 20
    db_max_overflow: int = 10
    db_pool_timeout_seconds: float = 5.0
    db_statement_timeout_ms: int = 15_000
    # How long a statement waits for a row or table lock (the audit chain's included) before a 503.
    db_lock_timeout_ms: int = Field(default=5_000, ge=1)
    embedded_pg_dir: Path = PROJECT_ROOT / ".pgdata"
    log_level: str = "INFO"
    # May webhooks go to loopback, private and reserved addresses? Unset: only outside
    # production, where test and demo receivers run on 127.0.0.1 (app/webhooks/targets.py).
    webhook_private_targets: bool | None = None
    # The deliveries screen warns when no webhook worker has been seen for this long.
    webhook_worker_seen_minutes: int = Field(default=2, ge=1, le=24 * 60)
    # METRICS_TOKEN: when set, GET /metrics needs `Authorization: Bearer <token>` (app/ops/routes.py).
    metrics_token: str | None = None
    # Argon2id cost. "standard" is argon2-cffi's default (RFC 9106's low-memory profile:
    # t=3, m=64 MiB, p=4); "fast" (t=1, m=1 MiB, p=1) is for the test suite, where most of
    # the time went into hashing fixtures' passwords, and is refused in production.
    # Unset: "fast" when APP_ENV=test, else "standard".
    password_hash_profile: Literal["standard", "fast"] | None = None
    # The Ed25519 seed (standard base64 of 32 bytes) that signs audit checkpoints; never in
    # the database. Unset outside production: generated once into the key file.
    audit_signing_key: str | None = None
    audit_signing_key_file: Path = PROJECT_ROOT / ".audit-signing-key"
    # The webhook worker signs a checkpoint this often (when events came since), sends it
    # as an `audit.checkpoint` webhook and, when AUDIT_CHECKPOINT_DIR is set, writes it there.
    audit_checkpoint_minutes: int = Field(default=60, ge=1, le=7 * 24 * 60)
    audit_checkpoint_dir: Path | None = None

    @property
    def is_production(self) -> bool:
        return self.app_env == "production"

    @property
    def hash_profile(self) -> str:
        return self.password_hash_profile or ("fast" if self.app_env == "test" else "standard")

    @property
    def allows_private_webhook_targets(self) -> bool:
        if self.webhook_private_targets is not None:
            return self.webhook_private_targets
        return not self.is_production

    @property
    def signing_key(self) -> str:
        """The JWT/CSRF key; production refuses to start without a strong one."""
        if self.secret_key:
            return self.secret_key
        return DEV_SECRET_KEY


class ConfigError(RuntimeError):
    """The configuration is unsafe or incomplete; the app must not start."""


def _is_ed25519_seed(value: str | None) -> bool:
    try:
        return value is not None and len(base64.b64decode(value.strip(), validate=True)) == 32
    except (binascii.Error, ValueError):
        return False


def check_production_safety(settings: Settings) -> None:
    """Raise ConfigError when production would run with a weak or missing key."""
    if not settings.is_production:
        return
    key = settings.secret_key or ""
    if len(key.encode()) < MIN_SECRET_KEY_BYTES or key == DEV_SECRET_KEY:
        raise ConfigError(
            f"SECRET_KEY must be set to at least {MIN_SECRET_KEY_BYTES} random bytes when APP_ENV=production"
        )
    if not settings.database_url:
        raise ConfigError("DATABASE_URL must be set when APP_ENV=production")
    if not _is_ed25519_seed(settings.audit_signing_key):
        raise ConfigError("AUDIT_SIGNING_KEY must be set to the base64 of a 32-byte Ed25519 seed when "
                          "APP_ENV=production (python -m app audit new-key makes one)")
    if settings.hash_profile != "standard":
        raise ConfigError("PASSWORD_HASH_PROFILE must be standard when APP_ENV=production")


@lru_cache
def get_settings() -> Settings:
    return Settings()
