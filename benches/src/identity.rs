//! The `identity` area: `govchain-identity`'s verifier, issuance and status
//! lists, each against a baseline measured in the same run.
//!
//! # Setup
//! Everything runs on [`Sandbox`], the crate's in-memory identity chain with
//! the issue's scenario: a pinned provincial root accredits a city bureau,
//! which publishes the resident-identity schema (one always-disclosed claim
//! and five selectively disclosable ones), registers signing key 0 and
//! creates a status list of 131,072 entries. Every block is real (signed
//! transactions, certified headers) and the hall's light client has
//! verified it, so the header certificate is already trusted when a
//! presentation arrives.
//!
//! # Rows
//! - `verify_presentation_5_disclosures` (`us`): one [`Verifier::verify`]
//!   from the encoded bytes, as a hall receives them: strict decode, 4 state
//!   proofs against the trusted header (schema, issuer, its root — the
//!   issuer chain — and the status page), the issuer chain and key checks,
//!   status, validity, the 5 disclosures against the credential's digests,
//!   holder binding (audience, single-use nonce, time) and the issuer and
//!   holder signatures, then the audit record. Nonces are single-use, so
//!   each round first prepares 200 fresh presentations (the hall's
//!   challenge, the wallet's binding signature, the encoding) outside the
//!   timed part, then times verifying them; 16 holder-bound credentials of
//!   different citizens take turns. Two baselines, on the very (key,
//!   message, signature) pairs the presentations carry, timed in the same
//!   rounds: `ed25519_verify_x2` — the 2 Ed25519 verifications the verifier
//!   must do, as two [`verify`] calls (**goal: ratio ≤ 1.5**); and
//!   `verify_batch_2` — core's [`verify_batch`] on those 2 items, which is
//!   how the verifier checks them.
//! - `verify_presentation_5_disclosures_sm2` (`us`): the same measurement
//!   on an sm2-sm3 sandbox chain ([`Sandbox::with_suite`]): SM2 issuer and
//!   holder keys, SM3 state proofs, schema id, disclosure digests and
//!   signing messages. Baselines as above on its own pairs: `sm2_verify_x2`
//!   (two SM2 [`verify`] calls) and `verify_batch_2_sm2` ([`verify_batch`]
//!   of those 2 SM2 items). Section `verify_sm2`.
//! - `verify_presentation_2cores` (`presentation/s`): presentations verified
//!   per second on every core of the rayon pool (one [`Verifier`] per core,
//!   each with its own nonces and audit log, sharing one light client); 1,000
//!   fresh presentations per core per round. Baselines:
//!   `sig_bound_2_verifies_2cores` — pairs of [`verify`] calls per second on
//!   the same cores, i.e. the rate if a presentation cost only its two
//!   signature checks; and `verify_presentation_1core` — the single-core
//!   rate (1 / the first row's value), so the ratio is the scaling (2 is
//!   ideal).
//! - `issue_credentials_100k` (`credential/s`): [`CredentialIssuer::issue`](govchain_identity::credential::CredentialIssuer::issue)
//!   of 100,000 resident credentials on one thread, each with a fresh status
//!   index from a [`StatusAllocator`] (a list of 1,048,576 entries, so the
//!   batch fits in one list), fresh salts and decoys, a holder key (1,000
//!   prepared holder keys take turns: the holder makes its key, not the
//!   issuer) and the issuer's signature. The requests (claims) are built
//!   before the clock starts. Baseline `ed25519_sign_rate`: Ed25519
//!   signatures per second of 32-byte messages with the same kind of key on
//!   one thread, in the same rounds — the rate if issuing cost only its
//!   signature.
//! - `status_update_10k_revocations_execute` (`ms`): the identity
//!   application's `execute_block` of one `UpdateStatus` transaction
//!   revoking 10,000 random entries (distinct, sorted, as the transaction
//!   requires) of the 131,072-entry list: nonce check, decode of the 50 KB
//!   payload, authorisation, read, change and write of every touched page
//!   (all 128 pages, as 10,000 random entries hit every page), over a
//!   [`TreeStateView`] of a sparse Merkle tree holding the sandbox's state —
//!   what a host runs. Baselines, in the same rounds:
//!   `smt_apply_touched_pages` — [`SparseMerkleTree::apply_batch`] of the
//!   transaction's writes (128 pages and the nonce) on that tree, the
//!   host's unavoidable cost of committing them; and `blake3_touched_pages`
//!   — BLAKE3 of the 128 new encoded pages, the least any authenticated
//!   state must do with them.
//! - `status_update_10k_revocations_execute_and_commit` (`ms`): the same
//!   execution followed by the host's commit of its writes (key hashing and
//!   `apply_batch`), as `ChainBuilder::produce_block` does; against
//!   `smt_apply_touched_pages`.
//!
//! The transaction's signature is not in the status rows (the host verifies
//! it before execution: one Ed25519 verification, reported by `core`).
//!
//! # Environment
//! - `GOVCHAIN_PERF_ONLY`: comma-separated sections to run (`verify`,
//!   `verify_sm2`, `throughput`, `issue`, `status`, `breakdown`); all but `breakdown` by
//!   default. `breakdown` prints on stderr where the time of one
//!   verification goes, step by step with the crate's public functions.
//! - `GOVCHAIN_IDENTITY_CREDENTIALS`: credentials per issuance round
//!   (default 100,000).

