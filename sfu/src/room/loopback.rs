//! Loopback rooms: a room with one member that receives its own published tracks back, so a
//! client can measure the path to the SFU and back (a connectivity probe before a
//! consultation). Nothing else differs: the echo is an ordinary down track, negotiated by a
//! server offer and forwarded frame by frame like any other.
//!
//! Invariant: a loopback room never has a second member ([`Rooms::join_loopback`] refuses an
//! existing room, and `Sfu::join_loopback_queued` is the only way in), so a probe's media reaches
//! nobody but its sender.

use super::Rooms;
use crate::{ParticipantId, RoomId, SfuError};

impl Rooms {
    /// Adds `p` as the only member of the new loopback room `room`: every track it publishes
    /// comes back to it as a down track. Fails with [`SfuError::AlreadyJoined`] when `p` is in
    /// a room already or `room` exists.
    pub(crate) fn join_loopback(&mut self, room: RoomId, p: ParticipantId) -> Result<(), SfuError> {
        if !self.members_of(room).is_empty() {
            return Err(SfuError::AlreadyJoined);
        }
        self.join(room, p)?;
        self.loopback.insert(room);
        Ok(())
    }

    /// Whether `room` is a loopback room.
    #[cfg(test)]
    pub(crate) fn is_loopback(&self, room: RoomId) -> bool {
        self.loopback.contains(&room)
    }
}

#[cfg(test)]
mod tests {
    use str0m::media::{MediaKind, Mid};

    use super::*;
    use crate::TrackSource;

    const PROBE: RoomId = RoomId(1 << 62);
    const P: ParticipantId = ParticipantId(1 << 62);
    const OTHER: ParticipantId = ParticipantId(7);

    #[test]
    fn a_loopback_member_gets_its_own_tracks_back_and_nobody_else_can_join() {
        let mut rooms = Rooms::default();
        rooms.join_loopback(PROBE, P).unwrap();
        assert!(rooms.is_loopback(PROBE));
        assert!(matches!(
            rooms.join_loopback(PROBE, OTHER),
            Err(SfuError::AlreadyJoined)
        ));
        assert!(matches!(
            rooms.join(PROBE, OTHER),
            Err(SfuError::AlreadyJoined)
        ));
        rooms.set_ready(P);
        let affected = rooms.publish(
            P,
            Mid::from("0"),
            MediaKind::Video,
            TrackSource::Camera,
            vec![],
        );
        assert_eq!(affected, vec![P]);
        let plan = rooms.plan_negotiation(P).expect("an echo m-line to offer");
        assert_eq!(plan.open.len(), 1);
        assert_eq!(plan.open[0].publisher, P);
        rooms.negotiation_started(P, &[(plan.open[0].track, Mid::from("1"))]);
        rooms.negotiation_completed(P);
        assert_eq!(
            rooms.fanout_pairs(P, Mid::from("0")),
            vec![(P, Mid::from("1"))]
        );
        rooms.leave(P);
        assert_eq!(rooms.room_count(), 0);
        assert_eq!(rooms.down_count(), 0);
        assert!(!rooms.is_loopback(PROBE));
    }

    #[test]
    fn an_ordinary_room_never_echoes() {
        let mut rooms = Rooms::default();
        rooms.join(RoomId(3), OTHER).unwrap();
        rooms.set_ready(OTHER);
        let affected = rooms.publish(
            OTHER,
            Mid::from("0"),
            MediaKind::Audio,
            TrackSource::Microphone,
            vec![],
        );
        assert!(affected.is_empty());
        assert!(rooms.plan_negotiation(OTHER).is_none());
        assert!(matches!(
            rooms.join_loopback(RoomId(3), P),
            Err(SfuError::AlreadyJoined)
        ));
    }
}
