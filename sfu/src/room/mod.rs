//! Rooms, published tracks and down tracks: the SFU's bookkeeping, with no IO and no `Rtc`.
//!
//! Invariants:
//! - A participant is in at most one room; media only flows between members of the same room.
//! - Every published track of a room has one [`DownTrack`] in every other member of that room;
//!   in a loopback room (one member, a connectivity probe: see `loopback`) also in its publisher.
//! - A down track forwards media only once its m-line is negotiated (`Open`); the fan-out list of
//!   a published track holds exactly one leg per open down track.
//! - At most one server offer per participant is outstanding; changes made meanwhile wait in
//!   `ToOpen`/`ToStop` until the answer arrives ([`Rooms::negotiation_completed`]).
//!
//! All state of one room lives here so a room can later be placed whole on one media loop.

use std::collections::{HashMap, HashSet};

use str0m::media::{MediaKind, Mid, Rid};

use crate::keyframe::KeyframeThrottle;
use crate::simulcast::{Hysteresis, LayerSwitch, Layers, Rebaser};
use crate::{ParticipantId, RoomId, SfuError, TrackSource, View};

mod forward;
mod loopback;
pub(crate) use forward::{DESIRED_FLOOR_BPS, Delivery, Frame, KeyframeAsk};

/// Identifies a published track inside one media loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct TrackId(u64);

impl TrackId {
    /// The number, unique within a media loop for its lifetime (never reused).
    pub(crate) fn number(self) -> u64 {
        self.0
    }
}

/// A track a participant sends to the SFU (one incoming m-line).
#[derive(Debug)]
struct PublishedTrack {
    publisher: ParticipantId,
    /// The publisher's m-line the media arrives on.
    mid: Mid,
    kind: MediaKind,
    source: TrackSource,
    /// Where to forward: one leg per open down track.
    fanout: Vec<Leg>,
    keyframe: KeyframeThrottle,
    /// Simulcast layers, for a track with rids.
    layers: Option<Layers>,
}

/// The forwarding state of one open down track.
#[derive(Debug)]
struct Leg {
    subscriber: ParticipantId,
    /// The subscriber's m-line.
    mid: Mid,
    view: View,
    switch: LayerSwitch,
    /// Keeps the layer choice from flapping (see `simulcast::select`).
    hysteresis: Hysteresis,
    rebase: Rebaser,
}

/// Negotiation state of one down track (an outgoing m-line in a subscriber's session).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DownState {
    /// Needs an m-line in the next server offer.
    ToOpen,
    /// Offered as this m-line, waiting for the answer.
    Negotiating(Mid),
    /// Negotiated: media is forwarded on this m-line.
    Open(Mid),
    /// The track is gone; its m-line must go inactive in the next server offer.
    ToStop(Mid),
    /// Offered as inactive, waiting for the answer.
    NegotiatingStop(Mid),
}

/// One published track as seen by one subscriber.
#[derive(Debug)]
struct DownTrack {
    track: TrackId,
    kind: MediaKind,
    publisher: ParticipantId,
    source: TrackSource,
    /// The publisher's m-line (part of the msid track id).
    publisher_mid: Mid,
    state: DownState,
    /// The published track ended while this m-line was being negotiated.
    ended: bool,
    /// How the subscriber shows it (kept here until the m-line opens).
    view: View,
}

#[derive(Debug)]
struct Member {
    room: RoomId,
    published: Vec<TrackId>,
    down: Vec<DownTrack>,
    /// A server offer is outstanding.
    negotiating: bool,
    /// The participant's first offer was answered, so server offers may be sent.
    ready: bool,
    /// Send-side bandwidth estimate towards this participant (bit/s), once known.
    estimate: Option<u64>,
    /// What the participant's BWE was last told to sustain and to probe for (bit/s), see
    /// [`Rooms::take_bwe_targets`].
    bwe_target: Option<BweTarget>,
    /// Re-probing while the estimate stays below the desired rate (see
    /// [`Rooms::take_bwe_targets`]): when the next raised desired rate is due, and whether the
    /// last one handed over was raised.
    reprobe_at: Option<std::time::Instant>,
    raised: bool,
    /// A visible simulcast leg is below the layer its view wants for lack of budget.
    budget_limited: bool,
}

/// The rates to hand to a subscriber's bandwidth estimator (str0m `Bwe::set_bitrate`): the
/// total to sustain with media and padding (enough for the next simulcast layer up, so the
/// estimate can grow into it), and the total it should probe for (every visible track at the
/// layer its view wants).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BweTarget {
    pub(crate) minimum: u64,
    pub(crate) desired: u64,
}