use std::hint::black_box;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use govchain_core::app::{
    Application, BlockContext, NonceTracker, Receipt, StateOverlay, TreeStateView,
};
use govchain_core::codec::{decode_exact, Encode};
use govchain_core::crypto::{
    verify, verify_batch, verify_batch_sequential, BatchItem, CryptoSuite, PublicKey, SecretKey,
    Signature, Signer,
};
use govchain_core::hash::Hash;
use govchain_core::smt::{KeyHash, MemoryNodeStore, SparseMerkleTree};
use govchain_core::tx::Transaction;
use govchain_core::types::{Height, Timestamp};
use govchain_identity::app::{IdentityApp, IdentityOp};
use govchain_identity::credential::{HeldCredential, IssuanceRequest, StatusRef};
use govchain_identity::ids::{KeyId, Region, StatusListId};
use govchain_identity::issuer::{IssuerRecord, MAX_ISSUER_RECORD_LEN};
use govchain_identity::presentation::{BindingRequest, Presentation, StapledProofs};
use govchain_identity::sandbox::{Sandbox, CREDENTIAL_VALIDITY_MS};
use govchain_identity::schema::{SchemaRecord, MAX_SCHEMA_RECORD_LEN};
use govchain_identity::state::{issuer_key, schema_key, status_page_key, GENESIS_KEY};
use govchain_identity::status::{
    EntryStatus, StatusAllocator, StatusPage, StatusUpdate, ENTRIES_PER_PAGE, MAX_LIST_CAPACITY,
    MAX_STATUS_PAGE_LEN, MIN_LIST_CAPACITY,
};
use govchain_identity::verifier::{Policy, Verifier};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use rayon::prelude::*;

use crate::{progress, Row};

const AREA: &str = "identity";

/// The five selectively disclosable claims of the resident schema: every
/// presentation discloses all of them.
pub const DISCLOSED: [&str; 5] = ["name", "id_number", "birth_date", "address", "over_18"];

/// The hall the presentations are made for.
pub const HALL: &str = "hall-bench";

/// One holder-bound credential with its holder key and stapled proofs.
struct Holder {
    held: HeldCredential,
    key: SecretKey,
    proofs: StapledProofs,
}

/// The issuer and holder signature checks of one presentation.
pub struct SignaturePair {
    keys: [PublicKey; 2],
    messages: [Hash; 2],
    signatures: [Signature; 2],
}

impl SignaturePair {
    /// The two checks as batch items.
    pub fn items(&self) -> [BatchItem<'_>; 2] {
        [0, 1].map(|i| {
            BatchItem::new(
                &self.keys[i],
                self.messages[i].as_bytes(),
                &self.signatures[i],
            )
        })
    }

    /// Both checks as two single [`verify`] calls.
    pub fn verify_both(&self) -> bool {
        (0..2).all(|i| {
            verify(
                black_box(&self.keys[i]),
                black_box(self.messages[i].as_bytes()),
                black_box(&self.signatures[i]),
            )
            .is_ok()
        })
    }
}

/// A sandbox chain with holder-bound credentials and their proofs, from
/// which fresh presentations are made for a hall.
pub struct VerifyFixture {
    sandbox: Sandbox,
    holders: Vec<Holder>,
    policy: Policy,
}

impl VerifyFixture {
    /// `credentials` holder-bound credentials of distinct synthetic
    /// citizens, with proofs against the latest (verified) header.
    pub fn new(credentials: usize, seed: u64) -> anyhow::Result<Self> {
        Self::with_suite(CryptoSuite::Ed25519Blake3, credentials, seed)
    }

    /// [`VerifyFixture::new`] on a sandbox chain of `suite`, with holder
    /// keys of its algorithm.
    pub fn with_suite(suite: CryptoSuite, credentials: usize, seed: u64) -> anyhow::Result<Self> {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let mut sandbox = Sandbox::with_suite(suite)?;
        let mut holders = Vec::with_capacity(credentials);
        for citizen in 0..credentials.max(1) {
            let key = SecretKey::generate_for(suite, &mut rng);
            let held = sandbox.issue(&mut rng, citizen as u64, Some(key.public_key()))?;
            let proofs = sandbox.proofs(&held)?;
            holders.push(Holder { held, key, proofs });
        }
        let policy = sandbox.policy(HALL)?;
        let fixture = VerifyFixture {
            sandbox,
            holders,
            policy,
        };
        // Every credential must verify, or the rows would time rejections.
        let mut hall = fixture.verifier()?;
        for i in 0..fixture.holders.len() {
            let bytes = fixture.present(&mut hall, &mut rng, i)?;
            fixture
                .sandbox
                .client()
                .header(fixture.holders[i].proofs.height)
                .map_err(|e| anyhow!("proof header: {e}"))?;
            hall.verify(fixture.sandbox.client(), &bytes, fixture.now())
                .map_err(|e| anyhow!("a prepared presentation was rejected: {e}"))?;
        }
        Ok(fixture)
    }

