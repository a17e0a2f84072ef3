//! The `app` binary: loads the configuration, listens on `HOST:PORT` and serves until
//! SIGINT or SIGTERM. Exit codes: 0 after a requested shutdown, 2 for a configuration
//! error, 1 for any other failure; either failure is one line on stderr.

use std::{process::ExitCode, time::Duration};

use app::Config;
use tokio::{net::TcpListener, sync::oneshot};

/// How long in-flight requests may take to finish once a shutdown is requested.
const GRACE_PERIOD: Duration = Duration::from_secs(30);

/// mimalloc rather than glibc's malloc: every request allocates and frees its boxed
/// futures and buffers across threads, where glibc's arenas spend measurably more time
/// (consolidation, lock contention) and hold on to more memory.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let config = match Config::load() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    app::init_tracing(&config.log);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", app::one_line(&e));
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let listener = TcpListener::bind((config.host.as_str(), config.port))
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
    let server = app::run(config, listener, shutdown);
    tokio::pin!(server);
    tokio::select! {
        served = &mut server => return served,
        Ok(()) = stopped => {}
    }
    // Shutdown was requested: give in-flight requests a bounded time, and let a second
    // signal cut it short.
    tokio::select! {
        served = server => served,
        () = tokio::time::sleep(GRACE_PERIOD) => {
            tracing::warn!("requests still running after {GRACE_PERIOD:?}: stopping anyway");
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
