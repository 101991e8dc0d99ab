//! Files shared during a consultation (F108–F111, F126): offers, upload and download tickets,
//! the files of each running consultation, and their deletion when it ends.
//!
//! Flow: a participant offers a file over the WebSocket (`file_offer`); the hub checks
//! membership, the organisation's permission and the limits, reserves the declared size and
//! answers with a one-time upload URL. The browser streams the body to it ([`http`]); the bytes
//! are sniffed and written under `<dir>/<random consultation dir>/<random name>`, and everyone
//! in the consultation gets `file_shared`. A download URL is handed out per request
//! (`file_download`) to participants of that consultation only.
//!
//! Invariants: tickets are random 256-bit values kept only as SHA-256 hashes, single use and
//! short-lived; nothing outside the configured directory is ever written; a consultation's
//! directory is deleted when the consultation ends and checked gone afterwards (failures are
//! counted); what a crash left behind is swept at start-up. Lock order: the hub state lock
//! before the registry's own lock, never the reverse.

pub(crate) mod http;
pub mod names;
pub mod sniff;

pub use http::routes;

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use prometheus::{IntCounter, IntCounterVec, Opts, Registry};
use sha2::{Digest, Sha256};

use crate::Visit;
use crate::protocol::{ErrorCode, Role};
use crate::state::{Member, Refusal};

/// A boxed future returned by the traits the composing binary implements.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Where downloads are recorded (durably: the binary writes them to the clinic database). A
/// download whose record fails is refused (fail closed).
pub trait DownloadLog: Send + Sync + 'static {
    fn record(&self, download: DownloadRecord) -> BoxFuture<Result<(), String>>;
}

/// One download: ids only, never names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadRecord {
    pub file_id: String,
    pub consultation_id: String,
    /// The downloader's participant id (as in the protocol).
    pub participant_id: String,
    pub role: Role,
    /// The staff id, or the appointment / walk-in visit id of a patient.
    pub subject_id: String,
    pub at: DateTime<Utc>,
}

/// The seam for keeping a file beyond its consultation: filing it into the client's record
/// (practitioner's choice; records come later) or sending it by e-mail (when mail exists).
/// Called while the file still exists; the implementation copies what it needs before the
/// future resolves, because the consultation's files are deleted when it ends.
pub trait FileHandOff: Send + Sync + 'static {
    fn hand_off(&self, file: HandOffFile, target: HandOffTarget) -> BoxFuture<Result<(), String>>;
}

/// A shared file handed to a [`FileHandOff`].
#[derive(Debug, Clone)]
pub struct HandOffFile {
    pub file_id: String,
    pub name: String,
    pub content_type: &'static str,
    pub size: u64,
    /// Where the bytes are, readable until the hand-off future resolves.
    pub path: PathBuf,
}

/// Where a file goes.
#[derive(Debug, Clone)]
pub enum HandOffTarget {
    /// Into the record of the consultation's client (the visit identifies them).
    ClientRecord(Visit),
    /// By e-mail to the client.
    Email { to: String },
}

/// Why a hand-off did not happen.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HandOffError {
    #[error("no such file in this consultation")]
    NotFound,
    #[error("keeping files is not available on this server")]
    Unavailable,
    #[error("hand-off failed: {0}")]
    Failed(String),
}

/// File-sharing settings of the hub.
#[derive(Clone)]
pub struct FilesConfig {
    /// Where files are kept while their consultation runs (the binary uses
    /// `<data-dir>/consultation-files`). `None` disables file sharing.
    pub dir: Option<PathBuf>,
    /// Largest file (default 75 MiB).
    pub max_file_bytes: u64,
    /// Largest total of one consultation's files (default 256 MiB).
    pub max_consultation_bytes: u64,
    /// How long an upload URL may wait for its upload to start (default 5 minutes).
    pub upload_ticket_ttl: Duration,
    /// How long a download URL is valid (default 60 s; single use).
    pub download_ticket_ttl: Duration,
    /// Where downloads are recorded; without one they are only logged (ids only).
    pub download_log: Option<Arc<dyn DownloadLog>>,
    /// Where files can be kept (client record, e-mail); none yet.
    pub hand_off: Option<Arc<dyn FileHandOff>>,
}

