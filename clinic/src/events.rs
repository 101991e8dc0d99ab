//! What the clinic tells the real-time side after a committed change: one [`ClinicEvent`] type
//! and one subscriber ([`Clinic::subscribe`]), instead of a listener registry per kind.
//!
//! Invariants: an event is emitted only after its change is committed, in the order the changes
//! were made on that task; the subscriber runs on the emitting (request) task, so it must not
//! block or await — the composing binary hands each event to one task in order (see
//! ARCHITECTURE.md, "Clinic events"). Events carry ids only, never names or texts.

use std::sync::{Arc, RwLock};

use crate::Clinic;
use crate::ids::{ChatChannelId, GuestInvitationId, OrganisationId, SessionId};

/// A committed change the signalling hub must act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClinicEvent {
    /// Service announcements were created or deleted: reload
    /// [`Clinic::active_announcements`] into the hub.
    AnnouncementsChanged,
    /// A guest link was revoked: that guest's connection ends at once (1008 `revoked`).
    GuestRevoked {
        organisation_id: OrganisationId,
        guest_id: GuestInvitationId,
    },
    /// A channel's history was deleted through the API, through seq `through_seq`: open chats
    /// drop those messages (`chat_cleared`).
    ChatCleared {
        channel_id: ChatChannelId,
        through_seq: i64,
    },
    /// A channel's patient may no longer chat between visits (F142; an admin stopped it, or the
    /// organisation's settings closed it): its live chat-only connections end (`chat_closed`).
    ChatClosedBetweenVisits { channel_id: ChatChannelId },
    /// A staff login session ended (logout; later deactivation or a password change): the
    /// connections joined with its tokens end (1008 `session_ended`).
    StaffSessionEnded { session_id: SessionId },
}

/// The one subscriber to [`ClinicEvent`]s. It runs on the emitting task: return at once.
pub type EventSubscriber = Arc<dyn Fn(ClinicEvent) + Send + Sync>;

/// The subscriber slot (a field of the clinic's shared state).
#[derive(Default)]
pub(crate) struct Subscriber(RwLock<Option<EventSubscriber>>);

impl Clinic {
    /// Sets the subscriber that receives every [`ClinicEvent`] from now on, replacing any
    /// earlier one (there is one: the composing binary, or a test). Without one, events are
    /// dropped.
    pub fn subscribe(&self, f: EventSubscriber) {
        *self
            .inner
            .events
            .0
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Some(f);
    }

    /// Tells the subscriber about `event`; call only after the change is committed.
    pub(crate) fn emit(&self, event: ClinicEvent) {
        let subscriber = self
            .inner
            .events
            .0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(f) = subscriber {
            f(event);
        }
    }
}
