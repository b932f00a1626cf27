"""The verifiable audit log: canonical leaves, the RFC 9162 Merkle tree, checkpoints, proofs."""
