"""RFC 9162 (Certificate Transparency v2) Merkle trees over SHA-256, in pure functions.

No database and no I/O here. Leaf hash = SHA-256(0x00 || leaf bytes), node hash =
SHA-256(0x01 || left || right), and the tree over n leaves is the RFC 6962/9162 Merkle Tree
Hash (MTH): split at the largest power of two smaller than n.

One module per concern:

- `hashing`: the leaf and node hashes, the empty root and the split point every other module
  builds on.
- `tree`: `MerkleTree`, every level of a tree held in memory as packed bytes (the offline
  verifier, proofs over a list of leaf hashes), and `prefix_root` / `range_root`, which compose
  any root out of stored perfect subtree hashes (`node(level, index)`) in O(log n) lookups.
- `frontier`: `Frontier`, the compact range [0, n) of a growing log (one hash per set bit of n).
  The sequencer keeps it in the database (`to_bytes`/`from_bytes`), appends each sequenced leaf
  in O(log n) and signs `root()` without rehashing the tree; `append_nodes` reports the perfect
  subtrees each append completes, so the database can store them for proofs.
- `proofs`: RFC 6962 PATH and PROOF from any `subtree_root(start, end)` callable; the
  `*_proof_ranges` and `perfect_nodes` list the (level, index) pairs a proof needs beforehand,
  so the database can fetch them in one query.
- `verification`: the RFC 9162 §2.1.3.2 and §2.1.4.2 algorithms that check those proofs.
"""