impl Default for FilesConfig {
    fn default() -> Self {
        FilesConfig {
            dir: None,
            max_file_bytes: 75 * 1024 * 1024,
            max_consultation_bytes: 256 * 1024 * 1024,
            upload_ticket_ttl: Duration::minutes(5),
            download_ticket_ttl: Duration::seconds(60),
            download_log: None,
            hand_off: None,
        }
    }
}

/// A file shared in a running consultation.
#[derive(Debug, Clone)]
pub(crate) struct StoredFile {
    pub file_id: String,
    pub name: String,
    pub size: u64,
    pub content_type: &'static str,
    /// Participant id of the sender.
    pub from: String,
    pub shared_at: DateTime<Utc>,
    pub path: PathBuf,
}

/// A redeemed upload ticket: what the upload must deliver.
#[derive(Debug, Clone)]
pub(crate) struct UploadTicket {
    pub file_id: String,
    pub consultation_id: String,
    pub participant_id: String,
    /// Sanitised display name.
    pub name: String,
    /// Declared size: the body must be exactly this long.
    pub size: u64,
    expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
struct DownloadTicket {
    file_id: String,
    consultation_id: String,
    member: Member,
    expires_at: DateTime<Utc>,
}

#[derive(Debug)]
struct ConsultationFiles {
    dir: PathBuf,
    dir_created: bool,
    /// Bytes promised to offers not yet completed.
    reserved: u64,
    stored: u64,
    files: Vec<StoredFile>,
}

#[derive(Debug, Default)]
struct RegistryState {
    uploads: HashMap<[u8; 32], UploadTicket>,
    downloads: HashMap<[u8; 32], DownloadTicket>,
    consultations: HashMap<String, ConsultationFiles>,
}

pub(crate) struct FileMetrics {
    pub uploads: IntCounterVec,
    pub upload_bytes: IntCounter,
    pub downloads: IntCounter,
    pub deleted_dirs: IntCounter,
    pub deletion_failures: IntCounter,
}

impl FileMetrics {
    fn register(registry: &Registry) -> FileMetrics {
        fn reg<T: prometheus::core::Collector + Clone + 'static>(r: &Registry, c: T) -> T {
            if let Err(e) = r.register(Box::new(c.clone())) {
                tracing::warn!(error = %e, "metric registration failed");
            }
            c
        }
        let counter = |name: &str, help: &str| {
            reg(registry, IntCounter::new(name, help).expect("valid metric"))
        };
        FileMetrics {
            uploads: reg(
                registry,
                IntCounterVec::new(
                    Opts::new(
                        "consultroom_signalling_file_uploads_total",
                        "Consultation file uploads, by outcome",
                    ),
                    &["outcome"],
                )
                .expect("valid metric"),
            ),
            upload_bytes: counter(
                "consultroom_signalling_file_upload_bytes_total",
                "Bytes of consultation files stored",
            ),
            downloads: counter(
                "consultroom_signalling_file_downloads_total",
                "Consultation file downloads started",
            ),
            deleted_dirs: counter(
                "consultroom_signalling_file_dirs_deleted_total",
                "Consultation file directories deleted and verified gone",
            ),
            deletion_failures: counter(
                "consultroom_signalling_file_deletion_failures_total",
                "Consultation file directories that could not be deleted or were still present",
            ),
        }
    }
}

/// The files of this node's consultations.
pub(crate) struct Files {
    pub config: FilesConfig,
    state: Mutex<RegistryState>,
    pub metrics: FileMetrics,
}

fn random_hex<const N: usize>() -> String {
    use rand::RngExt;
    let mut bytes = [0u8; N];
    rand::rng().fill(&mut bytes[..]);
    hex::encode(bytes)
}

fn hash(ticket: &str) -> [u8; 32] {
    Sha256::digest(ticket.as_bytes()).into()
}

fn refuse(code: ErrorCode, message: &'static str) -> Refusal {
    Refusal { code, message }
}

