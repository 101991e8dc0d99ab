//! The HTTP side of file sharing (`Hub::files_router`, merged by the binary):
//!
//! - `PUT /api/v1/consultation-files/uploads/{ticket}`: the body of an offered file. Refused before a
//!   byte of the body is read when `Content-Length` is missing (411) or differs from the offered
//!   size (413 when larger); a body longer than declared is cut off (413). The first bytes are
//!   sniffed before anything reaches the disk (415 when not allowed or disguised); the rest
//!   streams to a random name in the consultation's directory. An aborted, failed or refused
//!   upload leaves nothing behind.
//! - `GET /api/v1/consultation-files/downloads/{ticket}`: a file, for the participant the single-use
//!   ticket was issued to; recorded before a byte is sent; `attachment`, `nosniff` and a
//!   sandboxing CSP. Unknown, used or expired tickets are 404.
//!
//! Only this router accepts bodies above the server's 64 KiB cap: it streams, never buffers.

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};

use super::sniff::{self, SNIFF_LEN, SniffError};
use super::{Files, StoredFile, UploadTicket, names};
use crate::outbox::Outbox;
use crate::protocol::ServerMessage;
use crate::state::HubState;

const UPLOAD: &str = "/api/v1/consultation-files/uploads/{ticket}";
const DOWNLOAD: &str = "/api/v1/consultation-files/downloads/{ticket}";

/// The routes of the file router (for the OpenAPI check).
pub fn routes() -> Vec<(Method, &'static str)> {
    vec![(Method::PUT, UPLOAD), (Method::GET, DOWNLOAD)]
}

/// What the file routes need of the hub: the files, the connections' outbox, and a look at who
/// is in a consultation (the hub's state lock). Not the whole hub, so `files` does not depend on
/// `ws`.
#[derive(Clone)]
pub(crate) struct FilesHttp {
    pub files: Arc<Files>,
    pub outbox: Outbox,
    pub state: Arc<tokio::sync::Mutex<HubState>>,
    pub now: Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>,
}

impl FilesHttp {
    fn files(&self) -> &Arc<Files> {
        &self.files
    }

    fn now(&self) -> DateTime<Utc> {
        (self.now)()
    }

    /// Register a completed upload and tell everyone in its consultation; `None` when the
    /// consultation has ended meanwhile. Under the state lock, so the consultation cannot end
    /// between the check and the registration, and `file_shared` is ordered with the
    /// consultation's other frames. A member whose queue is full is dropped as too slow.
    pub(crate) async fn share_file(
        &self,
        t: &UploadTicket,
        file: StoredFile,
    ) -> Option<StoredFile> {
        let state = self.state.lock().await;
        let members = state.consultation_members(&t.consultation_id)?;
        let file = self.files.complete(t, file)?;
        let frame = shared_frame(&file);
        self.outbox
            .push_all(members.into_iter().map(|m| (m, frame.clone())));
        Some(file)
    }
}

pub(crate) fn router(ctx: FilesHttp) -> Router {
    Router::new()
        .route(UPLOAD, put(upload))
        .route(DOWNLOAD, get(download))
        .method_not_allowed_fallback(|| async {
            error(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "method not allowed",
            )
        })
        .with_state(ctx)
}

/// The `{ticket}` segment; one that does not even decode (e.g. `%FF`) is an unknown ticket, in
/// the JSON error shape rather than axum's plain-text rejection.
struct Ticket(String);

impl<S: Send + Sync> FromRequestParts<S> for Ticket {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        match Path::<String>::from_request_parts(parts, state).await {
            Ok(Path(ticket)) => Ok(Ticket(ticket)),
            Err(_) => Err(error(
                StatusCode::NOT_FOUND,
                "not_found",
                "no such upload or file",
            )),
        }
    }
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({"error": {"code": code, "message": message}});
    (
        status,
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        axum::Json(body),
    )
        .into_response()
}

fn internal(e: impl std::fmt::Display, what: &str) -> Response {
    let correlation = uuid::Uuid::new_v4();
    tracing::error!(%correlation, error = %e, "{what}");
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        &format!("internal error ({correlation})"),
    )
}

/// Gives the reservation back and deletes a partial file unless the upload completed.
struct Pending<'a> {
    ctx: &'a FilesHttp,
    ticket: UploadTicket,
    path: Option<PathBuf>,
    done: bool,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        self.ctx.files().release(&self.ticket);
        if let Some(p) = &self.path {
            // Also runs when the client disconnects and the handler future is dropped.
            let _ = std::fs::remove_file(p);
        }
        self.ctx
            .files()
            .metrics
            .uploads
            .with_label_values(&["refused_or_aborted"])
            .inc();
    }
}

