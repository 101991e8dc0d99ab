//! The WebSocket side of file sharing (see [`crate::files`]): `file_offer`, `file_download`,
//! and the files shared before, sent to whoever enters a consultation.
//!
//! Invariant: offers and download tickets are made under the state lock, so a consultation
//! cannot end between the membership check and the ticket; every `file_shared` frame goes
//! through the outbox (a full queue drops the connection, never the frame alone).

use chrono::{DateTime, Utc};
use consultroom_sfu::RoomId;

use super::Hub;
use super::session::Session;
use crate::files::http::shared_frame;
use crate::protocol::{ErrorCode, ServerMessage};
use crate::state::{ConnId, HubState};

impl Session {
    /// `file_offer`: a one-time upload URL for a file of the declared size.
    pub(super) async fn file_offer(&self, id: Option<String>, name: String, size: u64) {
        if !self.permissions.file_sharing {
            self.error(
                id,
                ErrorCode::Forbidden,
                "file sharing is not allowed in this organisation",
            );
            return;
        }
        let hub = &self.hub;
        // Under the state lock, so the consultation cannot end between check and offer.
        let state = hub.inner.state.lock().await;
        let Some(member) = state.consultation_member(self.conn) else {
            self.error(id, ErrorCode::InvalidState, "not in a consultation");
            return;
        };
        match hub.inner.files.offer(&member, &name, size, hub.now()) {
            Ok((file_id, ticket, expires_at)) => self.send(
                id,
                ServerMessage::FileUploadReady {
                    file_id,
                    url: format!("/api/v1/consultation-files/uploads/{ticket}"),
                    expires_at: rfc3339(expires_at),
                },
            ),
            Err(r) => self.error(id, r.code, r.message),
        }
    }

    /// `file_download`: a single-use download URL for a file of this consultation.
    pub(super) async fn file_download(&self, id: Option<String>, file_id: String) {
        let hub = &self.hub;
        let state = hub.inner.state.lock().await;
        let Some(member) = state.consultation_member(self.conn) else {
            self.error(id, ErrorCode::NotFound, "no such file in this consultation");
            return;
        };
        match hub
            .inner
            .files
            .download_ticket(&member, &file_id, hub.now())
        {
            Ok((ticket, expires_at)) => self.send(
                id,
                ServerMessage::FileDownloadReady {
                    file_id,
                    url: format!("/api/v1/consultation-files/downloads/{ticket}"),
                    expires_at: rfc3339(expires_at),
                },
            ),
            Err(r) => self.error(id, r.code, r.message),
        }
    }
}

impl Hub {
    /// Sends each connection entering a consultation (`joins`, from [`crate::state::Effects`])
    /// the `file_shared` frames of the files shared there before. Under the state lock.
    pub(super) fn send_files_shared_before(&self, state: &HubState, joins: &[(RoomId, ConnId)]) {
        for (room, c) in joins {
            let Some(cid) = state.consultation_public_id(room.0) else {
                continue;
            };
            let files = self.inner.files.files_of(&cid);
            self.inner
                .outbox
                .push_all(files.iter().map(|f| (*c, shared_frame(f))));
        }
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
