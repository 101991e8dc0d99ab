//! Placement: which media loop owns a room, and so every participant in it.
//!
//! Invariants:
//! - A room is placed whole on one loop when its first participant joins (the loop with the
//!   fewest participants), and stays there while it has members.
//! - This map is only touched by control operations (`join`, `leave`, a loop reporting a lost
//!   participant), behind one short `std::sync::Mutex` that is never held across `.await`.
//!   Media forwarding never reads it.

use std::collections::HashMap;

use crate::{ParticipantId, RoomId, SfuError};

/// Rooms and participants per loop.
#[derive(Debug)]
pub(crate) struct Placement {
    rooms: HashMap<RoomId, (usize, usize)>,
    /// Each placed participant's room, loop and generation.
    participants: HashMap<ParticipantId, (RoomId, usize, u64)>,
    load: Vec<usize>,
    /// The generation of the next placement (never reused).
    next_generation: u64,
}

/// Where a participant was placed: its loop, and which placement of that participant id this
/// is. Signalling reuses an id when a connection leaves and joins again; a loop that reports
/// the old one lost, or a join that failed, must not take out the newer placement, so those
/// paths remove by generation ([`Placement::remove_generation`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Placed {
    pub(crate) index: usize,
    pub(crate) generation: u64,
}

impl Placement {
    /// An empty placement over `loops` loops (at least one).
    pub(crate) fn new(loops: usize) -> Placement {
        Placement {
            rooms: HashMap::new(),
            participants: HashMap::new(),
            load: vec![0; loops.max(1)],
            next_generation: 1,
        }
    }

    /// Reserves a place for `p` in `room`: the room's loop, or the least-loaded loop for a new
    /// room (the lowest index on ties). Undo with [`Placement::remove`] if the join fails.
    pub(crate) fn place(&mut self, room: RoomId, p: ParticipantId) -> Result<Placed, SfuError> {
        if self.participants.contains_key(&p) {
            return Err(SfuError::AlreadyJoined);
        }
        let index = match self.rooms.get(&room) {
            Some((index, _)) => *index,
            None => least_loaded(&self.load),
        };
        let entry = self.rooms.entry(room).or_insert((index, 0));
        entry.1 += 1;
        if let Some(load) = self.load.get_mut(index) {
            *load += 1;
        }
        let generation = self.next_generation;
        self.next_generation += 1;
        self.participants.insert(p, (room, index, generation));
        Ok(Placed { index, generation })
    }

    /// The loop owning `p`, if it is placed.
    pub(crate) fn loop_of(&self, p: ParticipantId) -> Option<usize> {
        self.participants.get(&p).map(|(_, index, _)| *index)
    }

    /// Forgets `p` only if its current placement is `generation` (see [`Placed`]).
    pub(crate) fn remove_generation(&mut self, p: ParticipantId, generation: u64) -> Option<usize> {
        match self.participants.get(&p) {
            Some((_, _, current)) if *current == generation => self.remove(p),
            _ => None,
        }
    }

    /// Forgets `p`; a room without members is forgotten too. Returns `p`'s loop.
    pub(crate) fn remove(&mut self, p: ParticipantId) -> Option<usize> {
        let (room, index, _) = self.participants.remove(&p)?;
        if let Some(load) = self.load.get_mut(index) {
            *load = load.saturating_sub(1);
        }
        if let Some(entry) = self.rooms.get_mut(&room) {
            entry.1 = entry.1.saturating_sub(1);
            if entry.1 == 0 {
                self.rooms.remove(&room);
            }
        }
        Some(index)
    }
}

fn least_loaded(load: &[usize]) -> usize {
    load.iter()
        .enumerate()
        .min_by_key(|(i, l)| (**l, *i))
        .map(|(i, _)| i)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rooms_are_placed_whole_on_the_least_loaded_loop() {
        let mut placement = Placement::new(2);
        assert_eq!(
            placement.place(RoomId(1), ParticipantId(1)).unwrap().index,
            0
        );
        assert_eq!(
            placement.place(RoomId(1), ParticipantId(2)).unwrap().index,
            0
        );
        // Loop 1 is empty: the next room goes there, and its members follow.
        assert_eq!(
            placement.place(RoomId(2), ParticipantId(3)).unwrap().index,
            1
        );
        assert_eq!(
            placement.place(RoomId(3), ParticipantId(4)).unwrap().index,
            1
        );
        assert_eq!(
            placement.place(RoomId(2), ParticipantId(5)).unwrap().index,
            1
        );
        // Loop 0 has 2, loop 1 has 3.
        assert_eq!(
            placement.place(RoomId(4), ParticipantId(6)).unwrap().index,
            0
        );
        assert!(matches!(
            placement.place(RoomId(4), ParticipantId(6)),
            Err(SfuError::AlreadyJoined)
        ));
        assert_eq!(placement.loop_of(ParticipantId(5)), Some(1));
        assert_eq!(placement.remove(ParticipantId(5)), Some(1));
        assert_eq!(placement.remove(ParticipantId(5)), None);
        assert_eq!(placement.loop_of(ParticipantId(5)), None);
    }

    #[test]
    fn an_emptied_room_can_be_placed_again_elsewhere() {
        let mut placement = Placement::new(2);
        placement.place(RoomId(1), ParticipantId(1)).unwrap();
        placement.place(RoomId(2), ParticipantId(2)).unwrap();
        placement.place(RoomId(2), ParticipantId(3)).unwrap();
        placement.remove(ParticipantId(1));
        // Room 1 is gone; loop 0 is now the least loaded.
        assert_eq!(
            placement.place(RoomId(1), ParticipantId(4)).unwrap().index,
            0
        );
        let single = Placement::new(0);
        assert_eq!(single.load.len(), 1);
    }

    #[test]
    fn a_stale_generation_does_not_remove_a_newer_placement() {
        let mut placement = Placement::new(2);
        let first = placement.place(RoomId(1), ParticipantId(7)).unwrap();
        // The participant leaves (signalling forgets it at once) and joins again elsewhere
        // before its old loop reports the old session lost.
        placement.remove(ParticipantId(7));
        placement.place(RoomId(9), ParticipantId(8)).unwrap();
        let second = placement.place(RoomId(2), ParticipantId(7)).unwrap();
        assert_ne!(first.generation, second.generation);
        assert_eq!(second.index, 1, "loop 0 holds participant 8's room");
        assert_eq!(
            placement.remove_generation(ParticipantId(7), first.generation),
            None
        );
        assert_eq!(placement.loop_of(ParticipantId(7)), Some(1));
        assert_eq!(placement.load, vec![1, 1]);
        assert_eq!(
            placement.remove_generation(ParticipantId(7), second.generation),
            Some(1)
        );
        assert_eq!(placement.loop_of(ParticipantId(7)), None);
    }
}