async fn upload(
    State(ctx): State<FilesHttp>,
    Ticket(ticket): Ticket,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(ticket) = ctx.files().redeem_upload(&ticket, ctx.now()) else {
        return error(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such upload (the link was used or has expired)",
        );
    };
    let mut pending = Pending {
        ctx: &ctx,
        ticket,
        path: None,
        done: false,
    };
    let declared = pending.ticket.size;
    // Decided on the headers alone: the body is not read (nor `100 Continue` sent) when refused.
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match length {
        None => {
            return error(
                StatusCode::LENGTH_REQUIRED,
                "length_required",
                "Content-Length is required",
            );
        }
        Some(n) if n > declared => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                "the body is larger than the offered file",
            );
        }
        Some(n) if n < declared => {
            return error(
                StatusCode::BAD_REQUEST,
                "size_mismatch",
                "the body is smaller than the offered file",
            );
        }
        Some(_) => {}
    }

    let mut stream = body.into_data_stream();
    let mut received: u64 = 0;
    let mut head: Vec<u8> = Vec::with_capacity(SNIFF_LEN.min(declared as usize));
    let mut rest: Option<Bytes> = None;
    while head.len() < SNIFF_LEN {
        match stream.next().await {
            Some(Ok(chunk)) => {
                received += chunk.len() as u64;
                if received > declared {
                    return too_long();
                }
                let take = (SNIFF_LEN - head.len()).min(chunk.len());
                head.extend_from_slice(&chunk[..take]);
                if take < chunk.len() {
                    rest = Some(chunk.slice(take..));
                }
            }
            Some(Err(_)) => return aborted(),
            None => break,
        }
    }
    let (ty, name) = match sniff::check(&head, &pending.ticket.name) {
        Ok(v) => v,
        Err(SniffError::NotAllowed) => {
            return error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_type",
                "files of this type cannot be shared",
            );
        }
        Err(SniffError::ExtensionMismatch) => {
            return error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_type",
                "the file's content does not match its name",
            );
        }
    };

    let path = match ctx.files().storage_path(&pending.ticket) {
        Ok(Some(p)) => p,
        Ok(None) => return gone(),
        Err(e) => return internal(e, "creating the consultation file directory failed"),
    };
    let mut opts = tokio::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let file = match opts.open(&path).await {
        Ok(f) => f,
        // The directory went away: the consultation ended meanwhile.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return gone(),
        Err(e) => return internal(e, "creating a consultation file failed"),
    };
    pending.path = Some(path.clone());
    let mut out = BufWriter::with_capacity(256 * 1024, file);
    if let Err(e) = out.write_all(&head).await {
        return internal(e, "writing a consultation file failed");
    }
    drop(head);
    if let Some(chunk) = rest.take()
        && let Err(e) = out.write_all(&chunk).await
    {
        return internal(e, "writing a consultation file failed");
    }
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else { return aborted() };
        received += chunk.len() as u64;
        if received > declared {
            return too_long();
        }
        if let Err(e) = out.write_all(&chunk).await {
            return internal(e, "writing a consultation file failed");
        }
    }
    if received != declared {
        return error(
            StatusCode::BAD_REQUEST,
            "size_mismatch",
            "the body is shorter than declared",
        );
    }
    if let Err(e) = out.flush().await {
        return internal(e, "writing a consultation file failed");
    }
    drop(out);

    let stored = StoredFile {
        file_id: pending.ticket.file_id.clone(),
        name,
        size: received,
        content_type: ty.mime,
        from: pending.ticket.participant_id.clone(),
        shared_at: ctx.now(),
        path,
    };
    let Some(stored) = ctx.share_file(&pending.ticket, stored).await else {
        return gone();
    };
    pending.done = true;
    let metrics = &ctx.files().metrics;
    metrics.uploads.with_label_values(&["stored"]).inc();
    metrics.upload_bytes.inc_by(received);
    (
        StatusCode::CREATED,
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        axum::Json(json!({
            "file_id": stored.file_id,
            "name": stored.name,
            "size": stored.size,
            "content_type": stored.content_type,
        })),
    )
        .into_response()
}

fn too_long() -> Response {
    error(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        "the body is longer than declared",
    )
}

fn aborted() -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "aborted",
        "the upload was interrupted",
    )
}

fn gone() -> Response {
    error(
        StatusCode::GONE,
        "gone",
        "the consultation has ended; its files are deleted",
    )
}

async fn download(State(ctx): State<FilesHttp>, Ticket(ticket): Ticket) -> Response {
    let not_found = || error(StatusCode::NOT_FOUND, "not_found", "no such file");
    let Some((file, record)) = ctx.files().redeem_download(&ticket, ctx.now()) else {
        return not_found();
    };
    let handle = match tokio::fs::File::open(&file.path).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return not_found(),
        Err(e) => return internal(e, "opening a consultation file failed"),
    };
    // Fail closed: no record, no download.
    match ctx.files().config.download_log.clone() {
        Some(log) => {
            if let Err(e) = log.record(record).await {
                return internal(e, "recording a file download failed");
            }
        }
        None => tracing::info!(
            file_id = %record.file_id,
            participant_id = %record.participant_id,
            "consultation file downloaded"
        ),
    }
    ctx.files().metrics.downloads.inc();
    let content_type = if file.content_type == sniff::TEXT.mime {
        "text/plain; charset=utf-8"
    } else {
        file.content_type
    };
    let body = Body::from_stream(futures_util::stream::unfold(handle, |mut f| async move {
        let mut buf = vec![0u8; 64 * 1024];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(Bytes::from(buf)), f))
            }
            Err(e) => Some((Err(e), f)),
        }
    }));
    let disposition = HeaderValue::from_str(&names::content_disposition(&file.name))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CONTENT_LENGTH, HeaderValue::from(file.size)),
            (header::CONTENT_DISPOSITION, disposition),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("sandbox; default-src 'none'"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body,
    )
        .into_response()
}

/// The file-shared frame for `file`.
pub(crate) fn shared_frame(file: &StoredFile) -> ServerMessage {
    ServerMessage::FileShared {
        file_id: file.file_id.clone(),
        name: file.name.clone(),
        size: file.size,
        content_type: file.content_type.to_owned(),
        from: file.from.clone(),
        shared_at: file
            .shared_at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    }
}
