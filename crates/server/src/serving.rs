//! Serving: the listener with its housekeeping (index reload, idle rate-limit entries,
//! expiry of old chats, insights and answer records, a reconcile of uploads every ten minutes) and a graceful shutdown on Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::{AppState, app, insights, portal, public_app};

/// Serve until `shutdown` resolves; in-flight requests finish first. Reloads the index every
/// few seconds and forgets idle rate-limit entries every minute.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_split(listener, None, state, shutdown).await
}

/// As [`serve`]; with an `internal` listener, `public` serves only the citizens' routes
/// ([`crate::public_app`]) and `internal` every route (`[server] internal_addr`).
pub async fn serve_split(
    public: tokio::net::TcpListener,
    internal: Option<tokio::net::TcpListener>,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use futures_util::FutureExt;
    let shutdown = shutdown.shared();
    let housekeeping = {
        let state = state.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            let mut n = 0u64;
            loop {
                tick.tick().await;
                state.refresh_index().await;
                n += 1;
                if n % 12 == 0 {
                    state.limits.forget_idle();
                    state.login.forget_idle();
                }
                if n % 120 == 60 {
                    // every ten minutes: what a replica that died halfway left behind (on a
                    // task of its own: the index reloads go on meanwhile)
                    let state = state.clone();
                    tokio::spawn(async move { portal::reconcile_now(&state).await });
                }
                if n % 720 == 1 {
                    portal::expire_chats(&state).await;
                    insights::expire(&state).await;
                    state.answers().expire_records().await;
                }
            }
        })
    };
    let result = match internal {
        None => {
            axum::serve(public, app(state).into_make_service_with_connect_info::<SocketAddr>())
                .with_graceful_shutdown(shutdown)
                .await
        }
        Some(internal) => {
            let public = axum::serve(public, public_app(state.clone()).into_make_service_with_connect_info::<SocketAddr>())
                .with_graceful_shutdown(shutdown.clone());
            let internal = axum::serve(internal, app(state).into_make_service_with_connect_info::<SocketAddr>())
                .with_graceful_shutdown(shutdown);
            let (a, b) = tokio::join!(public.into_future(), internal.into_future());
            a.and(b)
        }
    };
    housekeeping.abort();
    result
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing open requests");
}
