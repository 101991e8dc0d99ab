//! [`Sfu::join_loopback_queued`]: a private media session in which the SFU sends a participant its own
//! tracks back (a connectivity probe before a consultation; issue #4, F33/F37).
//!
//! Invariant: a loopback room has exactly one member, so a probe's media reaches nobody but
//! its sender (see `room::loopback`). Everything else (offer, answer, candidates, leave,
//! consent expiry, metrics) is the ordinary participant path.

use tokio::sync::mpsc;

use crate::media_loop::Command;
use crate::{ParticipantId, RoomId, Sfu, SfuError, SfuEvent};

impl Sfu {
    /// Registers `participant` as the only member of the new room `room`, in which every track
    /// it publishes comes back to it: after its offer, the SFU sends an [`SfuEvent::Offer`]
    /// with one send-only m-line per published track, and forwards the participant's media on
    /// them. Drive it with [`Sfu::offer`], [`Sfu::answer`], [`Sfu::candidate`] and end it with
    /// [`Sfu::leave_queued`] as any participant.
    ///
    /// Fails with [`SfuError::AlreadyJoined`] when the participant id is in use or `room`
    /// already exists (a loopback room never takes a second member, and an ordinary room is
    /// never turned into one).
    ///
    /// Queued without waiting, like [`Sfu::join_queued`]: the returned future gives the loop's
    /// reply.
    pub fn join_loopback_queued(
        &self,
        room: RoomId,
        participant: ParticipantId,
        events: mpsc::Sender<SfuEvent>,
    ) -> impl std::future::Future<Output = Result<(), SfuError>> + Send + 'static {
        let queued = self.place_and_queue(room, participant, |generation, reply| {
            Command::JoinLoopback {
                room,
                participant,
                generation,
                events,
                reply,
            }
        });
        self.clone().join_reply(participant, queued)
    }
}
