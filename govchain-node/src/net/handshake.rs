//! The Noise XX handshake and the Ed25519 key binding that authenticates a
//! session, plus [`SecureChannel`], one authenticated connection without the
//! transport's threads around it.

use std::io::{BufReader, BufWriter, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use govchain_core::codec::{Decode, Encode, Reader};
use govchain_core::crypto::{verify, PublicKey, Signature, Signer};
use govchain_core::hash::Hash;
use snow::params::NoiseParams;
use zeroize::Zeroizing;

use super::frame::{tag, RecordReader, RecordWriter, WireLimits, WireMessage};
use super::NetError;

/// The Noise protocol name: XX (both static keys transmitted, mutual
/// authentication), X25519, ChaCha20-Poly1305, BLAKE2s.
pub const NOISE_PROTOCOL: &str = "Noise_XX_25519_ChaChaPoly_BLAKE2s";

/// The protocol label that starts the Noise prologue (followed by the
/// network id). Changing the wire protocol changes this label, so peers of
/// different versions fail the handshake instead of misreading each other.
pub const PROLOGUE_LABEL: &[u8] = b"govchain-net/1";

/// The largest handshake message accepted. XX messages with empty payloads
/// are 32, 96 and 64 bytes.
const MAX_HANDSHAKE_MESSAGE: usize = 256;

/// The longest encoded binding message: tag, key (whose length depends on
/// its algorithm), signature. Decoding checks that nothing follows.
const MAX_BINDING_LEN: usize = 1 + PublicKey::MAX_ENCODED_LEN + Signature::ENCODED_LEN;

macro_rules! net_domains {
    ($( $(#[$doc:meta])* $name:ident => $ctx:literal, )*) => {
        /// Hashing (and so signing) domains of the network layer, declared
        /// once, in the style of `govchain_core::hash::Domain`: each is a
        /// BLAKE3 derived key whose context string names the crate, the
        /// object and a version, distinct from every core context string.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum NetDomain {
            $( $(#[$doc])* $name, )*
        }

        impl NetDomain {
            /// Every domain, in declaration order.
            pub const ALL: &'static [NetDomain] = &[$(NetDomain::$name,)*];

            /// The `derive_key` context string of this domain.
            pub const fn context(self) -> &'static str {
                match self { $( NetDomain::$name => $ctx, )* }
            }
        }
    };
}

net_domains! {
    /// The message a node signs to bind its Noise static key to its
    /// department's Ed25519 key for one session.
    TransportBinding => "govchain-node v1 2026-11 transport key binding",
}

impl NetDomain {
    /// The 32-byte BLAKE3 key of this domain, derived once per process.
    pub fn key(self) -> [u8; 32] {
        static KEYS: OnceLock<Vec<[u8; 32]>> = OnceLock::new();
        let keys = KEYS.get_or_init(|| {
            NetDomain::ALL
                .iter()
                .map(|d| blake3::derive_key(d.context(), &[]))
                .collect()
        });
        // `ALL` lists every variant in declaration order, so the index of a
        // variant is its discriminant and always in range.
        keys.get(self as usize)
            .copied()
            .unwrap_or_else(|| blake3::derive_key(self.context(), &[]))
    }

    /// Hashes the concatenation of `parts` under this domain's key.
    pub fn hash(self, parts: &[&[u8]]) -> Hash {
        let mut hasher = blake3::Hasher::new_keyed(&self.key());
        for part in parts {
            hasher.update(part);
        }
        Hash::from_bytes(*hasher.finalize().as_bytes())
    }
}

/// Which end of the handshake a party is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Initiator,
    Responder,
}

impl Role {
    fn byte(self) -> u8 {
        match self {
            Role::Initiator => 0,
            Role::Responder => 1,
        }
    }

    fn other(self) -> Role {
        match self {
            Role::Initiator => Role::Responder,
            Role::Responder => Role::Initiator,
        }
    }
}

/// The digest a party signs: `TransportBinding`-keyed BLAKE3 over the
/// network id, the session's handshake hash, the signer's role, its Noise
/// static key and its Ed25519 key (all fixed-length, so the concatenation
/// is unambiguous).
pub(crate) fn binding_digest(
    network_id: &Hash,
    handshake_hash: &[u8],
    role: Role,
    noise_static: &[u8],
    key: &PublicKey,
) -> Hash {
    NetDomain::TransportBinding.hash(&[
        network_id.as_bytes(),
        handshake_hash,
        &[role.byte()],
        noise_static,
        &key.to_bytes(),
    ])
}

/// A node's identity on the network: its department key and a Noise static
/// key generated when the transport is created (the binding makes a fresh
/// one per process as good as a long-lived one).
pub(crate) struct LocalIdentity {
    pub(crate) signer: Arc<dyn Signer>,
    pub(crate) key: PublicKey,
    noise_private: Zeroizing<Vec<u8>>,
    noise_public: Vec<u8>,
    pub(crate) network_id: Hash,
    params: NoiseParams,
}

fn noise_err(stage: &'static str) -> impl Fn(snow::Error) -> NetError {
    move |e| NetError::Noise {
        stage,
        reason: e.to_string(),
    }
}

impl LocalIdentity {
    pub(crate) fn new(signer: Arc<dyn Signer>, network_id: Hash) -> Result<Self, NetError> {
        let params: NoiseParams = NOISE_PROTOCOL.parse().map_err(noise_err("protocol name"))?;
        let keypair = snow::Builder::new(params.clone())
            .generate_keypair()
            .map_err(noise_err("static key generation"))?;
        Ok(LocalIdentity {
            key: signer.public_key(),
            signer,
            noise_private: Zeroizing::new(keypair.private),
            noise_public: keypair.public,
            network_id,
            params,
        })
    }

    fn binding(&self, handshake_hash: &[u8], role: Role) -> Vec<u8> {
        let digest = binding_digest(
            &self.network_id,
            handshake_hash,
            role,
            &self.noise_public,
            &self.key,
        );
        let signature = self.signer.sign(digest.as_bytes());
        let mut out = Vec::with_capacity(MAX_BINDING_LEN);
        out.push(tag::BINDING);
        self.key.encode_to(&mut out);
        signature.encode_to(&mut out);
        out
    }
}

/// Checks a peer's binding message; returns the peer's department key.
///
/// The signature is checked before admission, so a refusal for an unknown
/// key names a key the peer proved it holds.
#[allow(clippy::too_many_arguments)] // each is one distinct input of the check
pub(crate) fn verify_binding(
    frame: &[u8],
    network_id: &Hash,
    handshake_hash: &[u8],
    signer_role: Role,
    remote_static: &[u8],
    own_key: &PublicKey,
    expected: Option<&PublicKey>,
    admit: &dyn Fn(&PublicKey) -> bool,
) -> Result<PublicKey, NetError> {
    if frame.len() > MAX_BINDING_LEN {
        return Err(NetError::BadBinding { reason: "too long" });
    }
    let mut r = Reader::new(frame);
    if r.u8()? != tag::BINDING {
        return Err(NetError::BadBinding {
            reason: "first message is not a binding",
        });
    }
    let key = PublicKey::decode_from(&mut r)?;
    let signature = Signature::decode_from(&mut r)?;
    r.finish()?;
    let digest = binding_digest(network_id, handshake_hash, signer_role, remote_static, &key);
    verify(&key, digest.as_bytes(), &signature).map_err(|_| NetError::BadBinding {
        reason: "signature does not verify for this session",
    })?;
    if &key == own_key {
        return Err(NetError::SelfConnection);
    }
    if let Some(expected) = expected {
        if &key != expected {
            return Err(NetError::UnexpectedPeer {
                expected: expected.clone(),
                got: key,
            });
        }
    }
    if !admit(&key) {
        return Err(NetError::NotAdmitted { key });
    }
    Ok(key)
}

/// The read half of a connection. While a deadline is set (during the
/// handshake), every read gets the time left as its timeout, so a peer that
/// dribbles bytes cannot stretch the handshake past its deadline.
pub(crate) struct SocketReader {
    stream: TcpStream,
    deadline: Option<Instant>,
}

impl SocketReader {
    pub(crate) fn new(stream: TcpStream, deadline: Option<Instant>) -> Self {
        SocketReader { stream, deadline }
    }

    /// Ends the handshake deadline; the socket's own read timeout applies.
    pub(crate) fn clear_deadline(&mut self) {
        self.deadline = None;
    }
}

impl Read for SocketReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if let Some(deadline) = self.deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "handshake deadline passed",
                ));
            }
            self.stream.set_read_timeout(Some(left))?;
        }
        self.stream.read(buf)
    }
}