    /// The hall's clock: the time of the latest block.
    pub fn now(&self) -> Timestamp {
        self.sandbox.now()
    }

    /// A fresh verifier for the hall (no nonces, empty audit log).
    pub fn verifier(&self) -> anyhow::Result<Verifier> {
        Ok(Verifier::new(self.policy.clone())?)
    }

    /// A fresh presentation of credential `i` (modulo the number of
    /// credentials) disclosing all five claims, bound to a new challenge of
    /// `hall`, encoded.
    pub fn present<R: RngCore + rand_chacha::rand_core::CryptoRng>(
        &self,
        hall: &mut Verifier,
        rng: &mut R,
        i: usize,
    ) -> anyhow::Result<Vec<u8>> {
        let h = &self.holders[i % self.holders.len()];
        let nonce = hall.challenge(rng, self.now());
        let binding = BindingRequest {
            holder: &h.key,
            nonce,
            audience: self.policy.hall.clone(),
            time: self.now(),
        };
        Ok(h.held
            .present(&DISCLOSED, Some(binding), h.proofs.clone())?
            .to_bytes())
    }

    /// `n` fresh presentations for `hall`, credentials taking turns.
    pub fn prepare(&self, hall: &mut Verifier, rng: &mut ChaCha20Rng, n: usize) -> Vec<Vec<u8>> {
        (0..n)
            .filter_map(|i| match self.present(hall, rng, i) {
                Ok(b) => Some(b),
                Err(e) => {
                    progress(&format!("identity: presentation failed: {e:#}"));
                    None
                }
            })
            .collect()
    }

    /// Verifies each presentation with `hall`; returns how many were
    /// accepted.
    pub fn verify_all(&self, hall: &mut Verifier, presentations: &[Vec<u8>]) -> usize {
        let client = self.sandbox.client();
        let now = self.now();
        presentations
            .iter()
            .filter(|b| hall.verify(client, b, now).is_ok())
            .count()
    }

    /// The issuer and holder signature checks of one presentation of each
    /// credential (the same keys, messages and signatures as a hall checks).
    pub fn signature_pairs(&self) -> anyhow::Result<Vec<SignaturePair>> {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let mut hall = self.verifier()?;
        let issuer_key = self
            .sandbox
            .signing_key(KeyId::new(0))
            .ok_or_else(|| anyhow!("the sandbox has no key 0"))?
            .public_key();
        let mut pairs = Vec::with_capacity(self.holders.len());
        for (i, h) in self.holders.iter().enumerate() {
            let p = Presentation::decode(&self.present(&mut hall, &mut rng, i)?)?;
            let b = p
                .binding
                .as_ref()
                .ok_or_else(|| anyhow!("presentation without binding"))?;
            let pair = SignaturePair {
                keys: [issuer_key.clone(), h.key.public_key()],
                messages: [
                    p.credential.body.signing_message(),
                    p.binding_message(&b.nonce, &b.audience, b.time),
                ],
                signatures: [p.credential.signature, b.signature],
            };
            if !pair.verify_both() {
                bail!("the signature pair of credential {i} does not verify");
            }
            pairs.push(pair);
        }
        Ok(pairs)
    }
}

/// Issues resident credentials for the sandbox bureau.
pub struct IssueFixture {
    sandbox: Sandbox,
    holders: Vec<PublicKey>,
}

impl IssueFixture {
    /// The sandbox bureau with 1,000 holder keys.
    pub fn new(seed: u64) -> anyhow::Result<Self> {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let holders = (0..1_000)
            .map(|_| SecretKey::generate(&mut rng).public_key())
            .collect();
        Ok(IssueFixture {
            sandbox: Sandbox::new()?,
            holders,
        })
    }

    /// `n` issuance requests for citizens `first..first + n` (status index
    /// left 0: [`issue_all`](Self::issue_all) draws it).
    pub fn requests(&self, first: u64, n: usize) -> anyhow::Result<Vec<IssuanceRequest>> {
        let now = self.sandbox.now().get();
        let jurisdiction = Region::new("CN-33-01")?;
        Ok((0..n as u64)
            .map(|i| IssuanceRequest {
                claims: Sandbox::citizen_claims(first + i),
                holder: Some(self.holders[(i as usize) % self.holders.len()].clone()),
                valid_from: Timestamp::new(now - 1_000),
                valid_until: Timestamp::new(now - 1_000 + CREDENTIAL_VALIDITY_MS),
                jurisdiction: jurisdiction.clone(),
                status: StatusRef {
                    list: Sandbox::LIST,
                    index: 0,
                },
            })
            .collect())
    }

