//! The HTTP error type: one [`ApiError`] enum rendered as `{"error":{"code","message"}}` with stable
//! codes, plus [`ApiJson`], [`ApiQuery`] and [`ApiPath`], extractors whose rejections use the same
//! shape (axum's own rejections are plain text), and the fallbacks for unknown routes (404) and
//! methods (405).
//!
//! Invariant: internal errors are logged with their cause chain and a correlation id, and the client
//! sees only the opaque code `internal` and that id. Messages never echo patient data.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// An error returned by the clinic API.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No valid session (401 `unauthenticated`).
    #[error("authentication required")]
    Unauthenticated,
    /// Wrong e-mail or password; deliberately the same for both (401 `invalid_credentials`).
    #[error("invalid e-mail or password")]
    InvalidCredentials,
    /// Authenticated, but the role does not allow this (403 `forbidden`).
    #[error("{0}")]
    Forbidden(&'static str),
    /// The resource does not exist or belongs to another organisation (404 `not_found`).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A syntactically broken request, e.g. malformed JSON (400 `invalid_input`).
    #[error("{0}")]
    BadRequest(String),
    /// A well-formed request with invalid values (422 `invalid_input`).
    #[error("{0}")]
    InvalidInput(String),
    /// A well-formed request with an invalid value in one named field (422 `invalid_input`, with
    /// `error.field` so a form can show the message next to the field).
    #[error("{message}")]
    InvalidField {
        /// The request field (e.g. `date_of_birth`).
        field: &'static str,
        /// What is wrong, for humans.
        message: String,
    },
    /// The request conflicts with the current state (409 `conflict`).
    #[error("{0}")]
    Conflict(&'static str),
    /// The body is larger than the limit (413 `payload_too_large`).
    #[error("request body too large")]
    PayloadTooLarge,
    /// The body is not `application/json` (415 `unsupported_media_type`).
    #[error("expected an application/json body")]
    UnsupportedMediaType,
    /// The path exists, the method does not (405 `method_not_allowed`).
    #[error("method not allowed")]
    MethodNotAllowed,
    /// Unknown invitation token (404 `invitation_not_found`).
    #[error("invitation not found")]
    InvitationNotFound,
    /// The invitation window has not opened yet (403 `invitation_too_early`).
    #[error("the invitation is not open yet")]
    InvitationTooEarly {
        /// When the window opens.
        opens_at: DateTime<Utc>,
    },
    /// The invitation window has closed (410 `invitation_expired`).
    #[error("the invitation has expired")]
    InvitationExpired,
    /// The appointment was cancelled (410 `invitation_cancelled`).
    #[error("the appointment was cancelled")]
    InvitationCancelled,
    /// A one-time link that was already used, has expired, or whose account was deactivated
    /// (410 `link_expired`).
    #[error("this link has expired or was already used; ask for a new one")]
    LinkExpired,
    /// Too many attempts from this source or for this resource (429 `rate_limited`); the response
    /// carries `Retry-After` and `error.retry_after_seconds`.
    #[error("too many requests; try again later")]
    RateLimited {
        /// Seconds until a new attempt may succeed.
        retry_after_secs: u64,
    },
    /// Anything unexpected (500 `internal`); details go to the log only.
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthenticated | ApiError::InvalidCredentials => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) | ApiError::InvitationTooEarly { .. } => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) | ApiError::InvitationNotFound => StatusCode::NOT_FOUND,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::InvalidInput(_) | ApiError::InvalidField { .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::InvitationExpired | ApiError::InvitationCancelled | ApiError::LinkExpired => {
                StatusCode::GONE
            }
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthenticated => "unauthenticated",
            ApiError::InvalidCredentials => "invalid_credentials",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::BadRequest(_) | ApiError::InvalidInput(_) | ApiError::InvalidField { .. } => {
                "invalid_input"
            }
            ApiError::Conflict(_) => "conflict",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::InvitationNotFound => "invitation_not_found",
            ApiError::InvitationTooEarly { .. } => "invitation_too_early",
            ApiError::InvitationExpired => "invitation_expired",
            ApiError::InvitationCancelled => "invitation_cancelled",
            ApiError::LinkExpired => "link_expired",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Internal(_) => "internal",
        }
    }

    /// Shorthand for a 422 with a message.
    pub fn invalid(message: impl Into<String>) -> Self {
        ApiError::InvalidInput(message.into())
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        if crate::store::is_unique_violation(&err) {
            return ApiError::Conflict("a record with these values already exists");
        }
        ApiError::Internal(anyhow::Error::new(err))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut error = json!({ "code": self.code(), "message": self.to_string() });
        match &self {
            ApiError::Internal(cause) => {
                let correlation_id = uuid::Uuid::new_v4().to_string();
                // `{:#}` prints the cause chain; causes come from our own code and sqlx and never
                // carry request bodies.
                tracing::error!(%correlation_id, error = format!("{cause:#}"), "internal error");
                error["correlation_id"] = Value::String(correlation_id);
            }
            ApiError::InvitationTooEarly { opens_at } => {
                error["opens_at"] =
                    Value::String(opens_at.to_rfc3339_opts(SecondsFormat::Secs, true));
            }
            ApiError::InvalidField { field, .. } => {
                error["field"] = Value::String((*field).to_owned());
            }
            ApiError::RateLimited { retry_after_secs } => {
                error["retry_after_seconds"] = Value::from(*retry_after_secs);
                let body = Json(json!({ "error": error }));
                return (
                    status,
                    [(header::RETRY_AFTER, retry_after_secs.to_string())],
                    body,
                )
                    .into_response();
            }
            _ => {}
        }
        (status, Json(json!({ "error": error }))).into_response()
    }
}

