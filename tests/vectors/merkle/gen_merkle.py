#!/usr/bin/env python3
"""gen_merkle.py - reference Merkle tree vectors for tests/test_merkle.c.

A direct transcription of the definitions of RFC 6962 §2.1 (MTH, PATH,
PROOF/SUBPROOF) as recursive functions, with the stdlib's hashlib only, and
of the verification algorithms of RFC 9162 §2.1.3.2 and §2.1.4.2, which
check every proof written here. Nothing is computed the way src/log/merkle.c
computes it (from stored complete subtrees, iteratively): the two must agree.

The only shortcut: MTH of a complete, aligned subtree of 256 or more leaves
is memoized, so that the 1,000,000-leaf tree is hashed once, not once per
requested root or proof; the recursion itself is the RFC's.

The m == 0 and m == n consistency proofs are empty (RFC 9162 §2.1.4: a tree
is consistent with itself and with the empty tree).

Entries: entry i is the ASCII bytes "entry <i>" (decimal, no padding).

Writes, in this directory:
  entries_small.tsv   sizes up to 300: every root, every inclusion and
                      consistency proof up to size 16, chosen ones beyond
  entries_large.tsv   the 1,000,000-entry tree: roots at chosen sizes,
                      inclusion and consistency proofs at chosen sizes,
                      SHA-256 of chosen c2sp.org/tlog-tiles tiles
and checks rfc6962.tsv (copied from transparency-dev/merkle, ORIGIN.md)
against this implementation first.

Run from anywhere: python3 tests/vectors/merkle/gen_merkle.py
  --check   only check rfc6962.tsv and the two generated files
"""
import hashlib
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
LARGE = 1000000


def sha256(b):
    return hashlib.sha256(b).digest()


def leaf_hash(entry):
    return sha256(b"\x00" + entry)


def node_hash(left, right):
    return sha256(b"\x01" + left + right)


def split_point(n):
    """The largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def entry(i):
    return b"entry %d" % i


class Tree:
    """D[0:n] for a list of entries, with the RFC 6962 functions over it."""

    def __init__(self, entries):
        self.leaves = [leaf_hash(e) for e in entries]
        self.memo = {}

    def mth(self, lo, hi):
        """MTH(D[lo:hi]) (RFC 6962 §2.1)."""
        n = hi - lo
        if n == 0:
            return sha256(b"")
        if n == 1:
            return self.leaves[lo]
        full = n & (n - 1) == 0 and n >= 256
        if full and (lo, hi) in self.memo:
            return self.memo[(lo, hi)]
        k = split_point(n)
        h = node_hash(self.mth(lo, lo + k), self.mth(lo + k, hi))
        if full:
            self.memo[(lo, hi)] = h
        return h

    def path(self, m, lo, hi):
        """PATH(m, D[lo:hi]) (RFC 6962 §2.1.1), m relative to lo."""
        n = hi - lo
        if n == 1:
            return []
        k = split_point(n)
        if m < k:
            return self.path(m, lo, lo + k) + [self.mth(lo + k, hi)]
        return self.path(m - k, lo + k, hi) + [self.mth(lo, lo + k)]

    def subproof(self, m, lo, hi, b):
        """SUBPROOF(m, D[lo:hi], b) (RFC 6962 §2.1.2), m relative to lo."""
        n = hi - lo
        if m == n:
            return [] if b else [self.mth(lo, hi)]
        k = split_point(n)
        if m <= k:
            return self.subproof(m, lo, lo + k, b) + [self.mth(lo + k, hi)]
        return self.subproof(m - k, lo + k, hi, False) + [self.mth(lo, lo + k)]

    def inclusion(self, i, n):
        assert 0 <= i < n <= len(self.leaves)
        return self.path(i, 0, n)

    def consistency(self, m, n):
        assert 0 <= m <= n <= len(self.leaves)
        if m == 0 or m == n:
            return []
        return self.subproof(m, 0, n, True)


# ---- RFC 9162 verification, to check what is written ---------------------


def verify_inclusion(index, size, leaf, proof, root):
    """RFC 9162 §2.1.3.2."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not (fn & 1 or fn == 0):
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(m, n, proof, root_m, root_n):
    """RFC 9162 §2.1.4.2, with the trivial m == 0 and m == n cases."""
    if m > n:
        return False
    if m == n:
        return not proof and root_m == root_n
    if m == 0:
        return not proof and root_m == sha256(b"")
    if not proof:
        return False
    path = list(proof)
    if m & (m - 1) == 0:
        path.insert(0, root_m)
    fn, sn = m - 1, n - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not (fn & 1 or fn == 0):
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == root_m and sr == root_n


