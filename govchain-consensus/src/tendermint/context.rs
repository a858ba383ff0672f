//! govchain's `Context` for the Malachite core driver. Crate-private: no
//! Malachite type appears in govchain's public API (DESIGN.md §5).
//!
//! The driver sees blocks only by hash (`BlockId`); the engine keeps the
//! blocks and signatures. Votes and proposals given to the driver carry our
//! own Ed25519 signatures, already verified by the engine.

use std::fmt;
use std::time::Duration;

use arc_malachitebft_core_types as mt;
use govchain_core::crypto::{PublicKey, Signature};
use govchain_core::hash::Hash;
use govchain_core::types::Height;
use govchain_core::validator::ValidatorSet;

/// The context marker type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Ctx;

/// A validator address: its public key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Addr(pub(crate) PublicKey);

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl mt::Address for Addr {}

/// A height in driver terms.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct H(pub(crate) u64);

impl fmt::Display for H {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl mt::Height for H {
    const ZERO: Self = H(0);
    const INITIAL: Self = H(1);

    fn increment_by(&self, n: u64) -> Self {
        H(self.0.saturating_add(n))
    }

    fn decrement_by(&self, n: u64) -> Option<Self> {
        self.0.checked_sub(n).map(H)
    }

    fn as_u64(&self) -> u64 {
        self.0
    }
}

/// The value the driver decides on: a block hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct BlockId(pub(crate) Hash);

impl fmt::Display for BlockId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl mt::Value for BlockId {
    type Id = BlockId;
    fn id(&self) -> BlockId {
        *self
    }
}

/// Blocks travel whole with their proposal; there are no parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct NoParts;

impl mt::ProposalPart<Ctx> for NoParts {
    fn is_first(&self) -> bool {
        true
    }
    fn is_last(&self) -> bool {
        true
    }
}

/// A proposal in driver terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Prop {
    pub(crate) height: H,
    pub(crate) round: mt::Round,
    pub(crate) value: BlockId,
    pub(crate) pol_round: mt::Round,
    pub(crate) proposer: Addr,
}

impl mt::Proposal<Ctx> for Prop {
    fn height(&self) -> H {
        self.height
    }
    fn round(&self) -> mt::Round {
        self.round
    }
    fn value(&self) -> &BlockId {
        &self.value
    }
    fn take_value(self) -> BlockId {
        self.value
    }
    fn pol_round(&self) -> mt::Round {
        self.pol_round
    }
    fn validator_address(&self) -> &Addr {
        &self.proposer
    }
}

/// A vote in driver terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Vote {
    pub(crate) height: H,
    pub(crate) round: mt::Round,
    pub(crate) value: mt::NilOrVal<BlockId>,
    pub(crate) kind: mt::VoteType,
    pub(crate) validator: Addr,
}

impl mt::Vote<Ctx> for Vote {
    fn height(&self) -> H {
        self.height
    }
    fn round(&self) -> mt::Round {
        self.round
    }
    fn value(&self) -> &mt::NilOrVal<BlockId> {
        &self.value
    }
    fn take_value(self) -> mt::NilOrVal<BlockId> {
        self.value
    }
    fn vote_type(&self) -> mt::VoteType {
        self.kind
    }
    fn validator_address(&self) -> &Addr {
        &self.validator
    }
    fn extension(&self) -> Option<&mt::SignedExtension<Ctx>> {
        None
    }
    fn take_extension(&mut self) -> Option<mt::SignedExtension<Ctx>> {
        None
    }
    fn extend(self, _extension: mt::SignedExtension<Ctx>) -> Self {
        self
    }
}

/// A validator in driver terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Val {
    pub(crate) addr: Addr,
    pub(crate) power: u64,
}

impl mt::Validator<Ctx> for Val {
    fn address(&self) -> &Addr {
        &self.addr
    }
    fn public_key(&self) -> &PublicKey {
        &self.addr.0
    }
    fn voting_power(&self) -> u64 {
        self.power
    }
}

/// A validator set in driver terms, in canonical (ascending key) order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ValSet {
    vals: Vec<Val>,
    total: u64,
    /// The validators whose key may sign at the set's height (see
    /// [`KeyWindow`](govchain_core::validator::KeyWindow)): only they
    /// propose. Thresholds stay over `total`.
    proposers: Vec<Val>,
    /// Their power.
    proposer_power: u64,
    /// The first validator, so that proposer selection never needs to
    /// index (a core `ValidatorSet` is never empty).
    first: Val,
}

impl ValSet {
    /// The driver's view of `set` at `height`.
    pub(crate) fn from_core(set: &ValidatorSet, height: Height) -> Option<Self> {
        let val = |v: &govchain_core::validator::Validator| Val {
            addr: Addr(v.public_key.clone()),
            power: v.power,
        };
        let vals: Vec<Val> = set.validators().iter().map(val).collect();
        let proposers: Vec<Val> = set
            .validators()
            .iter()
            .filter(|v| set.may_sign(&v.public_key, height).is_ok())
            .map(val)
            .collect();
        let first = vals.first()?.clone();
        Some(ValSet {
            vals,
            total: set.total_power(),
            proposer_power: proposers.iter().map(|v| v.power).sum(),
            proposers,
            first,
        })
    }
}

