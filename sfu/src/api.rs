//! Public value types of the SFU API (views, publish policy, offer errors, stats).
//!
//! Invariant: plain data, no behaviour that touches sockets or `Rtc`s; every type here is
//! `Send` and cheap to move through the command channels.

use std::net::SocketAddr;

use crate::SfuError;

/// How a subscriber shows one remote video track (one of its own m-lines).
///
/// The SFU picks the simulcast layer whose resolution best fits `width` × `height` within the
/// subscriber's bandwidth estimate. `width`/`height` of 0 mean "unknown size": the best layer
/// the bandwidth allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct View {
    /// `false` for a hidden tile or a minimised window: nothing is forwarded.
    pub visible: bool,
    /// Displayed width in CSS pixels × devicePixelRatio (0 = unknown).
    pub width: u32,
    /// Displayed height in CSS pixels × devicePixelRatio (0 = unknown).
    pub height: u32,
}

impl Default for View {
    /// Visible, size unknown.
    fn default() -> View {
        View {
            visible: true,
            width: 0,
            height: 0,
        }
    }
}

/// What a published m-line carries, as the client declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrackSource {
    /// Microphone audio (the default for an undeclared audio m-line).
    Microphone,
    /// Camera video (the default for an undeclared video m-line).
    Camera,
    /// Screen share (video, or the captured tab's audio).
    Screen,
}

impl TrackSource {
    /// The word used in the down track's msid track id (`microphone`, `camera`, `screen`).
    pub fn as_str(self) -> &'static str {
        match self {
            TrackSource::Microphone => "microphone",
            TrackSource::Camera => "camera",
            TrackSource::Screen => "screen",
        }
    }
}

/// What a participant may publish, and what each of its m-lines is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishPolicy {
    /// `(mid, source)` for the m-lines the client declares; an undeclared video m-line is
    /// [`TrackSource::Camera`], an undeclared audio m-line [`TrackSource::Microphone`].
    pub sources: Vec<(String, TrackSource)>,
    /// Whether a [`TrackSource::Screen`] m-line may be published at all.
    pub allow_screen: bool,
}

impl Default for PublishPolicy {
    /// No declared sources, screen share allowed (what [`crate::Sfu::offer`] uses).
    fn default() -> PublishPolicy {
        PublishPolicy {
            sources: Vec::new(),
            allow_screen: true,
        }
    }
}

impl PublishPolicy {
    /// The declared source of `mid`, if any.
    pub(crate) fn source_of(&self, mid: &str) -> Option<TrackSource> {
        self.sources
            .iter()
            .find(|(m, _)| m == mid)
            .map(|(_, source)| *source)
    }
}

/// Errors of [`crate::Sfu::offer`]: a refusal by the [`PublishPolicy`], or any [`SfuError`].
#[derive(Debug, thiserror::Error)]
pub enum OfferError {
    /// The offer publishes something the policy forbids (a screen share without permission).
    /// Nothing of the offer was applied.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// Any other failure.
    #[error(transparent)]
    Sfu(#[from] SfuError),
}

/// A snapshot of the media plane, for tests and diagnostics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SfuStats {
    /// One entry per media loop, in loop order.
    pub loops: Vec<LoopStats>,
}

impl SfuStats {
    /// Participants over all loops.
    pub fn participants(&self) -> usize {
        self.loops.iter().map(|l| l.participants).sum()
    }

    /// Rooms over all loops.
    pub fn rooms(&self) -> usize {
        self.loops.iter().map(|l| l.rooms).sum()
    }
}

/// What one media loop holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoopStats {
    /// The loop's UDP address.
    pub udp_addr: Option<SocketAddr>,
    /// The loop's ICE-TCP address, when enabled.
    pub tcp_addr: Option<SocketAddr>,
    /// Participants placed on this loop.
    pub participants: usize,
    /// Rooms placed on this loop.
    pub rooms: usize,
    /// Published tracks on this loop.
    pub published_tracks: usize,
    /// Open ICE-TCP connections on this loop.
    pub tcp_connections: usize,
}