fn send_handshake(mut stream: &TcpStream, message: &[u8]) -> Result<(), NetError> {
    let len = u16::try_from(message.len()).map_err(|_| NetError::Garbled {
        reason: "handshake message too long",
    })?;
    let mut out = Vec::with_capacity(2 + message.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(message);
    stream
        .write_all(&out)
        .map_err(|source| io("sending a handshake message", source))
}

fn recv_handshake<'b>(
    stream: &mut SocketReader,
    buf: &'b mut [u8; MAX_HANDSHAKE_MESSAGE],
) -> Result<&'b [u8], NetError> {
    let mut len = [0u8; 2];
    stream
        .read_exact(&mut len)
        .map_err(|source| io("reading a handshake message", source))?;
    let len = usize::from(u16::from_be_bytes(len));
    let message = buf.get_mut(..len).ok_or(NetError::Garbled {
        reason: "handshake message too long",
    })?;
    stream
        .read_exact(message)
        .map_err(|source| io("reading a handshake message", source))?;
    Ok(message)
}

fn io(context: &'static str, source: std::io::Error) -> NetError {
    if source.kind() == std::io::ErrorKind::UnexpectedEof {
        NetError::Closed
    } else {
        NetError::Io { context, source }
    }
}

/// An authenticated session, ready to carry frames.
pub(crate) struct Established {
    pub(crate) remote: PublicKey,
    pub(crate) reader: RecordReader<BufReader<SocketReader>>,
    pub(crate) writer: RecordWriter<BufWriter<TcpStream>>,
}

