//! Signed transactions.
//!
//! A [`Transaction`] names its chain, its sender's public key and a per-sender
//! nonce, carries an opaque application payload, and is signed by the sender.
//! `chain id + sender + nonce` is what makes replay impossible: a transaction
//! signed for one chain does not verify on another, and the application
//! accepts each `(sender, nonce)` once. There are no fees.
//!
//! The sender signs a 32-byte digest of everything but the signature
//! ([`Transaction::signing_message`]), under its own hashing domain, so a
//! transaction signature can never be replayed as a vote or a header.
//!
//! A transaction's suite is implied by its sender's key
//! ([`Transaction::suite`]: Ed25519 → ed25519-blake3, SM2 → sm2-sm3): its
//! signing digest, id and leaf hash are taken under that suite's hash
//! function. A chain admits only senders of its own suite
//! ([`Transaction::check_suite`], [`Block::validate_body`](crate::block::Block::validate_body)),
//! so everything a block commits to is hashed under the chain's suite.

use std::sync::{Arc, OnceLock};

use crate::codec::{decode_exact, encode_bytes, Decode, DecodeError, Encode, Reader};
use crate::crypto::{
    verify, CryptoSuite, PublicKey, Signature, SignatureError, Signer, SuiteMismatch,
};
use crate::hash::{Domain, Hash};
use crate::types::ChainId;

/// Largest payload a transaction may carry, in bytes. Chains may set a
/// tighter limit in their configuration.
pub const MAX_PAYLOAD_LEN: usize = 256 * 1024;

/// Largest encoded transaction: the payload plus every fixed field.
pub const MAX_TX_ENCODED_LEN: usize =
    MAX_PAYLOAD_LEN + 4 + 32 + PublicKey::MAX_ENCODED_LEN + 8 + 4 + Signature::ENCODED_LEN;

/// A signed transaction.
#[derive(Clone)]
pub struct Transaction {
    chain_id: ChainId,
    sender: PublicKey,
    nonce: u64,
    /// Shared between clones: a block's transactions are cloned as the
    /// block moves through consensus, storage and the mempool.
    payload: Arc<[u8]>,
    signature: Signature,
    /// [`Transaction::id`], computed on first use: a node asks for it on
    /// admission, validation, commit and indexing. The fields above never
    /// change after construction, so it never goes stale.
    id: OnceLock<Hash>,
}

impl PartialEq for Transaction {
    fn eq(&self, other: &Self) -> bool {
        self.chain_id == other.chain_id
            && self.sender == other.sender
            && self.nonce == other.nonce
            && self.payload == other.payload
            && self.signature == other.signature
    }
}

impl Eq for Transaction {}

impl std::fmt::Debug for Transaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transaction")
            .field("chain_id", &self.chain_id)
            .field("sender", &self.sender)
            .field("nonce", &self.nonce)
            .field("payload", &self.payload)
            .field("signature", &self.signature)
            .finish()
    }
}

