"""Signed checkpoints of the audit chain head, kept where the database cannot reach them.

A checkpoint is a small JSON file: the chain head (`last_id`, its `hash`, the `count` of
events up to it), the `merkle_root` of every event hash up to it (app/audit/merkle.py; an
evidence pack proves an event's place with log2(count) hashes) and the time, signed with
Ed25519. Anyone holding a copy and the public
key can later prove that every event up to `last_id` is still there, unaltered: the newest
events deleted, an edit with every later hash recomputed, or a replaced database function
all fail `python -m app audit verify --checkpoint FILE`, because the chain recomputed in
Python (app/audit/chain.py) must arrive at the signed hash, at the signed count.

The key: `AUDIT_SIGNING_KEY` is the standard base64 of the 32-byte Ed25519 private seed.
It never lives in the database. In development and tests, when it is unset, one is
generated once into `AUDIT_SIGNING_KEY_FILE` (default `.audit-signing-key` beside the
project, mode 0600); production refuses to start without it (app/config.py).

The signed bytes are the checkpoint's fields other than `signature`, as JSON with sorted
keys and no whitespace (`json.dumps(..., sort_keys=True, separators=(",", ":"))`).
"""

import base64
import binascii
import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import Connection, text

from app.audit import chain, merkle
from app.config import Settings

FORMAT = "riskdesk-audit-checkpoint/1"
ALGORITHM = "Ed25519"


class CheckpointError(ValueError):
    """A checkpoint that cannot be read, or whose signature or key does not hold."""


def _decode_seed(value: str) -> bytes:
    try:
        seed = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CheckpointError("AUDIT_SIGNING_KEY is not standard base64") from exc
    if len(seed) != 32:
        raise CheckpointError("AUDIT_SIGNING_KEY must be the base64 of a 32-byte Ed25519 seed")
    return seed


def generate_seed() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def signing_key(settings: Settings) -> Ed25519PrivateKey:
    """The configured key; outside production, one generated once into the key file."""
    if settings.audit_signing_key:
        return Ed25519PrivateKey.from_private_bytes(_decode_seed(settings.audit_signing_key))
    if settings.is_production:
        raise CheckpointError("AUDIT_SIGNING_KEY must be set when APP_ENV=production")
    path = settings.audit_signing_key_file
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first: use theirs
            pass
        else:
            with os.fdopen(fd, "w") as file:
                file.write(generate_seed() + "\n")
    return Ed25519PrivateKey.from_private_bytes(_decode_seed(path.read_text()))


def public_key_text(key: Ed25519PublicKey) -> str:
    return base64.b64encode(key.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def key_id(key: Ed25519PublicKey) -> str:
    return hashlib.sha256(key.public_bytes(Encoding.Raw, PublicFormat.Raw)).hexdigest()[:16]


def load_public_key(text: str) -> Ed25519PublicKey:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except (binascii.Error, ValueError) as exc:
        raise CheckpointError("the public key is not the base64 of a 32-byte Ed25519 key") from exc


def _signed_bytes(fields: dict[str, Any]) -> bytes:
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


@dataclass(frozen=True)
class Checkpoint:
    last_id: int
    hash: str
    count: int
    merkle_root: str
    created_at: str
    key_id: str

    def fields(self) -> dict[str, Any]:
        return {"format": FORMAT, "algorithm": ALGORITHM, "last_id": self.last_id, "hash": self.hash,
                "count": self.count, "merkle_root": self.merkle_root, "created_at": self.created_at,
                "key_id": self.key_id}


def sign(head: chain.PythonChainStatus, merkle_root: bytes, key: Ed25519PrivateKey, *,
         now: datetime | None = None) -> dict[str, Any]:
    """The checkpoint document of a verified chain head."""
    if not head.ok or head.last_verified_id is None or head.last_hash is None:
        raise CheckpointError("only an unbroken, non-empty chain can be checkpointed")
    created = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    checkpoint = Checkpoint(head.last_verified_id, head.last_hash, head.events, merkle_root.hex(), created,
                            key_id(key.public_key()))
    fields = checkpoint.fields()
    return {**fields, "signature": base64.b64encode(key.sign(_signed_bytes(fields))).decode()}


def read(document: Any, public_key: Ed25519PublicKey) -> Checkpoint:
    """The checkpoint, once its format, fields and signature hold under `public_key`."""
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise CheckpointError(f"not a {FORMAT} document")
    fields = {name: value for name, value in document.items() if name != "signature"}
    try:
        checkpoint = Checkpoint(last_id=fields["last_id"], hash=fields["hash"], count=fields["count"],
                                merkle_root=fields["merkle_root"], created_at=fields["created_at"],
                                key_id=fields["key_id"])
        signature = base64.b64decode(str(document["signature"]), validate=True)
    except (KeyError, TypeError, binascii.Error, ValueError) as exc:
        raise CheckpointError("the checkpoint is missing a field or its signature is not base64") from exc
    if fields != checkpoint.fields() or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0
                                                for v in (checkpoint.last_id, checkpoint.count)):
        raise CheckpointError("the checkpoint's fields are not what a checkpoint holds")
    if checkpoint.key_id != key_id(public_key):
        raise CheckpointError("the checkpoint was signed with another key")
    try:
        public_key.verify(signature, _signed_bytes(fields))
    except InvalidSignature as exc:
        raise CheckpointError("the checkpoint's signature does not verify") from exc
    return checkpoint