    /// A status allocator over a fresh list of 1,048,576 entries.
    pub fn allocator() -> StatusAllocator {
        StatusAllocator::new(StatusListId::new(2), MAX_LIST_CAPACITY)
    }

    /// Issues every request with a fresh status index from `allocator`.
    pub fn issue_all(
        &self,
        rng: &mut ChaCha20Rng,
        allocator: &mut StatusAllocator,
        requests: Vec<IssuanceRequest>,
    ) -> anyhow::Result<Vec<HeldCredential>> {
        let issuer = self.sandbox.issuer();
        let list = allocator.list();
        requests
            .into_iter()
            .map(|mut r| {
                r.status = StatusRef {
                    list,
                    index: allocator.allocate(rng)?,
                };
                Ok(issuer.issue(rng, r)?)
            })
            .collect()
    }

    /// The bureau's signing key (for the signing baseline).
    pub fn signing_key(&self) -> anyhow::Result<&SecretKey> {
        self.sandbox
            .signing_key(KeyId::new(0))
            .ok_or_else(|| anyhow!("the sandbox has no key 0"))
    }
}

/// State writes of an execution: key and new value (`None` deletes).
pub type Writes = Vec<(Vec<u8>, Option<Vec<u8>>)>;

/// One status-update transaction over a sparse Merkle tree holding the
/// sandbox's state, ready to execute again and again (execution writes to
/// an overlay; the tree is not changed).
pub struct StatusFixture {
    app: IdentityApp,
    store: MemoryNodeStore,
    ctx: BlockContext,
    tx: Transaction,
    smt_updates: Vec<(KeyHash, Option<Vec<u8>>)>,
    new_pages: Vec<Vec<u8>>,
}

impl StatusFixture {
    /// The sandbox after setup, its state copied into a fresh tree (version
    /// 1), and one transaction of the bureau revoking `revocations` random
    /// entries of its list.
    pub fn new(revocations: usize, seed: u64) -> anyhow::Result<Self> {
        let sandbox = Sandbox::new()?;
        let chain = sandbox.chain();
        let height = chain.height();
        let mut keys: Vec<Vec<u8>> = vec![
            GENESIS_KEY.to_vec(),
            issuer_key(&Sandbox::root_id()),
            issuer_key(&Sandbox::bureau_id()),
            schema_key(&sandbox.schema_id()),
            NonceTracker::key(&sandbox.root_key().public_key()),
            NonceTracker::key(&sandbox.bureau_key().public_key()),
        ];
        keys.extend(
            (0..MIN_LIST_CAPACITY / ENTRIES_PER_PAGE).map(|p| status_page_key(Sandbox::LIST, p)),
        );
        let mut entries = Vec::with_capacity(keys.len());
        for k in &keys {
            let (value, _) = chain.state_proof(height, k)?;
            let value = value.ok_or_else(|| anyhow!("sandbox state lacks a key"))?;
            entries.push((
                KeyHash::of(govchain_core::hash::HashFunction::Blake3, k),
                Some(value),
            ));
        }
        let store = MemoryNodeStore::new();
        let (_, batch) = SparseMerkleTree::new(&store, govchain_core::hash::HashFunction::Blake3)
            .apply_batch(None, 1, &entries)?;
        store.write_batch(batch)?;

        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let mut allocator = StatusAllocator::new(Sandbox::LIST, MIN_LIST_CAPACITY);
        let mut indexes = (0..revocations)
            .map(|_| allocator.allocate(&mut rng))
            .collect::<Result<Vec<u32>, _>>()?;
        indexes.sort_unstable();
        let op = IdentityOp::UpdateStatus {
            issuer: Sandbox::bureau_id(),
            list: Sandbox::LIST,
            updates: indexes
                .iter()
                .map(|&index| StatusUpdate {
                    index,
                    status: EntryStatus::Revoked,
                })
                .collect(),
        };
        let sender = sandbox.bureau_key();
        let view = TreeStateView::new(&store, govchain_core::hash::HashFunction::Blake3, Some(1));
        let nonce = NonceTracker::next(&view, &sender.public_key())?;
        let tx = Transaction::new_signed(chain.chain_id().clone(), sender, nonce, op.to_bytes())?;
        let ctx = BlockContext {
            suite: chain.suite(),
            chain_id: chain.chain_id().clone(),
            height: Height::new(height.get() + 1),
            time: Timestamp::new(sandbox.now().get() + 1_000),
            proposer: chain
                .validator_set()
                .validators()
                .first()
                .ok_or_else(|| anyhow!("no validators"))?
                .public_key
                .clone(),
        };
        let mut fixture = StatusFixture {
            app: chain.app().clone(),
            store,
            ctx,
            tx,
            smt_updates: Vec::new(),
            new_pages: Vec::new(),
        };
        let writes = fixture.execute()?;
        let pages: Vec<StatusPage> = writes
            .iter()
            .filter(|(k, _)| k.starts_with(b"id/status/"))
            .filter_map(|(_, v)| v.as_deref())
            .map(|v| decode_exact(v, MAX_STATUS_PAGE_LEN))
            .collect::<Result<_, _>>()?;
        let revoked: usize = pages
            .iter()
            .map(|p| {
                (0..ENTRIES_PER_PAGE)
                    .filter(|i| p.get(p.page * ENTRIES_PER_PAGE + i) == Ok(EntryStatus::Revoked))
                    .count()
            })
            .sum();
        if revoked != revocations || writes.len() != pages.len() + 1 {
            bail!(
                "the update wrote {} keys, {} pages, {revoked} revoked entries",
                writes.len(),
                pages.len()
            );
        }
        fixture.new_pages = pages.iter().map(Encode::to_bytes).collect();
        fixture.smt_updates = writes
            .into_iter()
            .map(|(k, v)| {
                (
                    KeyHash::of(govchain_core::hash::HashFunction::Blake3, &k),
                    v,
                )
            })
            .collect();
        Ok(fixture)
    }

