"""The Merkle tree of evidence proofs: RFC 9162's tree hash, and every inclusion proof verifies."""

import hashlib

from app.audit import merkle


def rfc_mth(leaves: list[bytes]) -> bytes:
    """RFC 9162 §2.1.1 as written: split at the largest power of two below n."""
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + rfc_mth(leaves[:k]) + rfc_mth(leaves[k:])).digest()


def leaves(n: int) -> list[bytes]:
    return [merkle.leaf_hash(hashlib.sha256(str(i).encode()).hexdigest()) for i in range(n)]


def test_the_root_is_rfc_9162s_tree_hash_for_every_size():
    for n in range(1, 70):
        assert merkle.root(leaves(n)) == rfc_mth(leaves(n)), n


def test_every_leafs_path_verifies_and_is_logarithmic():
    for n in [1, 2, 3, 5, 8, 13, 31, 64, 65]:
        tree, top = leaves(n), merkle.root(leaves(n))
        for i in range(n):
            path = merkle.inclusion_path(tree, i)
            assert len(path) <= max(1, n - 1).bit_length()
            assert merkle.verify_inclusion(tree[i], i, n, path, top), (n, i)


def test_a_wrong_leaf_index_size_path_or_root_fails():
    tree = leaves(13)
    top, path = merkle.root(tree), merkle.inclusion_path(tree, 6)
    assert merkle.verify_inclusion(tree[6], 6, 13, path, top)
    assert not merkle.verify_inclusion(tree[7], 6, 13, path, top)
    assert not merkle.verify_inclusion(tree[6], 7, 13, path, top)
    assert not merkle.verify_inclusion(tree[6], 6, 13, path[:-1], top)
    assert not merkle.verify_inclusion(tree[6], 6, 13, [*path, path[0]], top)
    assert not merkle.verify_inclusion(tree[6], 6, 13, path, hashlib.sha256(b"x").digest())
    assert not merkle.verify_inclusion(tree[6], 13, 13, path, top)
