//! What every kaji component shares: logging set-up, signal handling, flag parsing helpers,
//! leader election and TLS helpers.

use tokio_util::sync::CancellationToken;

pub mod duration;
pub mod events;
pub mod leader_election;
pub mod tls;

pub use duration::parse_duration;

/// Installs the global `tracing` subscriber: human-readable lines on stderr, filtered by
/// `RUST_LOG` (default `info`).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// A token cancelled on the first SIGINT or SIGTERM, so components shut down cleanly.
pub fn shutdown_token() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(term) => term,
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                let _ = tokio::signal::ctrl_c().await;
                cancel.cancel();
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = term.recv() => {},
        }
        tracing::info!("shutdown requested");
        cancel.cancel();
    });
    token
}

/// The User-Agent a component sends, shaped like upstream's
/// `<binary>/<version> (<os>/<arch>) kubernetes/<commit>`: the apiserver takes the part
/// before the first `/` as the field manager of writes that name none.
pub fn user_agent(binary: &str) -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    format!(
        "{binary}/v1.37.0-kaji.{} ({}/{arch}) kaji",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::OS
    )
}

/// Makes `config`'s clients send [`user_agent`] for `binary`.
pub fn set_user_agent(config: &mut kube::Config, binary: &str) {
    if let Ok(value) = http::HeaderValue::from_str(&user_agent(binary)) {
        config.headers.retain(|(name, _)| name != http::header::USER_AGENT);
        config.headers.push((http::header::USER_AGENT, value));
    }
}
