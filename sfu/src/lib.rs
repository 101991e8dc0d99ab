//! Media plane: a selective forwarding unit built on str0m (sans-IO WebRTC).
//!
//! Invariant: this crate knows nothing of HTTP, JSON, SQL or JWT. It owns the UDP socket and
//! every participant's `str0m::Rtc`; the signalling layer drives it through [`Sfu`] (commands on a
//! bounded channel) and hears back through the per-participant [`SfuEvent`] channel.
//!
//! CONTRACT (used by `signalling`; keep these signatures stable):
//! - [`Sfu::start`] binds the UDP socket and spawns the media loop.
//! - [`Sfu::join`] registers a participant in a room (no media until it offers).
//! - [`Sfu::offer`] takes the participant's SDP offer and returns the SDP answer.
//! - Server-initiated renegotiation arrives as [`SfuEvent::Offer`]; the reply goes to [`Sfu::answer`].
//! - [`Sfu::candidate`] adds a trickled remote ICE candidate (`candidate:...` line).
//! - [`Sfu::leave`] removes a participant; its published tracks stop for everyone.
//!
//! ```ignore
//! let sfu = Sfu::start(SfuConfig { .. }, &registry).await?;   // Sfu: Clone + Send + Sync
//! sfu.join(RoomId(1), ParticipantId(7), events_tx).await?;   // events_tx: mpsc::Sender<SfuEvent>
//! let answer_sdp: String = sfu.offer(ParticipantId(7), offer_sdp).await?;
//! sfu.answer(ParticipantId(7), answer_sdp).await?;
//! sfu.candidate(ParticipantId(7), "candidate:1 1 udp ...".into()).await?;
//! sfu.leave(ParticipantId(7)).await;
//! sfu.local_addr(); sfu.shutdown().await;
//! ```

use std::net::{IpAddr, SocketAddr};

/// Identifies a room (one consultation) inside the SFU. Assigned by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomId(pub u64);

/// Identifies a participant inside the SFU. Assigned by the caller; unique per process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParticipantId(pub u64);

/// Configuration of the media plane.
#[derive(Debug, Clone)]
pub struct SfuConfig {
    /// UDP address to bind (one port for all peers). Port 0 picks a free port.
    pub bind: SocketAddr,
    /// Addresses announced as ICE host candidates. When empty, the bound address is announced
    /// (if it is unspecified, 0.0.0.0, every non-loopback interface address is announced).
    pub announce: Vec<IpAddr>,
}

/// What the SFU tells the signalling layer about one participant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SfuEvent {
    /// The SFU wants to (re)negotiate: send this SDP offer to the client, reply with `Sfu::answer`.
    Offer { sdp: String },
    /// ICE + DTLS are up: media flows.
    Connected,
    /// The peer is gone (ICE failure, consent expiry, DTLS close).
    Disconnected,
}

/// Errors from SFU operations.
#[derive(Debug, thiserror::Error)]
pub enum SfuError {
    #[error("invalid sdp: {0}")]
    InvalidSdp(String),
    #[error("invalid ice candidate")]
    InvalidCandidate,
    #[error("unknown participant")]
    UnknownParticipant,
    #[error("participant already joined")]
    AlreadyJoined,
    #[error("negotiation in progress")]
    NegotiationInProgress,
    #[error("the media loop has stopped")]
    Stopped,
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}