/// Runs the Noise XX handshake and the binding exchange on `stream`.
///
/// The initiator sends its binding first; the responder checks it (and
/// admission) before revealing its own, so an unadmitted initiator never
/// learns which department it reached. The whole exchange must finish
/// within `timeout`; until the peer's binding verifies, the only frame
/// accepted is one binding long, so an unauthenticated peer cannot make us
/// allocate a large frame. Afterwards the socket's read timeout is whatever
/// the caller set before (the caller sets it again for the session).
pub(crate) fn establish(
    stream: &TcpStream,
    local: &LocalIdentity,
    role: Role,
    expected: Option<&PublicKey>,
    admit: &dyn Fn(&PublicKey) -> bool,
    max_frame_bytes: usize,
    timeout: Duration,
) -> Result<Established, NetError> {
    let read_half = stream
        .try_clone()
        .map_err(|source| io("cloning the socket", source))?;
    let mut source = SocketReader::new(read_half, Some(Instant::now() + timeout));
    let mut prologue = Vec::with_capacity(PROLOGUE_LABEL.len() + 32);
    prologue.extend_from_slice(PROLOGUE_LABEL);
    prologue.extend_from_slice(local.network_id.as_bytes());
    let builder = snow::Builder::new(local.params.clone())
        .local_private_key(&local.noise_private)
        .map_err(noise_err("static key"))?
        .prologue(&prologue)
        .map_err(noise_err("prologue"))?;
    let mut hs = match role {
        Role::Initiator => builder.build_initiator(),
        Role::Responder => builder.build_responder(),
    }
    .map_err(noise_err("handshake setup"))?;

    let mut buf = [0u8; MAX_HANDSHAKE_MESSAGE];
    let mut out = [0u8; MAX_HANDSHAKE_MESSAGE];
    let mut payload = [0u8; MAX_HANDSHAKE_MESSAGE];
    // XX: -> e; <- e, ee, s, es; -> s, se. Payloads are empty.
    let mut my_turn = role == Role::Initiator;
    while !hs.is_handshake_finished() {
        if my_turn {
            let n = hs
                .write_message(&[], &mut out)
                .map_err(noise_err("handshake write"))?;
            let message = out.get(..n).ok_or(NetError::Garbled {
                reason: "handshake message too long",
            })?;
            send_handshake(stream, message)?;
        } else {
            let message = recv_handshake(&mut source, &mut buf)?;
            let n = hs
                .read_message(message, &mut payload)
                .map_err(noise_err("handshake read"))?;
            if n != 0 {
                return Err(NetError::Garbled {
                    reason: "unexpected handshake payload",
                });
            }
        }
        my_turn = !my_turn;
    }
    let handshake_hash = hs.get_handshake_hash().to_vec();
    let remote_static = hs
        .get_remote_static()
        .ok_or(NetError::BadBinding {
            reason: "no remote static key",
        })?
        .to_vec();
    let state = Arc::new(
        hs.into_stateless_transport_mode()
            .map_err(noise_err("transport mode"))?,
    );
    let write_half = stream
        .try_clone()
        .map_err(|source| io("cloning the socket", source))?;
    let mut reader = RecordReader::new(
        BufReader::with_capacity(1 << 16, source),
        state.clone(),
        MAX_BINDING_LEN,
    );
    let mut writer = RecordWriter::new(BufWriter::with_capacity(1 << 16, write_half), state);

    let check = |frame: &[u8]| {
        verify_binding(
            frame,
            &local.network_id,
            &handshake_hash,
            role.other(),
            &remote_static,
            &local.key,
            expected,
            admit,
        )
    };
    let remote = match role {
        Role::Initiator => {
            writer.write_frame(&local.binding(&handshake_hash, role))?;
            writer.flush()?;
            let (frame, _) = reader.read_frame()?;
            check(&frame)?
        }
        Role::Responder => {
            let (frame, _) = reader.read_frame()?;
            let remote = check(&frame)?;
            writer.write_frame(&local.binding(&handshake_hash, role))?;
            writer.flush()?;
            remote
        }
    };
    reader.set_max_frame_bytes(max_frame_bytes);
    reader.inner_mut().get_mut().clear_deadline();
    Ok(Established {
        remote,
        reader,
        writer,
    })
}

