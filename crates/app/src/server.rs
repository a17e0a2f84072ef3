//! Serving until told to stop: listens on `HOST:PORT`, runs [`crate::run`] and turns
//! SIGINT or SIGTERM into a graceful shutdown bounded by `SHUTDOWN_TIMEOUT`.

use std::time::Duration;

use tokio::sync::oneshot;

use crate::Config;

/// What closing the stores may take once requests are done (or given up on): the whole
/// shutdown is bounded by `SHUTDOWN_TIMEOUT` plus this.
const CLOSING_MARGIN: Duration = Duration::from_secs(5);

/// Listens on `HOST:PORT` and serves until SIGINT or SIGTERM, then refuses new
/// connections and lets in-flight requests finish for at most `SHUTDOWN_TIMEOUT` (a
/// second signal cuts it short).
pub async fn serve_until_signalled(config: Config) -> anyhow::Result<()> {
    let bound = config.shutdown_timeout + CLOSING_MARGIN;
    let listener = crate::transport::bind(&config.host, config.port, config.listen_backlog)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot listen on {}:{} (HOST, PORT): {e}",
                config.host,
                config.port
            )
        })?;

    let (stopping, stopped) = oneshot::channel();
    let shutdown = async move {
        let signal = shutdown_signal().await;
        tracing::info!("{signal} received: finishing in-flight requests, then stopping");
        let _ = stopping.send(());
    };
    let server = crate::run(config, listener, shutdown);
    tokio::pin!(server);
    tokio::select! {
        served = &mut server => return served,
        Ok(()) = stopped => {}
    }
    // Shutdown was requested: the transport gives in-flight requests `SHUTDOWN_TIMEOUT`;
    // this bounds the rest (closing the stores), and lets a second signal cut it short.
    let started = tokio::time::Instant::now();
    tokio::select! {
        served = server => {
            tracing::info!(elapsed = ?started.elapsed(), "shut down");
            served
        }
        () = tokio::time::sleep(bound) => {
            tracing::warn!("still stopping after {bound:?}: stopping anyway");
            Ok(())
        }
        signal = shutdown_signal() => {
            tracing::warn!("{signal} received again: stopping without waiting");
            Ok(())
        }
    }
}

/// Completes at SIGINT (Ctrl-C) or SIGTERM, naming which one came.
async fn shutdown_signal() -> &'static str {
    let interrupt = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!("cannot listen for SIGINT: {e}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                terminate.recv().await;
            }
            Err(e) => {
                tracing::warn!("cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => "SIGINT",
        () = terminate => "SIGTERM",
    }
}
