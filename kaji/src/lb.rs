//! `kaji apiserver-lb` (hidden; `kaji up --apiservers N` starts it): the front end of several
//! apiservers, as kind puts haproxy before its control-plane nodes. It passes TCP connections
//! through (TLS ends at the apiservers, so client certificates keep working), picking the
//! backends in turn and skipping one that refuses or doesn't answer within a second, so new
//! connections keep working while any apiserver is up.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::net::{TcpListener, TcpStream};

/// How long a backend gets to accept a connection before the next is tried.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// `kaji apiserver-lb` flags.
#[derive(Debug, clap::Args)]
pub struct LbArgs {
    /// The address to listen on.
    #[arg(long)]
    pub listen: SocketAddr,
    /// An apiserver's address (repeated).
    #[arg(long = "backend", required = true)]
    pub backends: Vec<SocketAddr>,
}

pub fn run(args: &LbArgs) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(serve(args.listen, args.backends.clone()))
}

async fn serve(listen: SocketAddr, backends: Vec<SocketAddr>) -> Result<()> {
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    eprintln!("forwarding {listen} to {backends:?}");
    let backends = Arc::new(backends);
    let next = Arc::new(AtomicUsize::new(0));
    loop {
        let (client, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                eprintln!("accept: {error}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let backends = backends.clone();
        let first = next.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            if let Err(error) = forward(client, &backends, first).await {
                eprintln!("{peer}: {error:#}");
            }
        });
    }
}

/// Connects to the first backend (from `first` on, in turn) that accepts, then copies both ways
/// until either side closes.
async fn forward(mut client: TcpStream, backends: &[SocketAddr], first: usize) -> Result<()> {
    let _ = client.set_nodelay(true);
    for offset in 0..backends.len() {
        let backend = backends[(first + offset) % backends.len()];
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(backend)).await {
            Ok(Ok(mut upstream)) => {
                let _ = upstream.set_nodelay(true);
                tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
                return Ok(());
            }
            Ok(Err(error)) => eprintln!("backend {backend}: {error}"),
            Err(_) => eprintln!("backend {backend}: no answer in {CONNECT_TIMEOUT:?}"),
        }
    }
    anyhow::bail!("no backend accepted the connection")
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A backend that answers every connection with `name`.
    async fn backend(name: &'static str) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let _ = stream.write_all(name.as_bytes()).await;
            }
        });
        addr
    }

    async fn ask(front: SocketAddr) -> String {
        let mut stream = TcpStream::connect(front).await.expect("connect");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.expect("read");
        answer
    }

    #[tokio::test]
    async fn connections_alternate_and_skip_a_dead_backend() {
        let a = backend("a").await;
        let b = backend("b").await;
        // A port nothing listens on (bound, then released).
        let dead = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind")
            .local_addr()
            .expect("addr");
        let front = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind")
            .local_addr()
            .expect("addr");
        tokio::spawn(serve(front, vec![a, dead, b]));
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut answers = Vec::new();
        for _ in 0..6 {
            answers.push(ask(front).await);
        }
        assert_eq!(answers, ["a", "b", "b", "a", "b", "b"]);
    }
}