/// Settings for a [`SecureChannel`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelParams {
    /// The network id bound into the prologue and every key binding.
    pub network_id: Hash,
    /// Decoding limits for received messages.
    pub limits: WireLimits,
    /// Socket read and write timeout during the handshake and afterwards.
    pub timeout: Duration,
}

/// One authenticated, encrypted connection speaking the transport's wire
/// protocol, without the transport's threads, queues or admission list.
///
/// [`TcpTransport`](super::TcpTransport) is what nodes use; this is for
/// tools (a probe that checks a node answers with the expected key) and for
/// tests that need to misbehave on purpose after authenticating.
pub struct SecureChannel {
    remote: PublicKey,
    stream: TcpStream,
    session: Established,
    limits: WireLimits,
}

impl std::fmt::Debug for SecureChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecureChannel")
            .field("remote", &self.remote)
            .field("peer_addr", &self.stream.peer_addr().ok())
            .finish_non_exhaustive()
    }
}

impl SecureChannel {
    fn open(
        stream: TcpStream,
        identity: Arc<dyn Signer>,
        params: &ChannelParams,
        role: Role,
        expected: Option<&PublicKey>,
        admit: &dyn Fn(&PublicKey) -> bool,
    ) -> Result<Self, NetError> {
        let local = LocalIdentity::new(identity, params.network_id)?;
        stream
            .set_read_timeout(Some(params.timeout))
            .and_then(|()| stream.set_write_timeout(Some(params.timeout)))
            .and_then(|()| stream.set_nodelay(true))
            .map_err(|source| io("configuring the socket", source))?;
        let session = establish(
            &stream,
            &local,
            role,
            expected,
            admit,
            params.limits.max_frame_bytes,
            params.timeout,
        )?;
        // The handshake left the time it had left as the read timeout.
        stream
            .set_read_timeout(Some(params.timeout))
            .map_err(|source| io("configuring the socket", source))?;
        Ok(SecureChannel {
            remote: session.remote.clone(),
            stream,
            session,
            limits: params.limits,
        })
    }

    /// Runs the handshake as the dialing side, requiring the peer to prove
    /// `expected` if given.
    pub fn connect(
        stream: TcpStream,
        identity: Arc<dyn Signer>,
        params: &ChannelParams,
        expected: Option<&PublicKey>,
    ) -> Result<Self, NetError> {
        Self::open(stream, identity, params, Role::Initiator, expected, &|_| {
            true
        })
    }