/// A new send-only m-line for the next server offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OpenDown {
    pub(crate) track: TrackId,
    pub(crate) kind: MediaKind,
    /// Whose media it carries, and what it is: these make the msid.
    pub(crate) publisher: ParticipantId,
    pub(crate) source: TrackSource,
    pub(crate) publisher_mid: Mid,
}

/// What the next server offer for one participant must contain.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct NegotiationPlan {
    /// New send-only m-lines.
    pub(crate) open: Vec<OpenDown>,
    /// Existing m-lines to make inactive.
    pub(crate) stop: Vec<Mid>,
}

/// All rooms of one media loop.
#[derive(Debug, Default)]
pub(crate) struct Rooms {
    rooms: HashMap<RoomId, Vec<ParticipantId>>,
    members: HashMap<ParticipantId, Member>,
    tracks: HashMap<TrackId, PublishedTrack>,
    /// `(publisher, publisher's mid)` → track.
    by_source: HashMap<(ParticipantId, Mid), TrackId>,
    /// `(subscriber, subscriber's mid)` → track, for keyframe requests.
    by_down: HashMap<(ParticipantId, Mid), TrackId>,
    next_track: u64,
    /// Rooms whose only member receives its own tracks back (connectivity probes).
    loopback: HashSet<RoomId>,
    /// Members whose `bwe_target` changed since `take_bwe_targets`.
    bwe_changed: Vec<ParticipantId>,
}

impl Rooms {
    /// Number of rooms with at least one member.
    pub(crate) fn room_count(&self) -> usize {
        self.rooms.len()
    }

    /// Number of members over all rooms.
    pub(crate) fn participant_count(&self) -> usize {
        self.members.len()
    }

    /// The room `p` is in.
    pub(crate) fn room_of(&self, p: ParticipantId) -> Option<RoomId> {
        self.members.get(&p).map(|m| m.room)
    }

    /// The members of `room`.
    pub(crate) fn members_of(&self, room: RoomId) -> &[ParticipantId] {
        self.rooms.get(&room).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Number of published tracks over all rooms.
    pub(crate) fn published_count(&self) -> usize {
        self.tracks.len()
    }

    /// Number of down tracks (in any negotiation state) over all members.
    pub(crate) fn down_count(&self) -> usize {
        self.members.values().map(|m| m.down.len()).sum()
    }

    /// Whether `p` is a member of some room.
    #[cfg(test)]
    pub(crate) fn contains(&self, p: ParticipantId) -> bool {
        self.members.contains_key(&p)
    }

    /// Adds `p` to `room`; it will be offered every track already published there.
    /// A loopback room takes no second member (`AlreadyJoined`).
    pub(crate) fn join(&mut self, room: RoomId, p: ParticipantId) -> Result<(), SfuError> {
        if self.members.contains_key(&p) || self.loopback.contains(&room) {
            return Err(SfuError::AlreadyJoined);
        }
        let others = self.rooms.entry(room).or_default();
        let mut down = Vec::new();
        for other in others.iter() {
            let Some(member) = self.members.get(other) else {
                continue;
            };
            for track_id in &member.published {
                if let Some(track) = self.tracks.get(track_id) {
                    down.push(DownTrack::new(*track_id, track));
                }
            }
        }
        others.push(p);
        self.members.insert(
            p,
            Member {
                room,
                published: Vec::new(),
                down,
                negotiating: false,
                ready: false,
                estimate: None,
                bwe_target: None,
                reprobe_at: None,
                raised: false,
                budget_limited: false,
            },
        );
        Ok(())
    }
}

impl Rooms {
    /// Whether `p` publishes a track on its m-line `mid`.
    pub(crate) fn publishes(&self, p: ParticipantId, mid: Mid) -> bool {
        self.by_source.contains_key(&(p, mid))
    }

    /// Records that `p` sends media on its m-line `mid`; every other member of its room gets a
    /// down track for it. Returns the members that now need a server offer (empty when `p` is
    /// not in a room or the track is already known).
    pub(crate) fn publish(
        &mut self,
        p: ParticipantId,
        mid: Mid,
        kind: MediaKind,
        source: TrackSource,
        rids: Vec<Rid>,
    ) -> Vec<ParticipantId> {
        if self.by_source.contains_key(&(p, mid)) {
            return Vec::new();
        }
        let Some(member) = self.members.get_mut(&p) else {
            return Vec::new();
        };
        let room = member.room;
        let id = TrackId(self.next_track);
        self.next_track += 1;
        member.published.push(id);
        let track = PublishedTrack {
            publisher: p,
            mid,
            kind,
            source,
            fanout: Vec::new(),
            keyframe: KeyframeThrottle::default(),
            layers: (!rids.is_empty()).then(|| Layers::new(rids)),
        };
        let mut affected = Vec::new();
        let echo = self.loopback.contains(&room);
        for other in self.rooms.get(&room).into_iter().flatten() {
            if *other == p && !echo {
                continue;
            }
            if let Some(m) = self.members.get_mut(other) {
                m.down.push(DownTrack::new(id, &track));
                affected.push(*other);
            }
        }
        self.tracks.insert(id, track);
        self.by_source.insert((p, mid), id);
        affected
    }