# ---- the files -------------------------------------------------------------


def hexlist(proof):
    return ",".join(h.hex() for h in proof) if proof else "-"


def parse_list(s):
    return [] if s == "-" else [bytes.fromhex(x) for x in s.split(",")]


def unhex(s):
    return b"" if s == "-" else bytes.fromhex(s)


def check_file(path, tree):
    """Checks every line of a vector file against tree; returns the count."""
    n = 0
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            t = line.split("\t")
            if t[0] == "data":
                continue
            elif t[0] == "leaf":
                assert leaf_hash(unhex(t[1])) == unhex(t[2]), line
            elif t[0] == "root":
                assert tree.mth(0, int(t[1])) == unhex(t[2]), line
            elif t[0] == "incl":
                i, size, proof = int(t[1]), int(t[2]), parse_list(t[3])
                assert tree.inclusion(i, size) == proof, line
                assert verify_inclusion(i, size, tree.leaves[i], proof, tree.mth(0, size)), line
            elif t[0] == "cons":
                m, size, proof = int(t[1]), int(t[2]), parse_list(t[3])
                assert tree.consistency(m, size) == proof, line
                assert verify_consistency(m, size, proof, tree.mth(0, m), tree.mth(0, size)), line
            elif t[0] == "tile":
                level, index, width = int(t[1]), int(t[2]), int(t[3])
                assert tile_bytes(tree, level, index, width) is not None, line
                assert sha256(tile_bytes(tree, level, index, width)) == unhex(t[4]), line
            else:
                raise ValueError("unknown line: " + line)
            n += 1
    return n


def rfc_tree():
    entries = []
    with open(os.path.join(HERE, "rfc6962.tsv")) as f:
        for line in f:
            t = line.rstrip("\n").split("\t")
            if t[0] == "data":
                entries.append(unhex(t[1]))
    return Tree(entries)


def tile_bytes(tree, level, index, width):
    """The c2sp.org/tlog-tiles tile: hash j is MTH of the entries
    [(index*256 + j) * 256**level, (index*256 + j + 1) * 256**level)."""
    span = 256**level
    out = b""
    for j in range(width):
        lo = (index * 256 + j) * span
        out += tree.mth(lo, lo + span)
    return out


