//! A custom DApp: service halls record that a service was delivered, as a
//! digest — never the personal data itself — so that any department can
//! later check that the record exists and when it was made.
//!
//! It is an ordinary [`Application`]: a payload format, a `check_tx` that
//! refuses what can never execute, an `execute_block` that writes state,
//! and a `query_key` mapping queries to state keys (which the node answers
//! with proofs).
//!
//! ```
//! use govchain_examples::service_records::ServiceRecords;
//! use govchain_core::hash::{Domain, Hash};
//! let payload = ServiceRecords::payload("residence-permit", &Hash::of(Domain::Test, b"case 1"))?;
//! assert!(payload.len() < 128);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use govchain_core::app::{
    Application, BlockContext, ExecutionError, NonceTracker, QueryError, Receipt, StateOverlay,
    StateView, TxRejection,
};
use govchain_core::codec::{decode_exact, Encode};
use govchain_core::hash::Hash;
use govchain_core::tx::Transaction;

/// Longest service name.
pub const MAX_SERVICE_LEN: usize = 64;

/// Receipt code of a transaction whose payload or nonce is bad.
pub const CODE_REFUSED: u32 = 1;
/// Receipt code of a record that already exists.
pub const CODE_DUPLICATE: u32 = 2;

/// The service-records DApp. See the [module docs](self).
#[derive(Debug, Clone, Copy, Default)]
pub struct ServiceRecords;

impl ServiceRecords {
    /// The payload recording that `service` was delivered, identified by
    /// `digest` (a salted hash the hall keeps with its case file).
    pub fn payload(service: &str, digest: &Hash) -> Result<Vec<u8>, TxRejection> {
        if service.is_empty() || service.len() > MAX_SERVICE_LEN {
            return Err(TxRejection::InvalidPayload {
                reason: format!("service name must be 1..={MAX_SERVICE_LEN} bytes"),
            });
        }
        Ok((service.as_bytes().to_vec(), *digest).to_bytes())
    }

    /// The state key of the record `digest`.
    pub fn record_key(digest: &Hash) -> Vec<u8> {
        let mut k = b"svc/record/".to_vec();
        k.extend_from_slice(digest.as_bytes());
        k
    }

    fn decode(payload: &[u8]) -> Result<(Vec<u8>, Hash), TxRejection> {
        let (service, digest): (Vec<u8>, Hash) = decode_exact(payload, MAX_SERVICE_LEN + 64)
            .map_err(|e| TxRejection::InvalidPayload {
                reason: e.to_string(),
            })?;
        if service.is_empty() || service.len() > MAX_SERVICE_LEN {
            return Err(TxRejection::InvalidPayload {
                reason: "bad service name".into(),
            });
        }
        Ok((service, digest))
    }
}

impl Application for ServiceRecords {
    fn name(&self) -> &str {
        "service-records"
    }

    fn check_tx(&self, state: &dyn StateView, tx: &Transaction) -> Result<(), TxRejection> {
        Self::decode(tx.payload())?;
        NonceTracker::check_not_replayed(state, tx)
    }

    fn execute_block(
        &self,
        ctx: &BlockContext,
        state: &mut StateOverlay<'_>,
        txs: &[Transaction],
    ) -> Result<Vec<Receipt>, ExecutionError> {
        let mut receipts = Vec::with_capacity(txs.len());
        for tx in txs {
            let refused = |e: TxRejection| Receipt {
                tx_id: tx.id(),
                code: CODE_REFUSED,
                data: e.to_string().into_bytes(),
            };
            if let Err(e) = NonceTracker::check_and_advance(state, tx) {
                receipts.push(refused(e));
                continue;
            }
            let (service, digest) = match Self::decode(tx.payload()) {
                Ok(p) => p,
                Err(e) => {
                    receipts.push(refused(e));
                    continue;
                }
            };
            let key = Self::record_key(&digest);
            if state.get(&key)?.is_some() {
                receipts.push(Receipt {
                    tx_id: tx.id(),
                    code: CODE_DUPLICATE,
                    data: Vec::new(),
                });
                continue;
            }
            // The record: service, recording department's key, height.
            let mut record = (service, tx.sender().clone()).to_bytes();
            ctx.height.encode_to(&mut record);
            state.put(key, record);
            receipts.push(Receipt::ok(tx.id()));
        }
        Ok(receipts)
    }

    fn query_key(&self, request: &[u8]) -> Result<Vec<u8>, QueryError> {
        let digest: Hash = decode_exact(request, 32).map_err(|e| QueryError::BadRequest {
            reason: e.to_string(),
        })?;
        Ok(Self::record_key(&digest))
    }
}
