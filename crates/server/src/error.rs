//! API errors: the right status, a German message for citizens, an English line in the log.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use lotse_answer::AnswerError;
use lotse_portal::StoreError;
use lotse_portal::auth::Denied;
use lotse_service::staff_chat::ChatError;
use lotse_service::documents::DocumentError;
use lotse_service::accounts::AccountError;

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

/// A citizen's question without an answer.
impl From<lotse_service::answers::AskError> for ApiError {
    fn from(e: lotse_service::answers::AskError) -> ApiError {
        use lotse_service::answers::AskError;
        match e {
            AskError::Starting => ApiError::starting(),
            AskError::Answer(e) => ApiError::from(e),
        }
    }
}

/// A search of the public pages that gave no hits.
impl From<lotse_service::answers::SearchError> for ApiError {
    fn from(e: lotse_service::answers::SearchError) -> ApiError {
        use lotse_service::answers::SearchError;
        match e {
            SearchError::EmptyQuery => {
                ApiError::bad_request("empty_query", "Bitte geben Sie einen Suchbegriff ein.")
            }
            SearchError::QueryTooLong => ApiError::bad_request(
                "query_too_long",
                "Der Suchbegriff ist zu lang. Bitte verwenden Sie höchstens 1000 Zeichen.",
            ),
            SearchError::InvalidLimit => ApiError::bad_request(
                "invalid_limit",
                "Die Anzahl der Ergebnisse (limit) muss zwischen 1 und 50 liegen.",
            ),
            SearchError::Starting => ApiError::starting(),
            SearchError::Answer(e) => ApiError::from(e),
        }
    }
}

/// A rating that was not stored.
impl From<lotse_service::feedback::RateError> for ApiError {
    fn from(e: lotse_service::feedback::RateError) -> ApiError {
        use lotse_service::feedback::RateError;
        match e {
            RateError::Disabled => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "feedback_disabled",
                "Rückmeldungen sind hier leider nicht möglich.",
            ),
            RateError::UnknownAnswer => ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_answer",
                "Diese Antwort ist uns nicht mehr bekannt. Bitte stellen Sie Ihre Frage noch einmal.",
            ),
            RateError::Store(_) | RateError::Task(_) => {
                tracing::error!(error = %e, "rating failed");
                ApiError::internal()
            }
        }
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

/// A rewrite under review that cannot be read or decided on.
impl From<lotse_service::rewrites::DecideError> for ApiError {
    fn from(e: lotse_service::rewrites::DecideError) -> ApiError {
        use lotse_service::rewrites::DecideError;
        match e {
            DecideError::NotFound => ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "Diese Umschreibung gibt es nicht (mehr). Vielleicht hat sich die Seite inzwischen geändert.",
            ),
            DecideError::Changed => ApiError::new(StatusCode::CONFLICT, "changed", lotse_simplify::review::PAGE_CHANGED),
            DecideError::Invalid(m) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "correction", m),
            DecideError::Store(e) => {
                tracing::warn!(error = %e, "rewrite store failed");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "store",
                    "Die Umschreibungen lassen sich gerade nicht lesen. Bitte versuchen Sie es später noch einmal.",
                )
            }
            DecideError::NoDecision => ApiError::bad_request(
                "status",
                "Bitte geben Sie die Umschreibung frei (approved) oder lehnen Sie sie ab (rejected).",
            ),
            DecideError::CorrectionsOnRejection => ApiError::bad_request(
                "corrections",
                "Korrekturen gehören zu einer Freigabe. Eine abgelehnte Umschreibung sehen Bürgerinnen und Bürger nicht.",
            ),
        }
    }
}

/// A portal store error (`map_err(store_error)`).
pub(crate) fn store_error(e: StoreError) -> ApiError {
    ApiError::from(e)
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::NotFound(what) => not_found(what),
            StoreError::Exists(what) => ApiError::new(
                StatusCode::CONFLICT,
                "exists",
                format!("Das gibt es schon ({what})."),
            ),
            StoreError::Invalid(why) => {
                tracing::debug!(why = %why, "invalid portal input");
                ApiError::bad_request("invalid", format!("Die Eingabe ist ungültig: {why}."))
            }
            StoreError::Sql(e) => {
                tracing::error!(error = %e, "portal store failed");
                ApiError::internal()
            }
            StoreError::Index(e) => {
                tracing::error!(error = %e, "the index failed for the portal");
                ApiError::internal()
            }
        }
    }
}

/// 404 for a portal record `what` ("collection", "document", ...), in German.
pub(crate) fn not_found(what: &str) -> ApiError {
    let message = match what {
        "collection" => "Diese Sammlung gibt es nicht.",
        "document" => "Dieses Dokument gibt es nicht.",
        "chat" => "Diesen Chat gibt es nicht.",
        "prompt" => "Diese Vorlage gibt es nicht.",
        "user" => "Dieses Konto gibt es nicht.",
        "token" => "Diesen Zugangsschlüssel gibt es nicht.",
        "question" => "Diese Frage gibt es nicht (mehr).",
        "topic" => "Dieses Thema gibt es nicht (mehr). Bitte laden Sie die Liste neu.",
        _ => "Nicht gefunden.",
    };
    ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
}

