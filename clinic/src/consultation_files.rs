//! The durable record of consultation file downloads (issue #5): which participant (ids only)
//! downloaded which shared file, and when. The files themselves never touch the database; they
//! live in the signalling hub's directory while their consultation runs.

use chrono::{DateTime, Utc};

use crate::Clinic;
use crate::store::{Store, dispatch};

/// One download of a consultation file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDownload {
    pub file_id: String,
    pub consultation_id: String,
    pub participant_id: String,
    /// `staff` or `patient`.
    pub role: &'static str,
    /// The staff id, or the patient's appointment or walk-in visit id.
    pub subject_id: String,
    pub at: DateTime<Utc>,
}

impl Clinic {
    /// Record a download (before its bytes are sent: a failure refuses the download).
    pub async fn record_file_download(&self, d: &FileDownload) -> Result<(), sqlx::Error> {
        self.store().insert_file_download(d).await
    }

    /// How many downloads of `file_id` are recorded.
    pub async fn file_download_count(&self, file_id: &str) -> Result<i64, sqlx::Error> {
        self.store().count_file_downloads(file_id).await
    }
}

impl Store {
    async fn insert_file_download(&self, d: &FileDownload) -> Result<(), sqlx::Error> {
        let id = uuid::Uuid::now_v7().to_string();
        dispatch!(self, pool => {
            sqlx::query(
                "insert into consultation_file_download (consultation_file_download_id, file_id, \
                 consultation_id, participant_id, role, subject_id, downloaded_at) \
                 values ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&id)
            .bind(&d.file_id)
            .bind(&d.consultation_id)
            .bind(&d.participant_id)
            .bind(d.role)
            .bind(&d.subject_id)
            .bind(d.at)
            .execute(pool)
            .await
            .map(|_| ())
        })
    }

    async fn count_file_downloads(&self, file_id: &str) -> Result<i64, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_scalar::<_, i64>(
                "select count(*) from consultation_file_download where file_id = $1",
            )
            .bind(file_id)
            .fetch_one(pool)
            .await
        })
    }
}
