//! Reading one widget and its stored settings (shared by the admin routes, the public frame and
//! walk-in visits; a leaf, so those modules do not depend on each other through `widgets`).

use super::db::WidgetRow;
use super::settings::Settings;
use crate::Clinic;
use crate::error::{ApiError, ApiResult};
use crate::ids::WidgetId;

/// The widget with this public id, or 404.
pub(crate) async fn widget(clinic: &Clinic, raw: &str) -> ApiResult<(WidgetRow, Settings)> {
    let id: WidgetId = raw.parse().map_err(|_| ApiError::NotFound("widget"))?;
    let row = clinic
        .store()
        .widget_by_id(id)
        .await?
        .ok_or(ApiError::NotFound("widget"))?;
    let settings = parse_settings(&row)?;
    Ok((row, settings))
}

/// The settings stored with a widget.
pub(crate) fn parse_settings(row: &WidgetRow) -> ApiResult<Settings> {
    serde_json::from_str(&row.settings)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("stored widget settings unreadable: {e}")))
}