    /// Pages the transaction touches.
    pub fn pages_touched(&self) -> usize {
        self.new_pages.len()
    }

    /// Executes the transaction as a block of one over the tree; returns
    /// its writes.
    pub fn execute(&self) -> anyhow::Result<Writes> {
        let view = TreeStateView::new(
            &self.store,
            govchain_core::hash::HashFunction::Blake3,
            Some(1),
        );
        let mut overlay = StateOverlay::new(&view);
        let receipts =
            self.app
                .execute_block(&self.ctx, &mut overlay, std::slice::from_ref(&self.tx))?;
        if let Some(r) = receipts.iter().find(|r| !r.is_ok()) {
            bail!(
                "status update failed: code {}: {}",
                r.code,
                String::from_utf8_lossy(&r.data)
            );
        }
        debug_assert!(receipts.iter().all(Receipt::is_ok));
        Ok(overlay.into_writes())
    }

    /// Executes, then commits the writes to a new tree version as a host
    /// does (the batch is computed, not written); returns the new root.
    pub fn execute_and_commit(&self) -> anyhow::Result<Hash> {
        let updates: Vec<(KeyHash, Option<Vec<u8>>)> = self
            .execute()?
            .into_iter()
            .map(|(k, v)| {
                (
                    KeyHash::of(govchain_core::hash::HashFunction::Blake3, &k),
                    v,
                )
            })
            .collect();
        let (root, _) =
            SparseMerkleTree::new(&self.store, govchain_core::hash::HashFunction::Blake3)
                .apply_batch(Some(1), 2, &updates)?;
        Ok(root)
    }

    /// Baseline: `apply_batch` of the transaction's writes (prepared).
    pub fn smt_apply(&self) -> anyhow::Result<Hash> {
        let (root, _) =
            SparseMerkleTree::new(&self.store, govchain_core::hash::HashFunction::Blake3)
                .apply_batch(Some(1), 2, &self.smt_updates)?;
        Ok(root)
    }

    /// Baseline: BLAKE3 of every new encoded page.
    pub fn hash_pages(&self) {
        for p in &self.new_pages {
            black_box(blake3::hash(black_box(p)));
        }
    }
}

// ------------------------------------------------------------------ report

fn section(name: &str) -> bool {
    match std::env::var("GOVCHAIN_PERF_ONLY") {
        Ok(v) if !v.trim().is_empty() => v.split(',').any(|s| s.trim() == name),
        _ => name != "breakdown",
    }
}

fn timed<F: FnOnce()>(f: F) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn spread(v: &[f64]) -> String {
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{lo:.3}..{hi:.3}")
}

