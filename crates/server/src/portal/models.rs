//! The models staff may choose in the chat.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use lotse_portal::auth::Action;
use lotse_service::staff_chat::main_label;

// the bodies of these routes (lotse_wire: shared with the portal page)
pub use lotse_wire::portal::PortalModel;
use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use super::context::Ctx;
use super::LOCAL_MODEL;

// ---- models ------------------------------------------------------------------------------

#[utoipa::path(get, path = "/portal/api/models", tag = "portal", operation_id = "portal_models",
    responses((status = 200, body = [PortalModel]), (status = 401, body = ErrorBody)))]
pub async fn models(State(state): State<Arc<AppState>>, c: Ctx) -> Result<Json<Vec<PortalModel>>, ApiError> {
    c.allow(&Action::Portal)?;
    let chat_ok = c.allow(&Action::Chat).is_ok();
    let ext_ok = chat_ok && c.allow(&Action::ExternalModel).is_ok();
    let main = state.answerer();
    let main_external = main.as_ref().and_then(|a| a.generation()).is_some_and(|g| g.info().external);
    let mut out = vec![PortalModel {
        name: LOCAL_MODEL.into(),
        label: main.as_deref().map_or_else(|| "Lokales Modell".into(), main_label),
        external: main_external,
        allowed: if main_external { ext_ok } else { chat_ok },
    }];
    for e in c.portal.externals.iter() {
        let external = e.service.info().external;
        out.push(PortalModel {
            name: e.name.clone(),
            label: e.label.clone(),
            external,
            allowed: if external { ext_ok } else { chat_ok },
        });
    }
    Ok(Json(out))
}