    /// Runs the handshake as the accepting side, admitting the peer only if
    /// `admit` accepts its proven key.
    pub fn accept(
        stream: TcpStream,
        identity: Arc<dyn Signer>,
        params: &ChannelParams,
        admit: &dyn Fn(&PublicKey) -> bool,
    ) -> Result<Self, NetError> {
        Self::open(stream, identity, params, Role::Responder, None, admit)
    }

    /// The peer's proven department key.
    pub fn remote_key(&self) -> &PublicKey {
        &self.remote
    }

    /// The underlying socket (to shut it down, or for tests to write raw
    /// bytes into the encrypted stream).
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// Sends one message and flushes.
    pub fn send(&mut self, message: &WireMessage) -> Result<(), NetError> {
        self.send_frame(&message.encode())
    }

    /// Sends one raw frame and flushes. The frame is not checked against
    /// any limit here: the receiver enforces its own.
    pub fn send_frame(&mut self, frame: &[u8]) -> Result<(), NetError> {
        self.session.writer.write_frame(frame)?;
        self.session.writer.flush()
    }

    /// Receives one message (keepalives included).
    pub fn recv(&mut self) -> Result<WireMessage, NetError> {
        let (frame, _) = self.session.reader.read_frame()?;
        Ok(WireMessage::decode(&frame, &self.limits)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use govchain_core::crypto::SecretKey;
    use std::collections::HashSet;
    use std::net::TcpListener;

    #[test]
    fn net_domains_are_distinct_from_core() {
        use govchain_core::hash::Domain;
        let mut contexts: HashSet<&str> = Domain::ALL.iter().map(|d| d.context()).collect();
        for d in NetDomain::ALL {
            assert!(contexts.insert(d.context()), "{d:?} collides");
        }
        for (i, d) in NetDomain::ALL.iter().enumerate() {
            assert_eq!(*d as usize, i);
        }
    }

    fn pair(
        server_admit: impl Fn(&PublicKey) -> bool + Send + 'static,
        network: (Hash, Hash),
    ) -> (
        Result<SecureChannel, NetError>,
        Result<SecureChannel, NetError>,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let params = ChannelParams {
                network_id: network.0,
                limits: WireLimits::default(),
                timeout: Duration::from_secs(10),
            };
            SecureChannel::accept(
                stream,
                Arc::new(SecretKey::from_seed(&[1; 32])),
                &params,
                &server_admit,
            )
        });
        let params = ChannelParams {
            network_id: network.1,
            limits: WireLimits::default(),
            timeout: Duration::from_secs(10),
        };
        let client = SecureChannel::connect(
            TcpStream::connect(addr).unwrap(),
            Arc::new(SecretKey::from_seed(&[2; 32])),
            &params,
            None,
        );
        (server.join().unwrap(), client)
    }

    #[test]
    fn channel_authenticates_both_ends_and_carries_messages() {
        let id = Hash::from_bytes([7; 32]);
        let (server, client) = pair(|_| true, (id, id));
        let (mut server, mut client) = (server.unwrap(), client.unwrap());
        assert_eq!(
            server.remote_key(),
            &SecretKey::from_seed(&[2; 32]).public_key()
        );
        assert_eq!(
            client.remote_key(),
            &SecretKey::from_seed(&[1; 32]).public_key()
        );
        // A frame much larger than one Noise message is fragmented.
        let message = WireMessage::Envelope(crate::transport::Envelope::Consensus {
            chain: govchain_core::types::ChainId::new("c").unwrap(),
            bytes: (0..300_000u32).map(|i| i as u8).collect(),
        });
        client.send(&message).unwrap();
        assert_eq!(server.recv().unwrap(), message);
        server.send(&WireMessage::Keepalive).unwrap();
        assert_eq!(client.recv().unwrap(), WireMessage::Keepalive);
    }

    #[test]
    fn unadmitted_key_and_other_network_are_refused() {
        let id = Hash::from_bytes([7; 32]);
        let (server, client) = pair(|_| false, (id, id));
        assert!(matches!(server, Err(NetError::NotAdmitted { .. })));
        assert!(client.is_err());
        let (server, client) = pair(|_| true, (id, Hash::from_bytes([8; 32])));
        assert!(server.is_err());
        assert!(client.is_err());
    }

