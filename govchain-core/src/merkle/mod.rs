//! Merkle trees: the RFC 9162 transaction tree and the history log.