def read_file(path: Path, public_key: Ed25519PublicKey) -> Checkpoint:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"cannot read {path}: {exc}") from exc
    return read(document, public_key)


def _verified_head(conn: Connection, *, until_id: int = 2**63 - 1) -> tuple[chain.PythonChainStatus, list[bytes]]:
    """The chain recomputed in Python up to `until_id`, and the Merkle leaves of its events."""
    leaves: list[bytes] = []

    def collecting(rows):
        for row in rows:
            leaves.append(merkle.leaf_hash(row.hash))
            yield row

    chain.allow_long_scan(conn)
    status = chain.check(collecting(chain.stored_rows(conn, until_id=until_id)))
    return status, leaves


def create(conn: Connection, key: Ed25519PrivateKey) -> dict[str, Any]:
    """Verify the whole chain in Python, sign its head and keep a copy in audit_checkpoints."""
    head, leaves = _verified_head(conn)
    if not head.ok:
        raise CheckpointError(f"the chain is broken at event {head.first_broken_id}; nothing was signed")
    document = sign(head, merkle.root(leaves), key)
    conn.execute(
        text("INSERT INTO audit_checkpoints (last_id, hash, count, merkle_root, key_id, document) "
             "VALUES (:last_id, :hash, :count, :merkle_root, :key_id, CAST(:document AS jsonb)) "
             "ON CONFLICT (last_id) DO NOTHING"),
        {**{k: document[k] for k in ("last_id", "hash", "count", "merkle_root", "key_id")},
         "document": json.dumps(document)},
    )
    return document


def save(document: dict[str, Any], out_dir: Path) -> Path:
    """Write a checkpoint as `checkpoint-<last_id>.json` in out_dir (atomically: a temporary file, renamed)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"checkpoint-{document['last_id']}.json"
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    temporary.replace(path)
    return path


@dataclass(frozen=True)
class CheckpointVerdict:
    ok: bool
    events: int
    message: str


def verify_against(conn: Connection, checkpoint: Checkpoint) -> CheckpointVerdict:
    """The stored chain up to the checkpoint must recompute to its signed hash and count."""
    status, leaves = _verified_head(conn, until_id=checkpoint.last_id)
    if not status.ok:
        return CheckpointVerdict(False, status.events,
                                 f"BROKEN at event {status.first_broken_id} (verified through event "
                                 f"{status.last_verified_id}), before checkpoint {checkpoint.last_id}")
    if status.last_verified_id != checkpoint.last_id or status.last_hash != checkpoint.hash:
        return CheckpointVerdict(False, status.events,
                                 f"BROKEN: checkpoint event {checkpoint.last_id} is missing or altered "
                                 f"(the stored chain ends at event {status.last_verified_id} before it)")
    if status.events != checkpoint.count:
        return CheckpointVerdict(False, status.events,
                                 f"BROKEN: {status.events} events up to {checkpoint.last_id}, "
                                 f"the checkpoint signed {checkpoint.count}")
    if merkle.root(leaves).hex() != checkpoint.merkle_root:
        return CheckpointVerdict(False, status.events, "BROKEN: the events' Merkle root is not the signed one")
    return CheckpointVerdict(True, status.events, f"OK {status.events} events through checkpoint {checkpoint.last_id}")


def head_holds(conn: Connection, checkpoint: Checkpoint) -> CheckpointVerdict:
    """The quick check: the signed head event is still there with its signed hash and count.

    A rewrite that recomputes later hashes, or a deletion of events up to the head, changes
    one of them; a plain edit of an earlier event does not (only the full check finds that).
    """
    row = conn.execute(text(
        "SELECT hash, (SELECT count(*) FROM audit_events WHERE id <= :id) AS upto FROM audit_events WHERE id = :id"
    ), {"id": checkpoint.last_id}).first()
    if row is None or row.hash != checkpoint.hash:
        return CheckpointVerdict(False, 0, f"BROKEN: checkpoint event {checkpoint.last_id} is missing or altered")
    if row.upto != checkpoint.count:
        return CheckpointVerdict(False, 0, f"BROKEN: {row.upto} events up to {checkpoint.last_id}, "
                                           f"the checkpoint signed {checkpoint.count}")
    return CheckpointVerdict(True, checkpoint.count, f"OK head of checkpoint {checkpoint.last_id}")