    #[test]
    fn unauthenticated_peer_cannot_announce_a_large_frame() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let network = [7u8; 32];
        let server = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let local = LocalIdentity::new(
                Arc::new(SecretKey::from_seed(&[1; 32])),
                Hash::from_bytes(network),
            )
            .unwrap();
            establish(
                &stream,
                &local,
                Role::Responder,
                None,
                &|_| true,
                8 << 20,
                Duration::from_secs(10),
            )
            .map(|_| ())
        });
        // A Noise initiator with a throwaway static key and no binding.
        let stream = TcpStream::connect(addr).unwrap();
        let params: NoiseParams = NOISE_PROTOCOL.parse().unwrap();
        let keypair = snow::Builder::new(params.clone())
            .generate_keypair()
            .unwrap();
        let mut prologue = PROLOGUE_LABEL.to_vec();
        prologue.extend_from_slice(&network);
        let mut hs = snow::Builder::new(params)
            .local_private_key(&keypair.private)
            .unwrap()
            .prologue(&prologue)
            .unwrap()
            .build_initiator()
            .unwrap();
        let mut out = [0u8; 1024];
        let mut payload = [0u8; 1024];
        let mut incoming = [0u8; MAX_HANDSHAKE_MESSAGE];
        let mut source = SocketReader::new(stream.try_clone().unwrap(), None);
        let n = hs.write_message(&[], &mut out).unwrap();
        send_handshake(&stream, &out[..n]).unwrap();
        let m = recv_handshake(&mut source, &mut incoming).unwrap();
        hs.read_message(m, &mut payload).unwrap();
        let n = hs.write_message(&[], &mut out).unwrap();
        send_handshake(&stream, &out[..n]).unwrap();
        let state = Arc::new(hs.into_stateless_transport_mode().unwrap());
        let mut writer = RecordWriter::new(stream.try_clone().unwrap(), state);
        // A 1 MiB frame (well within the configured 8 MiB) before binding:
        // refused at its header, with the binding's size as the limit.
        let _ = writer.write_frame(&vec![0; 1 << 20]);
        let result = server.join().unwrap();
        assert!(
            matches!(result, Err(NetError::FrameTooLarge { max, .. }) if max == MAX_BINDING_LEN),
            "{result:?}"
        );
    }

    #[test]
    fn binding_from_another_session_is_refused() {
        let signer: Arc<dyn Signer> = Arc::new(SecretKey::from_seed(&[3; 32]));
        let local = LocalIdentity::new(signer.clone(), Hash::from_bytes([1; 32])).unwrap();
        let verifier_key = SecretKey::from_seed(&[4; 32]).public_key();
        let session_one = [0x11u8; 32];
        let session_two = [0x22u8; 32];
        let binding = local.binding(&session_one, Role::Initiator);
        let check = |hh: &[u8], role: Role, static_key: &[u8], net: Hash| {
            verify_binding(
                &binding,
                &net,
                hh,
                role,
                static_key,
                &verifier_key,
                None,
                &|_| true,
            )
        };
        let net = Hash::from_bytes([1; 32]);
        assert_eq!(
            check(&session_one, Role::Initiator, &local.noise_public, net).unwrap(),
            signer.public_key()
        );
        // Replayed into another session (another handshake hash).
        assert!(matches!(
            check(&session_two, Role::Initiator, &local.noise_public, net),
            Err(NetError::BadBinding { .. })
        ));
        // Reflected back with the other role.
        assert!(matches!(
            check(&session_one, Role::Responder, &local.noise_public, net),
            Err(NetError::BadBinding { .. })
        ));
        // Presented over another Noise static key.
        assert!(matches!(
            check(&session_one, Role::Initiator, &[9u8; 32], net),
            Err(NetError::BadBinding { .. })
        ));
        // Presented on another network.
        assert!(matches!(
            check(
                &session_one,
                Role::Initiator,
                &local.noise_public,
                Hash::from_bytes([2; 32])
            ),
            Err(NetError::BadBinding { .. })
        ));
        // Our own key coming back is a self-connection.
        assert!(matches!(
            verify_binding(
                &binding,
                &net,
                &session_one,
                Role::Initiator,
                &local.noise_public,
                &signer.public_key(),
                None,
                &|_| true
            ),
            Err(NetError::SelfConnection)
        ));
    }
}