impl mt::ValidatorSet<Ctx> for ValSet {
    fn count(&self) -> usize {
        self.vals.len()
    }
    fn total_voting_power(&self) -> u64 {
        self.total
    }
    fn get_by_address(&self, address: &Addr) -> Option<&Val> {
        self.vals
            .binary_search_by(|v| v.addr.cmp(address))
            .ok()
            .and_then(|i| self.vals.get(i))
    }
    fn get_by_index(&self, index: usize) -> Option<&Val> {
        self.vals.get(index)
    }
}

/// Round timeouts in milliseconds, growing linearly with the round
/// (Algorithm 1, lines 57–65 and the "timeout grows with r" assumption of §IV).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Timeouts {
    pub(crate) propose: u64,
    pub(crate) prevote: u64,
    pub(crate) precommit: u64,
    pub(crate) delta: u64,
    pub(crate) max: u64,
}

impl mt::Timeouts<Ctx> for Timeouts {
    fn duration_for(&self, timeout: mt::Timeout) -> Duration {
        Duration::from_millis(self.millis(timeout))
    }
}

impl Timeouts {
    pub(crate) fn millis(&self, timeout: mt::Timeout) -> u64 {
        let round = u64::from(timeout.round.as_u32().unwrap_or(0));
        let base = match timeout.kind {
            mt::TimeoutKind::Propose => self.propose,
            mt::TimeoutKind::Prevote => self.prevote,
            mt::TimeoutKind::Precommit => self.precommit,
            mt::TimeoutKind::Rebroadcast => self.propose,
            mt::TimeoutKind::FinalizeHeight(d) => {
                return u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
            }
        };
        base.saturating_add(self.delta.saturating_mul(round))
            .min(self.max)
    }
}

/// Ed25519 (or any govchain suite) signatures, ordered by their bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Sig(pub(crate) Signature);

impl PartialOrd for Sig {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Sig {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.as_bytes().cmp(other.0.as_bytes())
    }
}

/// The signing scheme marker. Signing itself happens in the engine through
/// govchain's `Signer`; the driver never sees a private key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Scheme;

impl mt::SigningScheme for Scheme {
    type DecodingError = govchain_core::codec::DecodeError;
    type Signature = Sig;
    type PublicKey = PublicKey;
    type PrivateKey = ();

    fn decode_signature(bytes: &[u8]) -> Result<Sig, Self::DecodingError> {
        govchain_core::codec::decode_exact::<Signature>(bytes, 128).map(Sig)
    }
    fn encode_signature(signature: &Sig) -> Vec<u8> {
        govchain_core::codec::Encode::to_bytes(&signature.0)
    }
    fn decode_public_key(bytes: &[u8]) -> Result<PublicKey, Self::DecodingError> {
        govchain_core::codec::decode_exact::<PublicKey>(bytes, 128)
    }
    fn encode_public_key(public_key: &PublicKey) -> Vec<u8> {
        govchain_core::codec::Encode::to_bytes(public_key)
    }
}

/// Weighted round-robin proposer: slot `(height + round) mod total_power`
/// walks the validators in canonical order, each owning `power` consecutive
/// slots. Deterministic, and with equal powers every round of a height has a
/// different proposer (needed for liveness past a faulty proposer,
/// Algorithm 1 line 14, `proposer(h, r)`).
///
/// Only validators whose key may sign at the height own slots, so a member
/// whose key expired or was reported compromised is never asked to propose
/// (its rounds would only time out).
pub(crate) fn select_proposer(set: &ValSet, height: u64, round: u32) -> &Val {
    let total = set.proposer_power.max(1);
    let mut slot = height.wrapping_add(u64::from(round)) % total;
    for v in &set.proposers {
        if slot < v.power {
            return v;
        }
        slot -= v.power;
    }
    &set.first
}

impl mt::Context for Ctx {
    type Address = Addr;
    type Height = H;
    type ProposalPart = NoParts;
    type Proposal = Prop;
    type Validator = Val;
    type ValidatorSet = ValSet;
    type Timeouts = Timeouts;
    type Value = BlockId;
    type Vote = Vote;
    type Extension = ();
    type SigningScheme = Scheme;

    fn select_proposer<'a>(&self, set: &'a ValSet, height: H, round: mt::Round) -> &'a Val {
        select_proposer(set, height.0, round.as_u32().unwrap_or(0))
    }

    fn new_proposal(
        &self,
        height: H,
        round: mt::Round,
        value: BlockId,
        pol_round: mt::Round,
        address: Addr,
    ) -> Prop {
        Prop {
            height,
            round,
            value,
            pol_round,
            proposer: address,
        }
    }

    fn new_prevote(
        &self,
        height: H,
        round: mt::Round,
        value_id: mt::NilOrVal<BlockId>,
        address: Addr,
    ) -> Vote {
        Vote {
            height,
            round,
            value: value_id,
            kind: mt::VoteType::Prevote,
            validator: address,
        }
    }

    fn new_precommit(
        &self,
        height: H,
        round: mt::Round,
        value_id: mt::NilOrVal<BlockId>,
        address: Addr,
    ) -> Vote {
        Vote {
            height,
            round,
            value: value_id,
            kind: mt::VoteType::Precommit,
            validator: address,
        }
    }
}