def partial_width(size, level):
    return (size // 256**level) % 256


def write_small(tree, out):
    w = out.write
    w("# entries_small.tsv - written by gen_merkle.py; entry i = \"entry <i>\".\n")
    w("# Same line format as rfc6962.tsv.\n")
    for size in range(0, 301):
        w("root\t%d\t%s\n" % (size, tree.mth(0, size).hex()))
    for size in range(1, 17):
        for i in range(size):
            w("incl\t%d\t%d\t%s\n" % (i, size, hexlist(tree.inclusion(i, size))))
    for size in (31, 32, 33, 63, 64, 65, 100, 127, 128, 129, 255, 256, 257, 299, 300):
        for i in sorted({0, 1, size // 3, size // 2, size - 2, size - 1}):
            w("incl\t%d\t%d\t%s\n" % (i, size, hexlist(tree.inclusion(i, size))))
    for size in range(0, 17):
        for m in range(0, size + 1):
            w("cons\t%d\t%d\t%s\n" % (m, size, hexlist(tree.consistency(m, size))))
    for size in (31, 32, 33, 64, 100, 129, 255, 256, 257, 300):
        for m in sorted({1, 2, 3, 7, 8, size // 3, size // 2, size - 1}):
            w("cons\t%d\t%d\t%s\n" % (m, size, hexlist(tree.consistency(m, size))))


LARGE_SIZES = [
    1, 2, 3, 255, 256, 257, 511, 512, 513, 4095, 4096, 4097, 65535, 65536, 65537,
    69999, 70000, 70001, 99999, 100000, 131071, 131072, 131073, 262143, 262144,
    500000, 524287, 524288, 524289, 999999, LARGE,
] + list(range(997, 100001, 997))

LARGE_INCL = [
    (0, LARGE), (1, LARGE), (123456, LARGE), (524287, LARGE), (524288, LARGE),
    (999998, LARGE), (999999, LARGE), (0, 524288), (524287, 524288),
    (69999, 70000), (65536, 70000), (12345, 65537), (65536, 65537), (99999, 100000),
]

LARGE_CONS = [
    (1, LARGE), (2, LARGE), (255, LARGE), (256, LARGE), (70000, LARGE), (100000, LARGE),
    (524287, LARGE), (524288, LARGE), (524289, LARGE), (999999, LARGE), (12345, 67890),
    (65536, 65537), (65535, 65537), (70000, 100000), (99999, 100000), (LARGE, LARGE), (0, LARGE),
]

# (size whose partial tiles these are, level, index, width): C2SP's example
# sizes; full tiles have width 256.
LARGE_TILES = [
    (70000, 0, 0, 256), (70000, 0, 273, partial_width(70000, 0)),
    (70000, 1, 0, 256), (70000, 1, 1, partial_width(70000, 1)),
    (70000, 2, 0, partial_width(70000, 2)),
    (LARGE, 0, 1234, 256), (LARGE, 0, 3906, partial_width(LARGE, 0)),
    (LARGE, 1, 14, 256), (LARGE, 1, 15, partial_width(LARGE, 1)),
    (LARGE, 2, 0, partial_width(LARGE, 2)),
]


def write_large(tree, out):
    w = out.write
    w("# entries_large.tsv - written by gen_merkle.py; entry i = \"entry <i>\",\n")
    w("# %d entries. Same line format as rfc6962.tsv, and\n" % LARGE)
    w("#   tile <level> <index> <width> <SHA-256 of the tile's bytes>\n")
    for size in LARGE_SIZES:
        w("root\t%d\t%s\n" % (size, tree.mth(0, size).hex()))
    for i, size in LARGE_INCL:
        w("incl\t%d\t%d\t%s\n" % (i, size, hexlist(tree.inclusion(i, size))))
    for m, size in LARGE_CONS:
        w("cons\t%d\t%d\t%s\n" % (m, size, hexlist(tree.consistency(m, size))))
    for size, level, index, width in LARGE_TILES:
        data = tile_bytes(tree, level, index, width)
        assert (index * 256 + width) * 256**level <= size
        w("tile\t%d\t%d\t%d\t%s\n" % (level, index, width, sha256(data).hex()))


def main():
    check_only = "--check" in sys.argv[1:]
    n = check_file(os.path.join(HERE, "rfc6962.tsv"), rfc_tree())
    print("rfc6962.tsv: %d lines agree" % n)
    tree = Tree([entry(i) for i in range(LARGE)])
    small = os.path.join(HERE, "entries_small.tsv")
    large = os.path.join(HERE, "entries_large.tsv")
    if not check_only:
        with open(small, "w") as f:
            write_small(tree, f)
        with open(large, "w") as f:
            write_large(tree, f)
    for path in (small, large):
        print("%s: %d lines verified" % (os.path.basename(path), check_file(path, tree)))


if __name__ == "__main__":
    main()
