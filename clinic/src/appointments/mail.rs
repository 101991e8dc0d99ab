//! Where the appointment mails will be enqueued (issue #12, next round: the e-mail outbox).
//!
//! Each function is called inside the transaction that makes the change, after the change and
//! before the commit, so a mail is recorded exactly when its change is: enqueue the outbox rows
//! (one per recipient: the client and each guest) here. Today they write nothing.

use crate::ids::AppointmentId;

/// The invitation (F69, with the calendar `METHOD:REQUEST`, `SEQUENCE` 0), on booking.
pub(crate) async fn enqueue_invitation<DB: sqlx::Database>(
    _tx: &mut sqlx::Transaction<'_, DB>,
    _appointment_id: AppointmentId,
) -> Result<(), sqlx::Error> {
    Ok(())
}

/// The update (`METHOD:REQUEST`, the raised `SEQUENCE`), on reschedule.
pub(crate) async fn enqueue_update<DB: sqlx::Database>(
    _tx: &mut sqlx::Transaction<'_, DB>,
    _appointment_id: AppointmentId,
) -> Result<(), sqlx::Error> {
    Ok(())
}

/// The cancellation (`METHOD:CANCEL`, the raised `SEQUENCE`), on cancel.
pub(crate) async fn enqueue_cancellation<DB: sqlx::Database>(
    _tx: &mut sqlx::Transaction<'_, DB>,
    _appointment_id: AppointmentId,
) -> Result<(), sqlx::Error> {
    Ok(())
}
