//! API errors: the right status, a German message for citizens, an English line in the log.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use lotse_answer::AnswerError;

pub use lotse_wire::error::{ErrorBody, ErrorDetail};

/// An error response.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn retry_after(mut self, secs: u64) -> ApiError {
        self.retry_after = Some(secs.max(1));
        self
    }

    pub fn starting() -> ApiError {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "starting",
            "Der Assistent wird gerade gestartet. Bitte versuchen Sie es in einer Minute noch einmal.",
        )
        .retry_after(30)
    }

    /// Something on the server failed (the log says what).
    pub fn internal() -> ApiError {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Leider ist ein Fehler aufgetreten. Bitte versuchen Sie es später noch einmal.",
        )
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }
}

impl From<AnswerError> for ApiError {
    fn from(e: AnswerError) -> ApiError {
        let (status, code) = match &e {
            AnswerError::EmptyQuestion => (StatusCode::BAD_REQUEST, "empty_question"),
            AnswerError::QuestionTooLong { .. } => (StatusCode::BAD_REQUEST, "question_too_long"),
            AnswerError::HistoryTooLong { .. } => (StatusCode::BAD_REQUEST, "history_too_long"),
            AnswerError::UnknownLanguage(_) => (StatusCode::BAD_REQUEST, "unknown_language"),
            AnswerError::Busy => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
            AnswerError::NoModel => (StatusCode::SERVICE_UNAVAILABLE, "no_model"),
            AnswerError::External => (StatusCode::FORBIDDEN, "external_private"),
            AnswerError::Index(_) | AnswerError::Model(_) => {
                tracing::error!(error = %e, "answer failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
        };
        let mut err = ApiError::new(status, code, e.message_de());
        if status == StatusCode::SERVICE_UNAVAILABLE {
            err = err.retry_after(if code == "busy" { 10 } else { 30 });
        }
        err
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> ApiError {
        tracing::debug!(rejection = %r.body_text(), "bad JSON body");
        match r {
            JsonRejection::JsonDataError(_) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_fields",
                "Die Anfrage ist unvollständig: Es fehlt ein Pflichtfeld (zum Beispiel \"question\") oder ein Feld hat den falschen Typ.",
            ),
            JsonRejection::JsonSyntaxError(_) => ApiError::bad_request(
                "malformed_json",
                "Die Anfrage ist kein gültiges JSON. Bitte prüfen Sie Klammern, Anführungszeichen und Kommas.",
            ),
            JsonRejection::MissingJsonContentType(_) => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "content_type",
                "Bitte senden Sie die Anfrage als JSON (Content-Type: application/json).",
            ),
            JsonRejection::BytesRejection(_) => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                "Die Anfrage ist zu groß. Bitte stellen Sie eine kürzere Frage.",
            ),
            _ => ApiError::bad_request("bad_request", "Die Anfrage konnte nicht gelesen werden."),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> ApiError {
        tracing::debug!(rejection = %r.body_text(), "bad query string");
        ApiError::bad_request(
            "invalid_query",
            "Die Suchanfrage ist ungültig. Bitte geben Sie einen Suchbegriff (q) und eine Anzahl (limit) von 1 bis 50 an.",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(status = %self.status, code = self.code, "request failed");
        }
        let mut resp = (
            self.status,
            Json(ErrorBody {
                error: ErrorDetail {
                    code: self.code.to_string(),
                    message: self.message,
                },
            }),
        )
            .into_response();
        if let Some(s) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        resp
    }
}