/// Result alias for handlers.
pub type ApiResult<T> = Result<T, ApiError>;

/// `axum::Json` with rejections mapped to [`ApiError`], so malformed, oversized or mistyped bodies
/// get JSON errors instead of axum's plain-text ones.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        // Content type, size and syntax are checked exactly as `axum::Json` does.
        let Json(value) = Json::<Value>::from_request(req, state)
            .await
            .map_err(map_json_rejection)?;
        // serde also reads a struct from a JSON array (its fields in order); every request body of
        // this API is an object, as the OpenAPI document says, so anything else is refused.
        if !value.is_object() {
            return Err(ApiError::invalid("the body must be a JSON object"));
        }
        serde_path_to_error::deserialize(value)
            .map(ApiJson)
            .map_err(|e| {
                ApiError::InvalidInput(format!(
                    "Failed to deserialize the JSON body into the target type: {e}"
                ))
            })
    }
}

fn map_json_rejection(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::JsonDataError(e) => ApiError::InvalidInput(e.body_text()),
        JsonRejection::JsonSyntaxError(_) => ApiError::BadRequest("malformed JSON body".into()),
        JsonRejection::MissingJsonContentType(_) => ApiError::UnsupportedMediaType,
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
        other => ApiError::BadRequest(other.body_text()),
    }
}

/// `axum::extract::Query` with rejections (duplicate or mistyped parameters) mapped to a 400
/// `invalid_input`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(ApiQuery(value)),
            // Names the parameter and what is wrong; query values here are ids and dates.
            Err(rejection) => Err(ApiError::BadRequest(rejection.body_text())),
        }
    }
}

/// `axum::extract::Path` with rejections mapped to [`ApiError`]: a segment that does not decode
/// (e.g. `%FF`, not UTF-8) is a 400 `invalid_input` that does not echo it.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(ApiPath(value)),
            Err(PathRejection::FailedToDeserializePathParams(_)) => {
                Err(ApiError::BadRequest("malformed path parameter".into()))
            }
            // A route declared without the parameters its handler reads: our bug.
            Err(other) => Err(ApiError::Internal(anyhow::anyhow!(
                "path extraction: {}",
                other.body_text()
            ))),
        }
    }
}

/// Fallback for unknown routes under the API prefix.
pub async fn not_found_fallback() -> ApiError {
    ApiError::NotFound("route")
}

/// Fallback for a known route called with a method it does not serve.
pub async fn method_not_allowed_fallback() -> ApiError {
    ApiError::MethodNotAllowed
}