/// Verification latency and the two signature baselines, in µs.
fn report_verify(
    fixture: &VerifyFixture,
    pairs: &[SignaturePair],
    suite: CryptoSuite,
) -> anyhow::Result<f64> {
    const PER_ROUND: usize = 200;
    const ROUNDS: usize = 11;
    let mut rng = ChaCha20Rng::seed_from_u64(11);
    let mut hall = fixture.verifier()?;
    let items: Vec<[BatchItem<'_>; 2]> = pairs.iter().map(SignaturePair::items).collect();
    let (mut full, mut two, mut batch2) = (vec![], vec![], vec![]);
    // Warm-up round, untimed.
    let warm = fixture.prepare(&mut hall, &mut rng, PER_ROUND);
    fixture.verify_all(&mut hall, &warm);
    for _ in 0..ROUNDS {
        let fresh = fixture.prepare(&mut hall, &mut rng, PER_ROUND);
        let mut accepted = 0;
        let t = timed(|| accepted = fixture.verify_all(&mut hall, black_box(&fresh)));
        if accepted != fresh.len() || fresh.len() != PER_ROUND {
            bail!("{accepted} of {} presentations accepted", fresh.len());
        }
        full.push(t.as_secs_f64() * 1e6 / PER_ROUND as f64);
        let mut ok = true;
        let t = timed(|| {
            for i in 0..PER_ROUND {
                ok &= pairs[i % pairs.len()].verify_both();
            }
        });
        two.push(t.as_secs_f64() * 1e6 / PER_ROUND as f64);
        let t = timed(|| {
            for i in 0..PER_ROUND {
                ok &= verify_batch(black_box(&items[i % items.len()])).is_ok();
            }
        });
        batch2.push(t.as_secs_f64() * 1e6 / PER_ROUND as f64);
        if !ok {
            bail!("a baseline signature was rejected");
        }
    }
    progress(&format!(
        "identity: verify {} us, 2 x verify {} us, verify_batch(2) {} us (round ranges); audit log {} records",
        spread(&full),
        spread(&two),
        spread(&batch2),
        hall.audit_log().records().len()
    ));
    let (full, two, batch2) = (median(&mut full), median(&mut two), median(&mut batch2));
    let (metric, single, batch) = match suite {
        CryptoSuite::Sm2Sm3 => (
            "verify_presentation_5_disclosures_sm2",
            "sm2_verify_x2",
            "verify_batch_2_sm2",
        ),
        _ => (
            "verify_presentation_5_disclosures",
            "ed25519_verify_x2",
            "verify_batch_2",
        ),
    };
    Row::new(AREA, metric, full, "us", single, two).emit();
    Row::new(AREA, metric, full, "us", batch, batch2).emit();
    Ok(full)
}

/// Presentations per second on every core, against pairs of verifications
/// per second on the same cores.
fn report_throughput(
    fixture: &VerifyFixture,
    pairs: &[SignaturePair],
    single_us: Option<f64>,
) -> anyhow::Result<()> {
    const PER_LANE: usize = 1_000;
    const ROUNDS: usize = 5;
    let lanes_n = rayon::current_num_threads().max(1);
    let mut rng = ChaCha20Rng::seed_from_u64(13);
    let mut lanes: Vec<(Verifier, Vec<Vec<u8>>)> = (0..lanes_n)
        .map(|_| Ok((fixture.verifier()?, Vec::new())))
        .collect::<anyhow::Result<_>>()?;
    let (mut rates, mut bounds) = (vec![], vec![]);
    for round in 0..=ROUNDS {
        for (hall, batch) in lanes.iter_mut() {
            *batch = fixture.prepare(hall, &mut rng, PER_LANE);
        }
        let mut accepted = 0;
        let t = timed(|| {
            accepted = lanes
                .par_iter_mut()
                .map(|(hall, batch)| fixture.verify_all(hall, batch))
                .sum::<usize>();
        });
        if accepted != lanes_n * PER_LANE {
            bail!(
                "{accepted} of {} presentations accepted",
                lanes_n * PER_LANE
            );
        }
        let mut ok = true;
        let tb = timed(|| {
            ok = (0..lanes_n)
                .into_par_iter()
                .all(|lane| (0..PER_LANE).all(|i| pairs[(i + lane) % pairs.len()].verify_both()));
        });
        if !ok {
            bail!("a baseline signature was rejected");
        }
        if round > 0 {
            rates.push(accepted as f64 / t.as_secs_f64());
            bounds.push((lanes_n * PER_LANE) as f64 / tb.as_secs_f64());
        }
    }
    progress(&format!(
        "identity: {lanes_n} lanes: {} presentation/s, bound {} (round ranges)",
        spread(&rates),
        spread(&bounds)
    ));
    let (rate, bound) = (median(&mut rates), median(&mut bounds));
    let metric = format!("verify_presentation_{lanes_n}cores");
    Row::new(
        AREA,
        metric.clone(),
        rate,
        "presentation/s",
        format!("sig_bound_2_verifies_{lanes_n}cores"),
        bound,
    )
    .emit();
    if let Some(us) = single_us {
        Row::new(
            AREA,
            metric,
            rate,
            "presentation/s",
            "verify_presentation_1core",
            1e6 / us,
        )
        .emit();
    }
    Ok(())
}

fn report_issue() -> anyhow::Result<()> {
    const ROUNDS: usize = 3;
    const SIGN_N: usize = 20_000;
    let n: usize = std::env::var("GOVCHAIN_IDENTITY_CREDENTIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let fixture = IssueFixture::new(17)?;
    let key = fixture.signing_key()?;
    let mut rng = ChaCha20Rng::seed_from_u64(19);
    let messages: Vec<[u8; 32]> = (0..SIGN_N)
        .map(|_| {
            let mut m = [0u8; 32];
            rng.fill_bytes(&mut m);
            m
        })
        .collect();
    let (mut rates, mut sign_rates) = (vec![], vec![]);
    for round in 0..=ROUNDS {
        // Round 0 is a 10% warm-up.
        let count = if round == 0 { (n / 10).max(1) } else { n };
        let requests = fixture.requests(round as u64 * n as u64, count)?;
        let mut allocator = IssueFixture::allocator();
        let mut out = Ok(Vec::new());
        let t = timed(|| out = fixture.issue_all(&mut rng, &mut allocator, requests));
        let issued = out?;
        if issued.len() != count {
            bail!("{} of {count} credentials issued", issued.len());
        }
        drop(issued);
        let mut sigs = 0u8;
        let ts = timed(|| {
            for m in &messages {
                sigs ^= key.sign(black_box(m)).as_bytes()[0];
            }
        });
        black_box(sigs);
        if round > 0 {
            rates.push(count as f64 / t.as_secs_f64());
            sign_rates.push(SIGN_N as f64 / ts.as_secs_f64());
        }
    }
    progress(&format!(
        "identity: issuance {} credential/s, signing {} sig/s (round ranges)",
        spread(&rates),
        spread(&sign_rates)
    ));
    let label = if n == 100_000 {
        "100k".to_owned()
    } else {
        n.to_string()
    };
    Row::new(
        AREA,
        format!("issue_credentials_{label}"),
        median(&mut rates),
        "credential/s",
        "ed25519_sign_rate",
        median(&mut sign_rates),
    )
    .emit();
    Ok(())
}

fn report_status() -> anyhow::Result<()> {
    const REVOCATIONS: usize = 10_000;
    const ROUNDS: usize = 21;
    let fixture = StatusFixture::new(REVOCATIONS, 23)?;
    progress(&format!(
        "identity: status update of {REVOCATIONS} revocations touches {} pages",
        fixture.pages_touched()
    ));
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let (mut exec, mut commit, mut smt, mut hash) = (vec![], vec![], vec![], vec![]);
    let mut failure = None;
    for round in 0..=ROUNDS {
        let te = timed(|| {
            if let Err(e) = fixture.execute().map(black_box) {
                failure = Some(e);
            }
        });
        let tc = timed(|| {
            if let Err(e) = fixture.execute_and_commit().map(black_box) {
                failure = Some(e);
            }
        });
        let ts = timed(|| {
            if let Err(e) = fixture.smt_apply().map(black_box) {
                failure = Some(e);
            }
        });
        let th = timed(|| fixture.hash_pages());
        if let Some(e) = failure.take() {
            return Err(e);
        }
        if round > 0 {
            exec.push(ms(te));
            commit.push(ms(tc));
            smt.push(ms(ts));
            hash.push(ms(th));
        }
    }
    progress(&format!(
        "identity: execute {} ms, execute+commit {} ms, smt apply {} ms, blake3 pages {} ms (round ranges)",
        spread(&exec),
        spread(&commit),
        spread(&smt),
        spread(&hash)
    ));
    let (exec, commit, smt, hash) = (
        median(&mut exec),
        median(&mut commit),
        median(&mut smt),
        median(&mut hash),
    );
    let metric = "status_update_10k_revocations_execute";
    Row::new(AREA, metric, exec, "ms", "smt_apply_touched_pages", smt).emit();
    Row::new(AREA, metric, exec, "ms", "blake3_touched_pages", hash).emit();
    Row::new(
        AREA,
        "status_update_10k_revocations_execute_and_commit",
        commit,
        "ms",
        "smt_apply_touched_pages",
        smt,
    )
    .emit();
    Ok(())
}

/// Where one verification's time goes, step by step with the crate's
/// public functions (stderr only). Each step is the median per call over
/// rounds of `N` calls.
fn report_breakdown(fixture: &VerifyFixture, pairs: &[SignaturePair]) -> anyhow::Result<()> {
    const N: usize = 200;
    let mut rng = ChaCha20Rng::seed_from_u64(29);
    let mut hall = fixture.verifier()?;
    let bytes = fixture.present(&mut hall, &mut rng, 0)?;
    let p = Presentation::decode(&bytes)?;
    let client = fixture.sandbox.client();
    let height = p.proofs.height;
    let body = &p.credential.body;
    let issuers: Vec<IssuerRecord> = p
        .proofs
        .issuers
        .iter()
        .filter_map(|s| s.value.as_deref())
        .map(|v| decode_exact(v, MAX_ISSUER_RECORD_LEN))
        .collect::<Result<_, _>>()?;
    let mut proofs = vec![(schema_key(&body.schema), &p.proofs.schema)];
    for (rec, proof) in issuers.iter().zip(&p.proofs.issuers) {
        proofs.push((issuer_key(&rec.id), proof));
    }
    proofs.push((
        status_page_key(body.status.list, p.proofs.status_page),
        &p.proofs.status,
    ));
    let b = p
        .binding
        .clone()
        .ok_or_else(|| anyhow!("no binding in the presentation"))?;
    let items = pairs[0].items();
    let per = |f: &mut dyn FnMut()| -> f64 {
        let mut v: Vec<f64> = (0..7)
            .map(|_| {
                timed(|| {
                    for _ in 0..N {
                        f()
                    }
                })
                .as_secs_f64()
                    * 1e6
                    / N as f64
            })
            .collect();
        median(&mut v)
    };
    let mut steps: Vec<(String, f64)> = Vec::new();
    let fresh = fixture.prepare(&mut hall, &mut rng, N * 8);
    let mut chunks = fresh.chunks(N);
    let mut full = vec![];
    for _ in 0..7 {
        let chunk = chunks.next().unwrap_or_default();
        full.push(
            timed(|| {
                fixture.verify_all(&mut hall, chunk);
            })
            .as_secs_f64()
                * 1e6
                / chunk.len().max(1) as f64,
        );
    }
    steps.push(("Verifier::verify (whole)".into(), median(&mut full)));
    steps.push((
        format!("Presentation::decode ({} bytes)", bytes.len()),
        per(&mut || {
            black_box(Presentation::decode(black_box(&bytes)).is_ok());
        }),
    ));
    steps.push((
        format!("{} x LightClient::verify_state", proofs.len()),
        per(&mut || {
            for (k, s) in &proofs {
                black_box(
                    client
                        .verify_state(height, k, s.value.as_deref(), &s.proof)
                        .is_ok(),
                );
            }
        }),
    ));
    steps.push((
        "decode schema + issuer x2 + page records".into(),
        per(&mut || {
            for (k, s) in &proofs {
                let v = s.value.as_deref().unwrap_or_default();
                if k.starts_with(b"id/schema/") {
                    black_box(decode_exact::<SchemaRecord>(v, MAX_SCHEMA_RECORD_LEN).is_ok());
                } else if k.starts_with(b"id/issuer/") {
                    black_box(decode_exact::<IssuerRecord>(v, MAX_ISSUER_RECORD_LEN).is_ok());
                } else {
                    black_box(decode_exact::<StatusPage>(v, MAX_STATUS_PAGE_LEN).is_ok());
                }
            }
        }),
    ));
    steps.push((
        format!("{} x Disclosure::digest", p.disclosures.len()),
        per(&mut || {
            for d in &p.disclosures {
                black_box(d.digest(p.credential.body.suite));
            }
        }),
    ));
    steps.push((
        "CredentialBody::signing_message".into(),
        per(&mut || {
            black_box(body.signing_message());
        }),
    ));
    steps.push((
        "Presentation::binding_message".into(),
        per(&mut || {
            black_box(p.binding_message(&b.nonce, &b.audience, b.time));
        }),
    ));
    steps.push((
        "2 x verify (single)".into(),
        per(&mut || {
            black_box(pairs[0].verify_both());
        }),
    ));
    steps.push((
        "verify_batch(2) from this thread (rayon pool)".into(),
        per(&mut || {
            black_box(verify_batch(black_box(&items)).is_ok());
        }),
    ));
    steps.push((
        "verify_batch_sequential(2)".into(),
        per(&mut || {
            black_box(verify_batch_sequential(black_box(&items)).is_ok());
        }),
    ));
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    steps.push((
        "verify_batch(2) inside a 1-thread pool".into(),
        pool.install(|| {
            per(&mut || {
                black_box(verify_batch(black_box(&items)).is_ok());
            })
        }),
    ));
    for (what, us) in steps {
        progress(&format!("identity: breakdown: {us:>9.2} us  {what}"));
    }
    Ok(())
}

/// Measures and prints this area's rows. See the module docs.
pub fn report() {
    if let Err(e) = try_report() {
        progress(&format!("identity: FAILED: {e:#}"));
        std::process::exit(1);
    }
}

fn try_report() -> anyhow::Result<()> {
    let want_verify = section("verify") || section("throughput") || section("breakdown");
    let mut single_us = None;
    if want_verify {
        progress("identity: sandbox chain and 16 holder-bound credentials");
        let fixture = VerifyFixture::new(16, 3).context("verification fixture")?;
        let pairs = fixture.signature_pairs()?;
        if section("verify") {
            progress("identity: one presentation (4 state proofs, 5 disclosures, binding), 11 rounds of 200");
            single_us = Some(report_verify(&fixture, &pairs, CryptoSuite::Ed25519Blake3)?);
        }
        if section("throughput") {
            progress("identity: presentations on every core, 5 rounds of 1,000 per core");
            report_throughput(&fixture, &pairs, single_us)?;
        }
        if section("breakdown") {
            progress("identity: breakdown of one verification");
            report_breakdown(&fixture, &pairs)?;
        }
    }
    if section("verify_sm2") {
        progress("identity: sm2-sm3 sandbox chain and 16 holder-bound SM2 credentials");
        let fixture =
            VerifyFixture::with_suite(CryptoSuite::Sm2Sm3, 16, 3).context("sm2 fixture")?;
        let pairs = fixture.signature_pairs()?;
        progress("identity: one SM2/SM3 presentation, 11 rounds of 200");
        report_verify(&fixture, &pairs, CryptoSuite::Sm2Sm3)?;
    }
    if section("issue") {
        progress("identity: issuance, 3 rounds (and a 10% warm-up)");
        report_issue()?;
    }
    if section("status") {
        progress("identity: one status-update transaction revoking 10,000 entries");
        report_status()?;
    }
    Ok(())
}
