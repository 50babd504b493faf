"""A Merkle tree over the audit chain's event hashes (RFC 9162 §2.1), for small proofs.

A checkpoint signs the root of the tree whose leaves are the hashes of every event up to
its `last_id`, in id order. An evidence pack then proves that one event belongs to that
signed history with log2(n) hashes (20 for a million events), not the whole chain.

    leaf hash  = SHA-256(0x00 ‖ event hash as 32 raw bytes)
    node hash  = SHA-256(0x01 ‖ left ‖ right)
    tree of n  = split at k, the largest power of two below n (RFC 9162's MTH)
"""

import hashlib
from collections.abc import Sequence


def leaf_hash(event_hash_hex: str) -> bytes:
    return hashlib.sha256(b"\x00" + bytes.fromhex(event_hash_hex)).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def root(leaves: Sequence[bytes]) -> bytes:
    """RFC 9162's MTH over leaf hashes, level by level (an odd last node is carried up),
    which gives the same tree as the recursive largest-power-of-two split."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    level = list(leaves)
    while len(level) > 1:
        paired = [_node(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def inclusion_path(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """The audit path of leaf `index` (RFC 9162 §2.1.3.1), bottom up."""
    if not 0 <= index < len(leaves):
        raise IndexError(index)
    path: list[bytes] = []
    level, position = list(leaves), index
    while len(level) > 1:
        sibling = position ^ 1
        if sibling < len(level):
            path.append(level[sibling])
        paired = [_node(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level, position = paired, position // 2
    return path


def verify_inclusion(leaf: bytes, index: int, size: int, path: Sequence[bytes], expected_root: bytes) -> bool:
    """RFC 9162 §2.1.3.2: does `path` lead from leaf `index` of a tree of `size` to the root?"""
    if not 0 <= index < size:
        return False
    fn, sn, result = index, size - 1, leaf
    for sibling in path:
        if sn == 0:
            return False
        if fn % 2 == 1 or fn == sn:
            result = _node(sibling, result)
            if fn % 2 == 0:
                while fn % 2 == 0 and fn != 0:
                    fn, sn = fn >> 1, sn >> 1
        else:
            result = _node(result, sibling)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and result == expected_root