    /// Ends the track `p` publishes on its m-line `mid` (the publisher made it inactive, e.g. a
    /// screen share stopped): it ends for every subscriber. Returns the members that now need a
    /// server offer (empty when no such track is published).
    pub(crate) fn unpublish(&mut self, p: ParticipantId, mid: Mid) -> Vec<ParticipantId> {
        let Some(id) = self.by_source.remove(&(p, mid)) else {
            return Vec::new();
        };
        self.tracks.remove(&id);
        let Some(member) = self.members.get_mut(&p) else {
            return Vec::new();
        };
        member.published.retain(|t| *t != id);
        let room = member.room;
        let mut affected = Vec::new();
        for other in self.rooms.get(&room).into_iter().flatten() {
            let Some(m) = self.members.get_mut(other) else {
                continue;
            };
            if end_down_track(m, id, &mut self.by_down, *other) && !affected.contains(other) {
                affected.push(*other);
            }
        }
        affected
    }

    /// Removes `p` from its room: its published tracks end for everyone and its own down tracks
    /// are dropped. Returns the members that now need a server offer.
    pub(crate) fn leave(&mut self, p: ParticipantId) -> Vec<ParticipantId> {
        let Some(member) = self.members.remove(&p) else {
            return Vec::new();
        };
        if let Some(list) = self.rooms.get_mut(&member.room) {
            list.retain(|x| *x != p);
            if list.is_empty() {
                self.rooms.remove(&member.room);
                self.loopback.remove(&member.room);
            }
        }
        // Our subscriptions: leave the publishers' fan-out lists.
        for down in &member.down {
            if let Some(mid) = down.state.mid() {
                self.by_down.remove(&(p, mid));
            }
            if let Some(track) = self.tracks.get_mut(&down.track) {
                track.fanout.retain(|leg| leg.subscriber != p);
            }
        }
        // Our publications: end them in every subscriber.
        let mut affected = Vec::new();
        for id in &member.published {
            let Some(track) = self.tracks.remove(id) else {
                continue;
            };
            self.by_source.remove(&(p, track.mid));
            for other in self.rooms.get(&member.room).into_iter().flatten() {
                let Some(m) = self.members.get_mut(other) else {
                    continue;
                };
                if end_down_track(m, *id, &mut self.by_down, *other) && !affected.contains(other) {
                    affected.push(*other);
                }
            }
        }
        affected
    }

    /// Whether `p`'s first offer has been answered.
    pub(crate) fn is_ready(&self, p: ParticipantId) -> bool {
        self.members.get(&p).is_some_and(|m| m.ready)
    }

    /// Marks that `p`'s own first offer was answered, so server offers may now follow.
    pub(crate) fn set_ready(&mut self, p: ParticipantId) {
        if let Some(m) = self.members.get_mut(&p) {
            m.ready = true;
        }
    }

    /// What the next server offer for `p` must contain; `None` while an offer is outstanding,
    /// before `p`'s first offer, or when nothing changed.
    pub(crate) fn plan_negotiation(&self, p: ParticipantId) -> Option<NegotiationPlan> {
        let m = self.members.get(&p)?;
        if m.negotiating || !m.ready {
            return None;
        }
        let mut plan = NegotiationPlan::default();
        for down in &m.down {
            match down.state {
                DownState::ToOpen => plan.open.push(OpenDown {
                    track: down.track,
                    kind: down.kind,
                    publisher: down.publisher,
                    source: down.source,
                    publisher_mid: down.publisher_mid,
                }),
                DownState::ToStop(mid) => plan.stop.push(mid),
                _ => {}
            }
        }
        (!plan.open.is_empty() || !plan.stop.is_empty()).then_some(plan)
    }

