"""Evidence packs: one case's record, provable offline with the public key alone.

A pack is one JSON file (format `riskdesk-evidence-pack/1`):

- `case`, `transaction`, `risk_scores`: the rows as PostgreSQL's `to_jsonb` renders them;
  every number with a fraction is kept as the exact string the database holds.
- `rule_hits`: the transaction's rule explanations (each hit's rule, name, version, mode, risk,
  reason and the values its condition read), rendered the same way.
- `audit_events`: every event of the case and of its transaction, with the columns its hash
  covers (`before`/`after` as the JSONB text the hash covers), `prev_hash`, `hash`, and a
  `proof`: the event's `leaf_index` among all events up to the checkpoint, and the Merkle
  inclusion `path` (app/audit/merkle.py) to the checkpoint's signed `merkle_root`.
- `checkpoint`: a signed checkpoint (app/audit/checkpoints.py) covering every event above.
- `manifest`: the case id, when and by whom the pack was made, the signing key's id, and the
  SHA-256 of each section above (canonical JSON: sorted keys, no whitespace, UTF-8), signed
  with the same Ed25519 key as `manifest_signature`.

`verify_pack` (and `python -m app audit verify-pack FILE`) needs no database: it checks the
manifest's signature and every section's digest, the checkpoint's signature, recomputes each
event's hash from its columns and its Merkle path to the signed root. Editing any value of
the pack, or the history it came from, makes it fail.
"""

import base64
import binascii
import hashlib
import json
from bisect import bisect_left
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import Connection, text

from app.audit import chain, checkpoints, merkle

FORMAT = "riskdesk-evidence-pack/1"
SECTIONS = ("case", "transaction", "risk_scores", "rule_hits", "audit_events", "checkpoint")
# Sections a pack made before they existed may lack (it still verifies without them).
LATER_SECTIONS = frozenset({"rule_hits"})
_EVENT_COLUMNS = ("id", "occurred_at", "actor", "actor_id", "actor_role", "actor_type", "action", "entity_type",
                  "entity_id", "before", "after", "reason", "request_id", "client_addr", "prev_hash", "hash")


class CaseNotFound(LookupError):
    pass


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _digest(value: Any) -> str:
    return hashlib.sha256(_canonical(value)).hexdigest()


def _json(value: str | None) -> Any:
    """PostgreSQL's JSON text as Python values, numbers with a fraction kept as exact strings."""
    return None if value is None else json.loads(value, parse_float=str)


def _rows_as_json(conn: Connection, sql: str, params: dict[str, Any]) -> Any:
    return _json(conn.execute(text(sql), params).scalar())


def _events(conn: Connection, case_id: int, reference: str | None) -> list[dict[str, Any]]:
    rows = conn.execute(text(
        f"SELECT {chain.EVENT_COLUMNS} FROM audit_events WHERE (entity_type = 'case' AND entity_id = :case_id) "
        "OR (entity_type = 'transaction' AND entity_id = :reference) ORDER BY id"
    ), {"case_id": str(case_id), "reference": reference or ""}).all()
    return [row._asdict() for row in rows]


def _checkpoint_covering(conn: Connection, last_event_id: int, key: Ed25519PrivateKey) -> dict[str, Any]:
    """The newest stored checkpoint at or after the case's last event, or a new one."""
    document = conn.execute(text(
        "SELECT document FROM audit_checkpoints WHERE last_id >= :id AND key_id = :key_id ORDER BY last_id DESC LIMIT 1"
    ), {"id": last_event_id, "key_id": checkpoints.key_id(key.public_key())}).scalar()
    return document if document is not None else checkpoints.create(conn, key)