impl Files {
    /// The registry; sweeps what a previous run left in `config.dir` (no consultation survives a
    /// restart) and creates the directory.
    pub fn new(config: FilesConfig, registry: &Registry) -> Files {
        if let Some(dir) = &config.dir {
            match sweep(dir) {
                Ok(0) => {}
                Ok(n) => tracing::warn!(
                    entries = n,
                    "deleted consultation files left by a previous run"
                ),
                Err(e) => {
                    tracing::error!(error = %e, "sweeping the consultation files directory failed")
                }
            }
        }
        Files {
            config,
            state: Mutex::new(RegistryState::default()),
            metrics: FileMetrics::register(registry),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, RegistryState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A participant offers a file: check the limits, reserve its size and issue an upload
    /// ticket. Returns `(file_id, ticket, expires_at)`.
    pub fn offer(
        &self,
        member: &Member,
        name: &str,
        size: u64,
        now: DateTime<Utc>,
    ) -> Result<(String, String, DateTime<Utc>), Refusal> {
        let Some(dir) = &self.config.dir else {
            return Err(refuse(
                ErrorCode::Forbidden,
                "file sharing is not available on this server",
            ));
        };
        if size == 0 {
            return Err(refuse(ErrorCode::InvalidMessage, "the file is empty"));
        }
        if size > self.config.max_file_bytes {
            return Err(refuse(
                ErrorCode::TooLarge,
                "the file is larger than allowed",
            ));
        }
        let name = names::sanitise(name);
        if !sniff::extension_allowed(&name) {
            return Err(refuse(
                ErrorCode::UnsupportedType,
                "files of this type cannot be shared",
            ));
        }
        let mut st = self.lock();
        purge_expired(&mut st, now);
        let cons = st
            .consultations
            .entry(member.consultation_id.clone())
            .or_insert_with(|| ConsultationFiles {
                dir: dir.join(random_hex::<16>()),
                dir_created: false,
                reserved: 0,
                stored: 0,
                files: Vec::new(),
            });
        if cons.reserved + cons.stored + size > self.config.max_consultation_bytes {
            return Err(refuse(
                ErrorCode::TooLarge,
                "this consultation's files would exceed the allowed total",
            ));
        }
        cons.reserved += size;
        let ticket = random_hex::<32>();
        let file_id = uuid::Uuid::new_v4().to_string();
        let expires_at = now + self.config.upload_ticket_ttl;
        st.uploads.insert(
            hash(&ticket),
            UploadTicket {
                file_id: file_id.clone(),
                consultation_id: member.consultation_id.clone(),
                participant_id: member.participant_id.clone(),
                name,
                size,
                expires_at,
            },
        );
        Ok((file_id, ticket, expires_at))
    }

    /// Take (single use) the upload ticket `ticket`, if valid.
    pub fn redeem_upload(&self, ticket: &str, now: DateTime<Utc>) -> Option<UploadTicket> {
        let mut st = self.lock();
        let t = st.uploads.remove(&hash(ticket))?;
        if t.expires_at <= now {
            release(&mut st, &t.consultation_id, t.size);
            return None;
        }
        Some(t)
    }

    /// Give back the reservation of a failed or refused upload.
    pub fn release(&self, t: &UploadTicket) {
        release(&mut self.lock(), &t.consultation_id, t.size);
    }

    /// Where the upload's bytes go: a fresh random name in the consultation's directory (created
    /// here, mode 0700). `None` when the consultation has ended.
    pub fn storage_path(&self, t: &UploadTicket) -> std::io::Result<Option<PathBuf>> {
        let mut st = self.lock();
        let Some(cons) = st.consultations.get_mut(&t.consultation_id) else {
            return Ok(None);
        };
        if !cons.dir_created {
            // Created under the lock, so it cannot be re-created after the consultation's
            // deletion (which removes the entry under the same lock first).
            create_private_dir(&cons.dir)?;
            cons.dir_created = true;
        }
        Ok(Some(cons.dir.join(random_hex::<16>())))
    }

    /// Register a completed upload. Call with the hub state lock held, after checking that the
    /// consultation still runs. `None` when it has ended (the caller deletes the bytes).
    pub fn complete(&self, t: &UploadTicket, file: StoredFile) -> Option<StoredFile> {
        let mut st = self.lock();
        let cons = st.consultations.get_mut(&t.consultation_id)?;
        cons.reserved = cons.reserved.saturating_sub(t.size);
        cons.stored += file.size;
        cons.files.push(file.clone());
        Some(file)
    }

    /// Every file of a consultation, in the order shared.
    pub fn files_of(&self, consultation_id: &str) -> Vec<StoredFile> {
        self.lock()
            .consultations
            .get(consultation_id)
            .map(|c| c.files.clone())
            .unwrap_or_default()
    }

    /// A single-use download ticket for `file_id`, which must be a file of the caller's own
    /// consultation (anything else is `not_found`, whoever asks).
    pub fn download_ticket(
        &self,
        member: &Member,
        file_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(String, DateTime<Utc>), Refusal> {
        let mut st = self.lock();
        purge_expired(&mut st, now);
        let known = st
            .consultations
            .get(&member.consultation_id)
            .is_some_and(|c| c.files.iter().any(|f| f.file_id == file_id));
        if !known {
            return Err(refuse(
                ErrorCode::NotFound,
                "no such file in this consultation",
            ));
        }
        let ticket = random_hex::<32>();
        let expires_at = now + self.config.download_ticket_ttl;
        st.downloads.insert(
            hash(&ticket),
            DownloadTicket {
                file_id: file_id.to_owned(),
                consultation_id: member.consultation_id.clone(),
                member: member.clone(),
                expires_at,
            },
        );
        Ok((ticket, expires_at))
    }

    /// Take (single use) a download ticket: the file and the record of who downloads it.
    pub fn redeem_download(
        &self,
        ticket: &str,
        now: DateTime<Utc>,
    ) -> Option<(StoredFile, DownloadRecord)> {
        let mut st = self.lock();
        let t = st.downloads.remove(&hash(ticket))?;
        if t.expires_at <= now {
            return None;
        }
        let file = st
            .consultations
            .get(&t.consultation_id)?
            .files
            .iter()
            .find(|f| f.file_id == t.file_id)?
            .clone();
        let record = DownloadRecord {
            file_id: t.file_id,
            consultation_id: t.consultation_id,
            participant_id: t.member.participant_id,
            role: t.member.role,
            subject_id: t.member.subject_id,
            at: now,
        };
        Some((file, record))
    }

    /// Hand a file of consultation `consultation_id` to the [`FileHandOff`] (the seam for the
    /// client record and e-mail).
    pub async fn hand_off(
        &self,
        consultation_id: &str,
        file_id: &str,
        target: HandOffTarget,
    ) -> Result<(), HandOffError> {
        let Some(sink) = self.config.hand_off.clone() else {
            return Err(HandOffError::Unavailable);
        };
        let file = self
            .files_of(consultation_id)
            .into_iter()
            .find(|f| f.file_id == file_id)
            .ok_or(HandOffError::NotFound)?;
        let file = HandOffFile {
            file_id: file.file_id,
            name: file.name,
            content_type: file.content_type,
            size: file.size,
            path: file.path,
        };
        sink.hand_off(file, target)
            .await
            .map_err(HandOffError::Failed)
    }

    /// The consultation is over: forget its files and tickets and delete its directory, then
    /// check that it is gone (in the background; failures are logged and counted).
    pub fn end_consultation(self: &Arc<Self>, consultation_id: &str) {
        let cons = {
            let mut st = self.lock();
            st.uploads
                .retain(|_, t| t.consultation_id != consultation_id);
            st.downloads
                .retain(|_, t| t.consultation_id != consultation_id);
            st.consultations.remove(consultation_id)
        };
        let Some(cons) = cons else { return };
        if !cons.dir_created {
            return;
        }
        let files = self.clone();
        let dir = cons.dir;
        let count = cons.files.len();
        tokio::task::spawn_blocking(move || match delete_verified(&dir) {
            Ok(()) => {
                files.metrics.deleted_dirs.inc();
                tracing::debug!(files = count, "consultation files deleted");
            }
            Err(e) => {
                files.metrics.deletion_failures.inc();
                tracing::error!(error = %e, dir = %dir.display(), "deleting consultation files failed");
            }
        });
    }
}

fn release(st: &mut RegistryState, consultation_id: &str, size: u64) {
    if let Some(c) = st.consultations.get_mut(consultation_id) {
        c.reserved = c.reserved.saturating_sub(size);
    }
}

fn purge_expired(st: &mut RegistryState, now: DateTime<Utc>) {
    let expired: Vec<(String, u64)> = st
        .uploads
        .values()
        .filter(|t| t.expires_at <= now)
        .map(|t| (t.consultation_id.clone(), t.size))
        .collect();
    st.uploads.retain(|_, t| t.expires_at > now);
    for (c, size) in expired {
        release(st, &c, size);
    }
    st.downloads.retain(|_, t| t.expires_at > now);
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir)
}

/// Delete `dir` with everything in it, then check that it is really gone.
pub fn delete_verified(dir: &Path) -> std::io::Result<()> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Ok(_) => Err(std::io::Error::other("still present after deletion")),
        Err(e) => Err(e),
    }
}