/// An upload or delete of a staff document that did not happen.
impl From<DocumentError> for ApiError {
    fn from(e: DocumentError) -> ApiError {
        match e {
            DocumentError::Starting => ApiError::starting(),
            DocumentError::NotFound(what) => not_found(what),
            DocumentError::TooLarge { max } => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("Die Datei ist zu groß. Erlaubt sind höchstens {} MB.", max / (1024 * 1024)),
            ),
            DocumentError::FileName => ApiError::bad_request(
                "file_name",
                "Der Dateiname ist ungültig (keine Schrägstriche, höchstens 200 Zeichen).",
            ),
            DocumentError::Extract(e) => {
                let status = if e.is_type_error() { StatusCode::UNSUPPORTED_MEDIA_TYPE } else { StatusCode::UNPROCESSABLE_ENTITY };
                ApiError::new(status, e.code(), e.message_de())
            }
            DocumentError::IndexBusy => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "index_busy",
                "Der Suchindex wird gerade aktualisiert. Bitte versuchen Sie es gleich noch einmal.",
            )
            .retry_after(10),
            // logged where they happened
            DocumentError::Index(_) | DocumentError::Task(_) => ApiError::internal(),
            DocumentError::Store(e) => ApiError::from(e),
        }
    }
}

/// 401 without a principal, 403 with the authorisation's own code and German reason.
pub(crate) fn denied(d: Denied) -> ApiError {
    match d {
        Denied::Unauthenticated => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "Bitte melden Sie sich im Portal an.",
        ),
        Denied::Forbidden { code, message } => ApiError::new(StatusCode::FORBIDDEN, code, message),
    }
}

/// A staff question without an answer.
impl From<ChatError> for ApiError {
    fn from(e: ChatError) -> ApiError {
        match e {
            ChatError::Starting => ApiError::starting(),
            ChatError::NotFound(what) => not_found(what),
            ChatError::UnknownModel => ApiError::bad_request("unknown_model", "Dieses Modell ist nicht eingerichtet."),
            ChatError::Denied(d) => denied(d),
            ChatError::Refused { code, message } => ApiError::new(StatusCode::FORBIDDEN, code, message),
            ChatError::Answer(e) => ApiError::from(e),
            ChatError::Store(e) => ApiError::from(e),
            ChatError::Task(_) => ApiError::internal(),
        }
    }
}

/// An account operation of the portal that did not happen (sign-in, KI-Kompass, admin,
/// prompts).
impl From<AccountError> for ApiError {
    fn from(e: AccountError) -> ApiError {
        match e {
            AccountError::Denied(d) => denied(d),
            AccountError::SignInFailed => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "login_failed",
                "Benutzername oder Passwort ist falsch.",
            ),
            AccountError::AccountDisabled => ApiError::new(
                StatusCode::FORBIDDEN,
                "account_disabled",
                "Ihr Konto ist im Portal gesperrt. Bitte wenden Sie sich an die IT.",
            ),
            AccountError::AccountExists => ApiError::new(
                StatusCode::CONFLICT,
                "account_exists",
                "Es gibt schon ein Portal-Konto mit Ihrem Benutzernamen. Bitte wenden Sie sich an die IT.",
            ),
            AccountError::NotFound(what) => not_found(what),
            AccountError::WeakPassword(why) => ApiError::bad_request(
                "password",
                format!("Das Passwort ist zu schwach: mindestens {} Zeichen. ({why})", lotse_portal::auth::MIN_PASSWORD_CHARS),
            ),
            AccountError::PromptPii => ApiError::bad_request(
                "prompt_pii",
                "Die Vorlage enthält personenbezogene Daten. Bitte ersetzen Sie diese durch {Platzhalter}.",
            ),
            AccountError::KompassIncomplete { questions } => ApiError::bad_request(
                "answers",
                format!("Bitte beantworten Sie alle {questions} Fragen."),
            ),
            AccountError::KompassAttempts { max, wait } => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "kompass_attempts",
                format!(
                    "Sie haben den KI-Kompass-Test heute schon {max}-mal abgegeben. Bitte lesen Sie die Regeln in Ruhe noch einmal; morgen können Sie es erneut versuchen."
                ),
            )
            .retry_after(wait),
            AccountError::RegisterIncomplete => ApiError::bad_request(
                "register",
                "Bitte geben Sie die Anwendung und die verantwortliche Person an.",
            ),
            AccountError::Store(e) => ApiError::from(e),
        }
    }
}

impl From<lotse_service::refresh::UrlError> for ApiError {
    fn from(e: lotse_service::refresh::UrlError) -> ApiError {
        use lotse_service::refresh::UrlError;
        let code = match e {
            UrlError::Missing => "missing_url",
            UrlError::Invalid => "invalid_url",
            UrlError::Foreign => "foreign_url",
        };
        ApiError::bad_request(code, e.message())
    }
}

impl From<lotse_service::refresh::RefreshError> for ApiError {
    fn from(e: lotse_service::refresh::RefreshError) -> ApiError {
        use lotse_service::refresh::RefreshError;
        match e {
            RefreshError::Starting => ApiError::starting(),
            RefreshError::Url(u) => u.into(),
            RefreshError::Busy => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "Die Website wird gerade abgerufen. Bitte versuchen Sie es in einer Minute noch einmal.",
            )
            .retry_after(30),
            RefreshError::Unreachable => ApiError::new(
                StatusCode::BAD_GATEWAY,
                "unreachable",
                "Die Seite konnte nicht abgerufen werden. Bitte prüfen Sie, ob sie veröffentlicht ist.",
            ),
            RefreshError::RedirectElsewhere => ApiError::bad_request(
                "redirect_elsewhere",
                "Die Seite leitet auf eine andere Website weiter. Es werden nur Seiten der Website der Gemeinde abgerufen.",
            ),
            RefreshError::Internal(e) => {
                tracing::error!(error = %e, "CMS request failed");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "Ein interner Fehler ist aufgetreten. Bitte versuchen Sie es später noch einmal.",
                )
            }
        }
    }
}