/// Why a transaction is malformed or unauthentic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TxError {
    /// The payload is longer than allowed.
    #[error("payload of {len} bytes exceeds the limit of {max}")]
    PayloadTooLarge {
        /// Payload length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The transaction was signed for another chain.
    #[error("transaction is for chain {got}, expected {expected}")]
    WrongChain {
        /// The chain this check expected.
        expected: ChainId,
        /// The chain named in the transaction.
        got: ChainId,
    },
    /// The signature does not verify under the sender's key.
    #[error("bad transaction signature: {0}")]
    BadSignature(#[from] SignatureError),
    /// The bytes do not decode as a transaction.
    #[error("malformed transaction: {0}")]
    Malformed(#[from] DecodeError),
    /// The sender's key is of an algorithm the chain's suite does not admit.
    #[error("transaction refused: {0}")]
    WrongSuite(#[from] SuiteMismatch),
}

impl Transaction {
    /// Builds and signs a transaction.
    pub fn new_signed(
        chain_id: ChainId,
        signer: &dyn Signer,
        nonce: u64,
        payload: Vec<u8>,
    ) -> Result<Self, TxError> {
        if payload.len() > MAX_PAYLOAD_LEN {
            return Err(TxError::PayloadTooLarge {
                len: payload.len(),
                max: MAX_PAYLOAD_LEN,
            });
        }
        let sender = signer.public_key();
        let message = signing_message(&chain_id, &sender, nonce, &payload);
        let signature = signer.sign(message.as_bytes());
        Ok(Transaction {
            chain_id,
            sender,
            nonce,
            payload: payload.into(),
            signature,
            id: OnceLock::new(),
        })
    }

    /// Decodes a transaction from untrusted bytes (at most
    /// [`MAX_TX_ENCODED_LEN`]). The signature is *not* checked here.
    pub fn decode(bytes: &[u8]) -> Result<Self, TxError> {
        Ok(decode_exact(bytes, MAX_TX_ENCODED_LEN)?)
    }

    /// The chain this transaction is for.
    pub fn chain_id(&self) -> &ChainId {
        &self.chain_id
    }

    /// The sender's public key.
    pub fn sender(&self) -> &PublicKey {
        &self.sender
    }

    /// The sender's nonce.
    pub fn nonce(&self) -> u64 {
        self.nonce
    }

    /// The application payload.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// The sender's signature.
    pub fn signature(&self) -> &Signature {
        &self.signature
    }

    /// The 32-byte digest that the sender signs.
    pub fn signing_message(&self) -> Hash {
        signing_message(&self.chain_id, &self.sender, self.nonce, &self.payload)
    }

    /// Checks the sender's signature.
    pub fn verify_signature(&self) -> Result<(), TxError> {
        Ok(verify(
            &self.sender,
            self.signing_message().as_bytes(),
            &self.signature,
        )?)
    }

    /// Checks that the transaction is for `chain`.
    pub fn check_chain(&self, chain: &ChainId) -> Result<(), TxError> {
        if &self.chain_id == chain {
            Ok(())
        } else {
            Err(TxError::WrongChain {
                expected: chain.clone(),
                got: self.chain_id.clone(),
            })
        }
    }

    /// The transaction id: the hash of its whole canonical encoding, under
    /// its [suite](Self::suite).
    pub fn id(&self) -> Hash {
        *self
            .id
            .get_or_init(|| self.suite().hash(Domain::Transaction, &self.to_bytes()))
    }

    /// The leaf hash of this transaction in its block's transaction tree,
    /// under its [suite](Self::suite).
    pub fn leaf_hash(&self) -> Hash {
        crate::merkle::tx_leaf_hash(self.suite().hash_function(), &self.to_bytes())
    }

    /// The suite of this transaction: the one of its sender's key algorithm.
    pub fn suite(&self) -> CryptoSuite {
        CryptoSuite::of_key(&self.sender)
    }

    /// Refuses this transaction on a chain of `suite` unless that suite
    /// admits the sender's key algorithm.
    pub fn check_suite(&self, suite: CryptoSuite) -> Result<(), TxError> {
        Ok(suite.check_key(&self.sender)?)
    }

    /// Length of the canonical encoding, without encoding.
    pub fn encoded_len(&self) -> usize {
        4 + self.chain_id.as_str().len()
            + self.sender.encoded_len()
            + 8
            + 4
            + self.payload.len()
            + Signature::ENCODED_LEN
    }
}

fn signing_message(chain_id: &ChainId, sender: &PublicKey, nonce: u64, payload: &[u8]) -> Hash {
    let mut body = Vec::with_capacity(64 + payload.len());
    chain_id.encode_to(&mut body);
    sender.encode_to(&mut body);
    nonce.encode_to(&mut body);
    encode_bytes(payload, &mut body);
    CryptoSuite::of_key(sender).hash(Domain::TransactionSigning, &body)
}

impl Encode for Transaction {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.chain_id.encode_to(out);
        self.sender.encode_to(out);
        self.nonce.encode_to(out);
        encode_bytes(&self.payload, out);
        self.signature.encode_to(out);
    }
}

impl Decode for Transaction {
    /// Also computes the [id](Transaction::id), from the bytes just read:
    /// every node asks for the id of every transaction it receives, and the
    /// encoding is canonical (decoding accepts exactly the output of
    /// [`Encode`]), so hashing the input is hashing `to_bytes()` without
    /// encoding it again.
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let input = r.unread();
        let tx = Transaction {
            chain_id: ChainId::decode_from(r)?,
            sender: PublicKey::decode_from(r)?,
            nonce: u64::decode_from(r)?,
            payload: Arc::from(r.bytes("transaction payload", MAX_PAYLOAD_LEN)?),
            signature: Signature::decode_from(r)?,
            id: OnceLock::new(),
        };
        // The reader only moves forward, so this is the prefix just read.
        let used = input.len().saturating_sub(r.remaining());
        let encoding = input.get(..used).ok_or(DecodeError::UnexpectedEnd {
            needed: used,
            remaining: input.len(),
        })?;
        let _ = tx.id.set(tx.suite().hash(Domain::Transaction, encoding));
        Ok(tx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::SecretKey;
    use proptest::prelude::*;

    fn key(i: u8) -> SecretKey {
        SecretKey::from_seed(&[i; 32])
    }

    fn chain(s: &str) -> ChainId {
        ChainId::new(s).unwrap()
    }

    #[test]
    fn cached_id_is_the_hash_of_the_encoding() {
        let tx = Transaction::new_signed(chain("main"), &key(1), 3, b"pay".to_vec()).unwrap();
        let expected = tx.suite().hash(Domain::Transaction, &tx.to_bytes());
        assert_eq!(tx.id(), expected);
        assert_eq!(tx.id(), expected, "second call, from the cache");
        assert_eq!(tx.clone().id(), expected);
        let decoded = Transaction::decode(&tx.to_bytes()).unwrap();
        assert_eq!(decoded, tx, "equality ignores the cache");
        assert_eq!(decoded.id(), expected);
        let other = Transaction::new_signed(chain("main"), &key(1), 4, b"pay".to_vec()).unwrap();
        assert_ne!(other.id(), expected);
    }

    #[test]
    fn sign_verify_and_replay_protection() {
        let k = key(1);
        let tx = Transaction::new_signed(chain("main"), &k, 7, b"hello".to_vec()).unwrap();
        tx.verify_signature().unwrap();
        assert_eq!(tx.encoded_len(), tx.to_bytes().len());
        assert!(tx.check_chain(&chain("main")).is_ok());
        assert!(matches!(
            tx.check_chain(&chain("side")),
            Err(TxError::WrongChain { .. })
        ));
        // The same signature over another chain, nonce or payload fails.
        let mut other = tx.clone();
        other.chain_id = chain("side");
        assert!(matches!(
            other.verify_signature(),
            Err(TxError::BadSignature(_))
        ));
        let mut other = tx.clone();
        other.nonce = 8;
        assert!(other.verify_signature().is_err());
        let mut other = tx.clone();
        let mut longer = other.payload.to_vec();
        longer.push(0);
        other.payload = longer.into();
        assert!(other.verify_signature().is_err());
        let mut other = tx.clone();
        other.sender = key(2).public_key();
        assert!(other.verify_signature().is_err());
    }

    #[test]
    fn oversized_payload_rejected() {
        let k = key(1);
        let big = vec![0u8; MAX_PAYLOAD_LEN + 1];
        assert!(matches!(
            Transaction::new_signed(chain("main"), &k, 0, big),
            Err(TxError::PayloadTooLarge { .. })
        ));
        let mut bytes = Transaction::new_signed(chain("main"), &k, 0, vec![1; 4])
            .unwrap()
            .to_bytes();
        bytes.resize(MAX_TX_ENCODED_LEN + 1, 0);
        assert!(matches!(
            Transaction::decode(&bytes),
            Err(TxError::Malformed(DecodeError::InputTooLarge { .. }))
        ));
    }

    #[test]
    fn ids_of_transactions_decoded_in_sequence_are_their_own() {
        // Several transactions read from one input (as in a block): each
        // id covers exactly its own bytes.
        let txs: Vec<Transaction> = (0..4u8)
            .map(|i| {
                Transaction::new_signed(
                    chain("main"),
                    &key(i),
                    u64::from(i),
                    vec![i; usize::from(i) * 3],
                )
                .unwrap()
            })
            .collect();
        let mut bytes = Vec::new();
        for tx in &txs {
            tx.encode_to(&mut bytes);
        }
        let mut r = Reader::new(&bytes);
        for tx in &txs {
            let back = Transaction::decode_from(&mut r).unwrap();
            assert_eq!(
                back.id(),
                tx.suite().hash(Domain::Transaction, &tx.to_bytes())
            );
        }
        assert!(r.finish().is_ok());
    }

    proptest! {
        #[test]
        fn codec_round_trip_and_mutations(nonce in any::<u64>(), payload in proptest::collection::vec(any::<u8>(), 0..300), seed in any::<u8>()) {
            let tx = Transaction::new_signed(chain("hz-main"), &key(seed), nonce, payload).unwrap();
            let bytes = tx.to_bytes();
            let back = Transaction::decode(&bytes).unwrap();
            prop_assert_eq!(&back, &tx);
            prop_assert_eq!(back.to_bytes(), bytes.clone());
            // The id a decode computes from its input is the id of the
            // encoding.
            prop_assert_eq!(back.id(), tx.suite().hash(Domain::Transaction, &bytes));
            // Every truncation is refused.
            for cut in 0..bytes.len() {
                prop_assert!(Transaction::decode(&bytes[..cut]).is_err());
            }
            // Every single-byte change either fails to decode or fails to verify.
            for i in (0..bytes.len()).step_by(7) {
                let mut m = bytes.clone();
                m[i] ^= 0x5a;
                if let Ok(t) = Transaction::decode(&m) {
                    prop_assert!(t.verify_signature().is_err(), "mutation at {} verified", i);
                    // Canonical: what decoded is what re-encodes, so the id
                    // taken from the input is the id of the transaction.
                    prop_assert_eq!(t.to_bytes(), m.clone());
                    prop_assert_eq!(t.id(), t.suite().hash(Domain::Transaction, &m));
                }
            }
        }
    }
}