    /// A server offer carrying `plan` was sent; `opened` tells which m-line each new down track
    /// got. Everything in the plan is now waiting for the answer.
    pub(crate) fn negotiation_started(&mut self, p: ParticipantId, opened: &[(TrackId, Mid)]) {
        let Some(m) = self.members.get_mut(&p) else {
            return;
        };
        m.negotiating = true;
        for down in &mut m.down {
            match down.state {
                DownState::ToOpen => {
                    if let Some((_, mid)) = opened.iter().find(|(t, _)| *t == down.track) {
                        down.state = DownState::Negotiating(*mid);
                    }
                }
                DownState::ToStop(mid) => down.state = DownState::NegotiatingStop(mid),
                _ => {}
            }
        }
    }

    /// The answer to `p`'s outstanding server offer was accepted: offered m-lines go live.
    /// Returns whether `p` has queued changes (then plan the next offer right away).
    pub(crate) fn negotiation_completed(&mut self, p: ParticipantId) -> bool {
        let Some(m) = self.members.get_mut(&p) else {
            return false;
        };
        m.negotiating = false;
        let mut queued = false;
        let tracks = &mut self.tracks;
        let by_down = &mut self.by_down;
        m.down.retain_mut(|down| match down.state {
            DownState::Negotiating(mid) if down.ended => {
                down.state = DownState::ToStop(mid);
                queued = true;
                true
            }
            DownState::Negotiating(mid) => {
                down.state = DownState::Open(mid);
                by_down.insert((p, mid), down.track);
                if let Some(track) = tracks.get_mut(&down.track) {
                    track.fanout.push(Leg {
                        subscriber: p,
                        mid,
                        view: down.view,
                        switch: LayerSwitch::default(),
                        hysteresis: Hysteresis::default(),
                        rebase: Rebaser::default(),
                    });
                }
                true
            }
            DownState::NegotiatingStop(mid) => {
                by_down.remove(&(p, mid));
                false
            }
            DownState::ToOpen | DownState::ToStop(_) => {
                queued = true;
                true
            }
            DownState::Open(_) => true,
        });
        queued
    }

    /// The outstanding server offer of `p` is void (its answer was rejected, or the client's
    /// own offer superseded it): everything in it goes back to the queue.
    pub(crate) fn negotiation_aborted(&mut self, p: ParticipantId) {
        let Some(m) = self.members.get_mut(&p) else {
            return;
        };
        m.negotiating = false;
        m.down.retain_mut(|down| match down.state {
            DownState::Negotiating(_) if down.ended => false,
            DownState::Negotiating(_) => {
                down.state = DownState::ToOpen;
                true
            }
            DownState::NegotiatingStop(mid) => {
                down.state = DownState::ToStop(mid);
                true
            }
            _ => true,
        });
    }

    /// Where media arriving from `p` on `mid` goes: `(subscriber, subscriber's mid)` pairs.
    #[cfg(test)]
    pub(crate) fn fanout_pairs(&self, p: ParticipantId, mid: Mid) -> Vec<(ParticipantId, Mid)> {
        self.by_source
            .get(&(p, mid))
            .and_then(|id| self.tracks.get(id))
            .map(|t| t.fanout.iter().map(|l| (l.subscriber, l.mid)).collect())
            .unwrap_or_default()
    }
}

impl DownTrack {
    fn new(track: TrackId, published: &PublishedTrack) -> DownTrack {
        DownTrack {
            track,
            kind: published.kind,
            publisher: published.publisher,
            source: published.source,
            publisher_mid: published.mid,
            state: DownState::ToOpen,
            ended: false,
            view: View::default(),
        }
    }
}

impl DownState {
    fn mid(self) -> Option<Mid> {
        match self {
            DownState::ToOpen => None,
            DownState::Negotiating(m)
            | DownState::Open(m)
            | DownState::ToStop(m)
            | DownState::NegotiatingStop(m) => Some(m),
        }
    }
}

/// Ends `subscriber`'s down track for `track`. Returns whether a renegotiation is needed.
fn end_down_track(
    member: &mut Member,
    track: TrackId,
    by_down: &mut HashMap<(ParticipantId, Mid), TrackId>,
    subscriber: ParticipantId,
) -> bool {
    let mut renegotiate = false;
    member.down.retain_mut(|down| {
        if down.track != track {
            return true;
        }
        match down.state {
            // Never offered: just forget it.
            DownState::ToOpen => false,
            DownState::Negotiating(_) => {
                down.ended = true;
                true
            }
            DownState::Open(mid) => {
                by_down.remove(&(subscriber, mid));
                down.state = DownState::ToStop(mid);
                renegotiate = true;
                true
            }
            DownState::ToStop(_) | DownState::NegotiatingStop(_) => true,
        }
    });
    renegotiate
}

#[cfg(test)]
mod tests;
