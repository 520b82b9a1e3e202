//! Reloading the data without a restart: `POST /v1/agent/reload` (agents only, like the
//! console's JSON) and, in `yidi serve`, SIGHUP; both go through [`reload_and_log`].
//!
//! | route | who | does |
//! |---|---|---|
//! | `POST /v1/agent/reload` | agent | loads and validates the knowledge, dialogs and regions folders again; **200** `{generation, entries, dialogs, millis}` when the new data is in force, **422** `{"error": {"code": "invalid_data", …}, "problems": [...]}` when it is not (the previous data stays), **409** `reload_unavailable` for a server not started from folders |
//!
//! Every outcome is logged: one INFO line for a reload in force, one ERROR line per problem
//! (file, entry, field) for a refused one. See [`crate::live`] for what a reload swaps and
//! why conversations in progress go on.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::api::{ApiError, AppState, ErrorBody};
use super::console;
use crate::live::{LiveAssistant, ReloadError, Reloaded};

/// Reloads `live` (blocking: call it off the async workers) and logs the outcome;
/// `trigger` says what asked for it (`SIGHUP`, `POST /v1/agent/reload`).
pub fn reload_and_log(live: &LiveAssistant, trigger: &str) -> Result<Reloaded, ReloadError> {
    let result = live.reload();
    match &result {
        Ok(r) => tracing::info!(
            trigger,
            generation = r.generation,
            entries = r.entries,
            dialogs = r.dialogs,
            millis = r.millis,
            "reloaded the knowledge, dialogs and regions"
        ),
        Err(e) => {
            let problems = e.problems();
            tracing::error!(
                trigger,
                problems = problems.len(),
                generation = live.generation(),
                "reload refused: still serving the previous data"
            );
            for p in problems {
                tracing::error!(trigger, "reload refused: {p}");
            }
        }
    }
    result
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(reload))
}

/// A reload in force.
#[derive(Serialize, ToSchema)]
struct ReloadDone {
    /// How many reloads have taken effect since the server started (this one included).
    generation: u64,
    /// FAQ entries now in force.
    entries: usize,
    /// Dialogs now in force.
    dialogs: usize,
    /// How long loading and validating took (milliseconds).
    millis: u64,
}

/// A refused reload: the error, and every problem found.
#[derive(Serialize, ToSchema)]
struct ReloadRefused {
    /// `invalid_data`, with a Chinese message.
    error: RefusedDetail,
    /// One line per problem: the part of the data, then file, entry, field and what is wrong.
    problems: Vec<String>,
}

/// Why the reload was refused.
#[derive(Serialize, ToSchema)]
struct RefusedDetail {
    /// `invalid_data`
    code: &'static str,
    /// Chinese, for people
    message: String,
}

#[utoipa::path(post, path = "/v1/agent/reload", tag = "agents",
    summary = "reload the knowledge, dialogs and regions without a restart (agents only)",
    security(("agentToken" = []), ("agentCookie" = [])),
    responses(
        (status = 200, description = "the new data is in force", body = ReloadDone),
        (status = 401, description = "not an agent", body = ErrorBody),
        (status = 409, description = "the server was not started from data folders (reload_unavailable)", body = ErrorBody),
        (status = 422, description = "the data is invalid; the previous data stays in force", body = ReloadRefused),
        (status = 429, description = "rate limited; see Retry-After", body = ErrorBody,
            headers(("Retry-After" = u64, description = "seconds"))),
    ))]
async fn reload(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(e) = console::require_agent(&state, &headers).await {
        return e.into_response();
    }
    let live: Arc<LiveAssistant> = state.conversations().live.clone();
    let result =
        tokio::task::spawn_blocking(move || reload_and_log(&live, "POST /v1/agent/reload")).await;
    match result {
        Ok(Ok(r)) => Json(ReloadDone {
            generation: r.generation,
            entries: r.entries,
            dialogs: r.dialogs,
            millis: r.millis,
        })
        .into_response(),
        Ok(Err(ReloadError::NoFolders)) => ApiError::new(
            StatusCode::CONFLICT,
            "reload_unavailable",
            "这个服务不是从数据文件夹启动的，无法重新加载。",
        )
        .into_response(),
        Ok(Err(e)) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(ReloadRefused {
                error: RefusedDetail {
                    code: "invalid_data",
                    message:
                        "数据校验没有通过，没有重新加载，仍在使用原来的数据；问题见 problems。"
                            .to_string(),
                },
                problems: e.problems(),
            }),
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "the reload task failed");
            ApiError::of_status(StatusCode::INTERNAL_SERVER_ERROR).into_response()
        }
    }
}