/// Delete everything inside `dir` (creating it, mode 0700, when missing); returns how many
/// entries were removed.
pub fn sweep(dir: &Path) -> std::io::Result<usize> {
    if !dir.exists() {
        std::fs::create_dir_all(dir.parent().unwrap_or(Path::new(".")))?;
        create_private_dir(dir)?;
        return Ok(0);
    }
    let mut n = 0;
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            delete_verified(&path)?;
        } else {
            std::fs::remove_file(&path)?;
        }
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(c: &str) -> Member {
        Member {
            consultation_id: c.into(),
            participant_id: "p1".into(),
            role: Role::Patient,
            subject_id: "a1".into(),
        }
    }

    fn files(dir: &Path, max_file: u64, max_cons: u64) -> Files {
        Files::new(
            FilesConfig {
                dir: Some(dir.to_path_buf()),
                max_file_bytes: max_file,
                max_consultation_bytes: max_cons,
                ..FilesConfig::default()
            },
            &Registry::new(),
        )
    }

    #[test]
    fn limits_reservations_and_single_use_tickets() {
        let tmp = std::env::temp_dir().join(format!("cr-files-{}", random_hex::<8>()));
        let f = files(&tmp, 100, 150);
        let now = Utc::now();
        let m = member("c1");
        assert_eq!(
            f.offer(&m, "a.pdf", 101, now).unwrap_err().code,
            ErrorCode::TooLarge
        );
        assert_eq!(
            f.offer(&m, "a.html", 10, now).unwrap_err().code,
            ErrorCode::UnsupportedType
        );
        assert_eq!(
            f.offer(&m, "a.pdf", 0, now).unwrap_err().code,
            ErrorCode::InvalidMessage
        );
        let (_, t1, _) = f.offer(&m, "a.pdf", 100, now).unwrap();
        // 100 reserved: another 60 would exceed 150.
        assert_eq!(
            f.offer(&m, "b.pdf", 60, now).unwrap_err().code,
            ErrorCode::TooLarge
        );
        let up = f.redeem_upload(&t1, now).unwrap();
        assert!(f.redeem_upload(&t1, now).is_none(), "single use");
        f.release(&up);
        f.offer(&m, "b.pdf", 60, now).unwrap();
        // Expired tickets give their reservation back.
        let later = now + Duration::minutes(6);
        f.offer(&m, "c.pdf", 100, later).unwrap();
        assert!(f.redeem_upload("not-a-ticket", now).is_none());
        let _ = std::fs::remove_dir_all(&tmp);
    }

    #[test]
    fn sweep_and_verified_deletion() {
        let tmp = std::env::temp_dir().join(format!("cr-sweep-{}", random_hex::<8>()));
        std::fs::create_dir_all(tmp.join("old/deep")).unwrap();
        std::fs::write(tmp.join("old/deep/x"), b"x").unwrap();
        std::fs::write(tmp.join("stray"), b"x").unwrap();
        assert_eq!(sweep(&tmp).unwrap(), 2);
        assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);
        std::fs::create_dir_all(tmp.join("c/d")).unwrap();
        delete_verified(&tmp.join("c")).unwrap();
        assert!(!tmp.join("c").exists());
        delete_verified(&tmp.join("c")).unwrap();
        let _ = std::fs::remove_dir_all(&tmp);
    }
}