def build(conn: Connection, *, case_id: int, exported_by: str, key: Ed25519PrivateKey) -> dict[str, Any]:
    case = _rows_as_json(conn, "SELECT to_jsonb(c)::text FROM review_cases c WHERE id = :id", {"id": case_id})
    if case is None:
        raise CaseNotFound(case_id)
    transaction_id = case.get("transaction_id")
    transaction = _rows_as_json(conn, "SELECT to_jsonb(t)::text FROM transactions t WHERE id = :id",
                                {"id": transaction_id}) if transaction_id is not None else None
    scores = _rows_as_json(conn, "SELECT coalesce(jsonb_agg(to_jsonb(s) ORDER BY s.id), '[]')::text "
                                 "FROM risk_scores s WHERE transaction_id = :id", {"id": transaction_id or 0})
    hits = _rows_as_json(conn, "SELECT coalesce(jsonb_agg(to_jsonb(h) || jsonb_build_object('rule_name', r.name) "
                               "ORDER BY h.id), '[]')::text FROM rule_hits h JOIN rules r ON r.id = h.rule_id "
                               "WHERE h.transaction_id = :id", {"id": transaction_id or 0})
    events = _events(conn, case_id, transaction["reference"] if transaction else None)
    if not events:
        raise CaseNotFound(case_id)
    checkpoint = _checkpoint_covering(conn, events[-1]["id"], key)
    ids_and_hashes = conn.execute(text("SELECT id, hash FROM audit_events WHERE id <= :last ORDER BY id"),
                                  {"last": checkpoint["last_id"]}).all()
    ids = [row.id for row in ids_and_hashes]
    leaves = [merkle.leaf_hash(row.hash) for row in ids_and_hashes]
    for event in events:
        index = bisect_left(ids, event["id"])
        event["proof"] = {"leaf_index": index, "tree_size": len(leaves),
                          "path": [node.hex() for node in merkle.inclusion_path(leaves, index)]}
    pack: dict[str, Any] = {"format": FORMAT, "case": case, "transaction": transaction, "risk_scores": scores,
                            "rule_hits": hits, "audit_events": events, "checkpoint": checkpoint}
    manifest = {
        "format": FORMAT, "case_id": case_id, "exported_by": exported_by,
        "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "key_id": checkpoints.key_id(key.public_key()),
        "sections": {name: _digest(pack[name]) for name in SECTIONS},
    }
    pack["manifest"] = manifest
    pack["manifest_signature"] = base64.b64encode(key.sign(_canonical(manifest))).decode()
    return pack


def dumps(pack: dict[str, Any]) -> bytes:
    return json.dumps(pack, indent=1, sort_keys=True, ensure_ascii=False).encode() + b"\n"


def verify_pack(data: bytes, public_key: Ed25519PublicKey) -> tuple[list[str], dict[str, Any] | None]:
    """The problems found (none: the pack holds) and the parsed pack."""
    try:
        pack = json.loads(data.decode("utf-8"), parse_float=str)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return [f"not a JSON file: {exc}"], None
    if not isinstance(pack, dict) or pack.get("format") != FORMAT or not isinstance(pack.get("manifest"), dict):
        return [f"not a {FORMAT} file"], None
    manifest = pack["manifest"]
    problems: list[str] = []
    try:
        public_key.verify(base64.b64decode(str(pack.get("manifest_signature")), validate=True), _canonical(manifest))
    except (InvalidSignature, binascii.Error, ValueError):
        problems.append("the manifest's signature does not verify with this public key")
    sections = manifest.get("sections") if isinstance(manifest.get("sections"), dict) else {}
    for name in SECTIONS:
        if name in LATER_SECTIONS and name not in sections and name not in pack:
            continue
        if sections.get(name) != _digest(pack.get(name)):
            problems.append(f"section {name} differs from the signed manifest")
    try:
        checkpoint = checkpoints.read(pack.get("checkpoint"), public_key)
    except checkpoints.CheckpointError as exc:
        return [*problems, f"checkpoint: {exc}"], pack
    root = bytes.fromhex(checkpoint.merkle_root)
    events = found if isinstance(found := pack.get("audit_events"), list) else []
    if not events:
        problems.append("the pack holds no audit events")
    for event in events:
        problems.extend(_event_problems(event, checkpoint, root))
    return problems, pack


def _event_problems(event: Any, checkpoint: checkpoints.Checkpoint, root: bytes) -> list[str]:
    try:
        row = SimpleNamespace(**{name: event[name] for name in _EVENT_COLUMNS})
        if not isinstance(row.occurred_at, str):
            raise TypeError("occurred_at is the canonical text")
        proof = event["proof"]
        path = [bytes.fromhex(node) for node in proof["path"]]
        index, size = int(proof["leaf_index"]), int(proof["tree_size"])
        recomputed = chain.event_hash(row.prev_hash, row)
        leaf = merkle.leaf_hash(row.hash)
    except (KeyError, TypeError, ValueError, AttributeError):
        return [f"event {event.get('id') if isinstance(event, dict) else '?'}: malformed"]
    problems = []
    if recomputed != row.hash:
        problems.append(f"event {row.id}: its content does not hash to its stored hash")
    if size != checkpoint.count or row.id > checkpoint.last_id:
        problems.append(f"event {row.id}: not covered by the checkpoint")
    elif not merkle.verify_inclusion(leaf, index, size, path, root):
        problems.append(f"event {row.id}: its Merkle proof does not lead to the checkpoint's root")
    return problems
