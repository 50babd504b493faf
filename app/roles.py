"""Two database roles: migrations own the schema, the app only uses it.

`python -m app migrate` (and `run`) connect as `MIGRATION_DATABASE_URL` (default:
`DATABASE_URL`), which owns every table. When the user in `DATABASE_URL` differs, migrate
grants that runtime role only what the app needs: read and write on its tables, but on
`audit_events` only `SELECT` and `INSERT` — no `UPDATE`, `DELETE`, `TRUNCATE`, no
ownership, so no `ALTER TABLE … DISABLE TRIGGER` and no `DROP` either. The embedded
server of `run.sh` and `test.sh` has both: its superuser migrates and the role
`riskdesk_app` (created on first start) serves.
"""

import psycopg2
from psycopg2 import sql
from sqlalchemy.engine import make_url

from app.config import Settings
from app.db import normalize_database_url

EMBEDDED_RUNTIME_ROLE = "riskdesk_app"
# Tables the runtime role may only append to and read.
APPEND_ONLY_TABLES = ("audit_events",)
READ_ONLY_TABLES = ("alembic_version",)


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def user_of(url: str) -> str | None:
    return make_url(url).username


def with_user(url: str, user: str) -> str:
    return make_url(url).set(username=user, password=None).render_as_string(hide_password=False)


def ensure_login_role(owner_url: str, role: str) -> None:
    """CREATE ROLE … LOGIN unless it exists (roles are per server; a racing creator is fine)."""
    conn = psycopg2.connect(_libpq(owner_url))
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
            if cur.fetchone():
                return
            try:
                cur.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
            except (psycopg2.errors.DuplicateObject, psycopg2.errors.UniqueViolation):
                pass  # a concurrent creator won (the catalog's unique index may be what says so)
    finally:
        conn.close()


def grant_runtime_role(owner_url: str, role: str) -> None:
    """Give `role` what the app needs on every table, sequence and function, and no more."""
    name = sql.Identifier(role)
    conn = psycopg2.connect(_libpq(owner_url))
    try:
        with conn, conn.cursor() as cur:
            database = sql.Identifier(conn.info.dbname)
            cur.execute(sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}").format(database, name))
            cur.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(name))
            grant_dml = sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {}")
            cur.execute(grant_dml.format(name))
            for table in APPEND_ONLY_TABLES:
                cur.execute(sql.SQL("REVOKE ALL ON {} FROM {}").format(sql.Identifier(table), name))
                cur.execute(sql.SQL("GRANT SELECT, INSERT ON {} TO {}").format(sql.Identifier(table), name))
            for table in READ_ONLY_TABLES:
                cur.execute(sql.SQL("REVOKE ALL ON {} FROM {}").format(sql.Identifier(table), name))
                cur.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(sql.Identifier(table), name))
            cur.execute(sql.SQL("GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {}").format(name))
            cur.execute(sql.SQL("GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO {}").format(name))
    finally:
        conn.close()


def database_urls(settings: Settings) -> tuple[str, str]:
    """(migration URL, runtime URL): from the settings, or the embedded server's two roles."""
    if settings.database_url:
        runtime = normalize_database_url(settings.database_url)
        migration = normalize_database_url(settings.migration_database_url or settings.database_url)
        return migration, runtime
    from app import embedded_pg

    owner = embedded_pg.start(settings.embedded_pg_dir)
    ensure_login_role(owner, EMBEDDED_RUNTIME_ROLE)
    return owner, with_user(owner, EMBEDDED_RUNTIME_ROLE)


def migrate(migration_url: str, runtime_url: str) -> None:
    """Alembic to head as the owner, then the runtime role's grants when it is another user."""
    from app.migrations import upgrade_to_head

    upgrade_to_head(migration_url)
    runtime_user = user_of(runtime_url)
    if runtime_user and runtime_user != user_of(migration_url):
        grant_runtime_role(migration_url, runtime_user)
