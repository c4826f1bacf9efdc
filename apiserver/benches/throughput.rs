//! Throughput of the apiserver next to raw etcd (issue 2).
//!
//! One run starts one etcd and one `kube-apiserver` (the real binary) and measures, at the same
//! concurrency:
//!
//! 1. raw etcd puts/s of ~1 KiB JSON values (etcd-client, one gRPC connection, like the
//!    apiserver's own storage client), and as a diagnostic the same with the create
//!    transaction the apiserver issues (put if the key's create_revision is 0);
//! 2. apiserver creates/s of ~1 KiB ConfigMaps, and their ratio to (1);
//! 3. GET/s of one object and LIST/s of a namespace with 100 ConfigMaps, both with
//!    resourceVersion unset (consistent reads from the watch cache);
//! 4. watch fan-out: W watch streams on one namespace, then E creates; every watcher must see
//!    every ADDED event.
//!
//! The client is hyper's connection-level client over rustls with the admin client
//! certificate: request bodies are pre-built, responses are only status-checked and drained.
//! CPU time of the client, the apiserver and etcd is read from /proc for every phase, since
//! they all share the machine.
//!
//! Knobs (environment): KAJI_BENCH_CONCURRENCY (64), KAJI_BENCH_SECONDS (10),
//! KAJI_BENCH_WARMUP_SECONDS (1), KAJI_BENCH_WATCHERS (1000), KAJI_BENCH_EVENTS (200),
//! KAJI_BENCH_LIST_OBJECTS (100), KAJI_BENCH_OBJECT_BYTES (1024), KAJI_BENCH_HTTP (h2 | h1),
//! KAJI_BENCH_H2_CONNECTIONS (4: the request workers share this many HTTP/2 connections; with
//! h1 every worker has its own connection), KAJI_BENCH_WATCHERS_PER_CONNECTION (100, h2 only;
//! the apiserver allows 200 concurrent streams per connection).
//!
//! Run: `cargo bench -p apiserver --bench throughput`.

use std::collections::HashSet;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine;
use bytes::{BufMut, Bytes, BytesMut};
use futures::StreamExt;
use http::{Method, Request, Response, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use testkit::apiserver::ApiServer;
use testkit::etcd::EtcdServer;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// The request-rate target for GET and LIST (issue 2).
const READ_TARGET: f64 = 20_000.0;
/// The create/put ratio target (issue 2).
const WRITE_RATIO_TARGET: f64 = 0.70;
/// How long watch setup and delivery may take before the phase is reported as failed.
const WATCH_TIMEOUT: Duration = Duration::from_secs(60);
/// How long one request may take before it counts as an error.
const OP_TIMEOUT: Duration = Duration::from_secs(30);
/// Linux reports process and machine CPU time in USER_HZ ticks, 100 per second.
const TICKS_PER_SECOND: f64 = 100.0;

// ---------------------------------------------------------------------------------------------
// Settings

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Proto {
    H1,
    H2,
}

#[derive(Clone, Debug)]
struct Settings {
    concurrency: usize,
    seconds: f64,
    warmup: f64,
    watchers: usize,
    events: usize,
    list_objects: usize,
    object_bytes: usize,
    proto: Proto,
    h2_connections: usize,
    watchers_per_connection: usize,
}

fn env_or<T: FromStr>(name: &str, default: T) -> Result<T> {
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => value
            .trim()
            .parse()
            .map_err(|_| anyhow!("{name}={value:?} is not a valid value")),
        _ => Ok(default),
    }
}

impl Settings {
    fn from_env() -> Result<Self> {
        let proto = match std::env::var("KAJI_BENCH_HTTP")
            .unwrap_or_default()
            .to_ascii_lowercase()
            .as_str()
        {
            "" | "h2" | "2" | "http2" => Proto::H2,
            "h1" | "1" | "http1" | "http/1.1" => Proto::H1,
            other => bail!("KAJI_BENCH_HTTP={other:?}: expected h2 or h1"),
        };
        let settings = Self {
            concurrency: env_or("KAJI_BENCH_CONCURRENCY", 64)?,
            seconds: env_or("KAJI_BENCH_SECONDS", 10.0)?,
            warmup: env_or("KAJI_BENCH_WARMUP_SECONDS", 1.0)?,
            watchers: env_or("KAJI_BENCH_WATCHERS", 1000)?,
            events: env_or("KAJI_BENCH_EVENTS", 200)?,
            list_objects: env_or("KAJI_BENCH_LIST_OBJECTS", 100)?,
            object_bytes: env_or("KAJI_BENCH_OBJECT_BYTES", 1024)?,
            proto,
            h2_connections: env_or("KAJI_BENCH_H2_CONNECTIONS", 4)?,
            watchers_per_connection: env_or("KAJI_BENCH_WATCHERS_PER_CONNECTION", 100)?,
        };
        if settings.concurrency == 0
            || settings.seconds <= 0.0
            || settings.warmup < 0.0
            || settings.events == 0
            || settings.list_objects == 0
            || settings.h2_connections == 0
            || settings.watchers_per_connection == 0
        {
            bail!("concurrency, seconds, events, list objects and connection counts must be positive");
        }
        Ok(settings)
    }

    fn describe(&self) -> String {
        format!(
            "concurrency={} seconds={} warmup={} watchers={} events={} list_objects={} object_bytes={} http={} \
             h2_connections={} watchers_per_connection={}",
            self.concurrency,
            self.seconds,
            self.warmup,
            self.watchers,
            self.events,
            self.list_objects,
            self.object_bytes,
            match self.proto {
                Proto::H1 => "h1",
                Proto::H2 => "h2",
            },
            self.h2_connections,
            self.watchers_per_connection,
        )
    }
}

/// The command line as typed, with the KAJI_BENCH_* (and CARGO_TARGET_DIR) variables that are set.
fn command_line() -> String {
    let mut vars: Vec<String> = std::env::vars()
        .filter(|(k, _)| k.starts_with("KAJI_BENCH_") || k == "CARGO_TARGET_DIR")
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    vars.sort();
    vars.push("cargo bench -p apiserver --bench throughput".into());
    vars.join(" ")
}

// ---------------------------------------------------------------------------------------------
// CPU accounting from /proc

fn process_ticks(pid: Option<u32>) -> Option<u64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_string(),
    };
    let text = std::fs::read_to_string(path).ok()?;
    // Fields after the command name: state is field 3, utime 14, stime 15.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Busy ticks of the whole machine (user, nice, system, irq, softirq, steal).
fn machine_busy_ticks() -> u64 {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = text.lines().find(|l| l.starts_with("cpu ")) else {
        return 0;
    };
    let values: Vec<u64> = line.split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
    [0, 1, 2, 5, 6, 7].iter().filter_map(|&i| values.get(i)).sum()
}

/// The pid of the process listening on a TCP port (via /proc/net/tcp and /proc/*/fd).
fn pid_listening_on(port: u16) -> Option<u32> {
    let mut sockets = HashSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local_port = fields
                .get(1)
                .and_then(|a| a.rsplit(':').next())
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            if fields.len() > 9 && fields[3] == "0A" && local_port == Some(port) {
                sockets.insert(format!("socket:[{}]", fields[9]));
            }
        }
    }
    if sockets.is_empty() {
        return None;
    }
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(link) = std::fs::read_link(fd.path())
                && link.to_str().is_some_and(|l| sockets.contains(l))
            {
                return Some(pid);
            }
        }
    }
    None
}

/// The processes whose CPU time we account for.
#[derive(Clone, Copy)]
struct Procs {
    apiserver: Option<u32>,
    etcd: Option<u32>,
}

#[derive(Clone, Copy)]
struct CpuSample {
    at: Instant,
    client: Option<u64>,
    apiserver: Option<u64>,
    etcd: Option<u64>,
    machine: u64,
}

impl Procs {
    fn sample(&self) -> CpuSample {
        CpuSample {
            at: Instant::now(),
            client: process_ticks(None),
            apiserver: self.apiserver.and_then(|p| process_ticks(Some(p))),
            etcd: self.etcd.and_then(|p| process_ticks(Some(p))),
            machine: machine_busy_ticks(),
        }
    }
}

/// CPU used between two samples, in cores.
#[derive(Clone, Copy, Default)]
struct CpuUsage {
    client: Option<f64>,
    apiserver: Option<f64>,
    etcd: Option<f64>,
    machine: f64,
}

impl CpuUsage {
    fn between(a: &CpuSample, b: &CpuSample) -> Self {
        let seconds = b.at.duration_since(a.at).as_secs_f64().max(1e-9);
        let cores = |x: Option<u64>, y: Option<u64>| match (x, y) {
            (Some(x), Some(y)) => Some(y.saturating_sub(x) as f64 / TICKS_PER_SECOND / seconds),
            _ => None,
        };
        Self {
            client: cores(a.client, b.client),
            apiserver: cores(a.apiserver, b.apiserver),
            etcd: cores(a.etcd, b.etcd),
            machine: b.machine.saturating_sub(a.machine) as f64 / TICKS_PER_SECOND / seconds,
        }
    }

    fn other(&self) -> f64 {
        (self.machine - self.client.unwrap_or(0.0) - self.apiserver.unwrap_or(0.0) - self.etcd.unwrap_or(0.0)).max(0.0)
    }
}

fn cores(value: Option<f64>) -> String {
    value.map_or_else(|| "n/a".to_string(), |v| format!("{v:.2}"))
}

// ---------------------------------------------------------------------------------------------
// HTTP client

/// PEM credentials from the admin kubeconfig.
struct Credentials {
    ca: Vec<u8>,
    cert: Vec<u8>,
    key: Vec<u8>,
}

fn read_kubeconfig(path: &Path) -> Result<Credentials> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let field = |name: &str| -> Result<Vec<u8>> {
        let value = text
            .lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(':')))
            .with_context(|| format!("{name} is missing from the kubeconfig"))?;
        base64::engine::general_purpose::STANDARD
            .decode(value.trim())
            .with_context(|| format!("{name} is not base64"))
    };
    Ok(Credentials {
        ca: field("certificate-authority-data")?,
        cert: field("client-certificate-data")?,
        key: field("client-key-data")?,
    })
}

fn tls_connector(credentials: &Credentials, proto: Proto) -> Result<TlsConnector> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&credentials.ca) {
        roots.add(cert.context("parsing the CA certificate")?)?;
    }
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&credentials.cert)
        .collect::<Result<_, _>>()
        .context("parsing the client certificate")?;
    let key = PrivateKeyDer::from_pem_slice(&credentials.key).context("parsing the client key")?;
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)?;
    config.alpn_protocols = vec![match proto {
        Proto::H2 => b"h2".to_vec(),
        Proto::H1 => b"http/1.1".to_vec(),
    }];
    Ok(TlsConnector::from(Arc::new(config)))
}

type Body = Full<Bytes>;

/// One connection's request handle. HTTP/2 handles are cloned to share a connection.
enum Sender {
    H1(hyper::client::conn::http1::SendRequest<Body>),
    H2(hyper::client::conn::http2::SendRequest<Body>),
}

impl Sender {
    async fn send(&mut self, request: Request<Body>) -> Result<Response<Incoming>> {
        match self {
            Sender::H1(s) => {
                s.ready().await?;
                Ok(s.send_request(request).await?)
            }
            Sender::H2(s) => {
                s.ready().await?;
                Ok(s.send_request(request).await?)
            }
        }
    }

    fn share(&self) -> Option<Sender> {
        match self {
            Sender::H1(_) => None,
            Sender::H2(s) => Some(Sender::H2(s.clone())),
        }
    }
}

/// Where and how to reach the apiserver.
struct Api {
    addr: SocketAddr,
    authority: String,
    proto: Proto,
    tls: TlsConnector,
}

impl Api {
    async fn connect(&self) -> Result<Sender> {
        let tcp = TcpStream::connect(self.addr).await?;
        tcp.set_nodelay(true)?;
        let tls = self.tls.connect(ServerName::from(self.addr.ip()), tcp).await?;
        let io = TokioIo::new(tls);
        match self.proto {
            Proto::H1 => {
                let (sender, connection) = hyper::client::conn::http1::handshake(io).await?;
                tokio::spawn(async move {
                    let _ = connection.await;
                });
                Ok(Sender::H1(sender))
            }
            Proto::H2 => {
                let (sender, connection) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
                    .initial_stream_window_size(2 << 20)
                    .initial_connection_window_size(8 << 20)
                    .handshake(io)
                    .await?;
                tokio::spawn(async move {
                    let _ = connection.await;
                });
                Ok(Sender::H2(sender))
            }
        }
    }

    /// `connections` connections, opened at most 64 at a time.
    async fn connect_many(&self, connections: usize) -> Result<Vec<Sender>> {
        futures::stream::iter(0..connections)
            .map(|_| self.connect())
            .buffer_unordered(64)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect()
    }

    /// One handle per worker: its own connection with HTTP/1.1, a share of
    /// `h2_connections` connections with HTTP/2.
    async fn worker_senders(&self, workers: usize, h2_connections: usize) -> Result<Vec<Sender>> {
        match self.proto {
            Proto::H1 => self.connect_many(workers).await,
            Proto::H2 => {
                let shared = self.connect_many(h2_connections.min(workers).max(1)).await?;
                Ok((0..workers).filter_map(|i| shared[i % shared.len()].share()).collect())
            }
        }
    }

    fn uri(&self, path: &str) -> Result<Uri> {
        let uri = match self.proto {
            Proto::H1 => path.parse()?,
            Proto::H2 => format!("https://{}{path}", self.authority).parse()?,
        };
        Ok(uri)
    }

    fn request(&self, method: Method, uri: &Uri, body: Bytes) -> Request<Body> {
        let mut builder = Request::builder()
            .method(method)
            .uri(uri.clone())
            .header(header::ACCEPT, "application/json");
        if self.proto == Proto::H1 {
            builder = builder.header(header::HOST, self.authority.as_str());
        }
        if !body.is_empty() {
            builder = builder.header(header::CONTENT_TYPE, "application/json");
        }
        builder.body(Full::new(body)).expect("a request from valid parts")
    }
}

/// Checks the status and drains the body; returns the body size.
async fn finish(response: Response<Incoming>, expected: StatusCode) -> Result<usize> {
    let status = response.status();
    let mut body = response.into_body();
    let mut size = 0;
    let mut snippet = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame?;
        if let Some(data) = frame.data_ref() {
            size += data.len();
            if status != expected && snippet.len() < 400 {
                let take = data.len().min(400 - snippet.len());
                snippet.extend_from_slice(&data[..take]);
            }
        }
    }
    if status != expected {
        bail!(
            "HTTP {status} (expected {expected}): {}",
            String::from_utf8_lossy(&snippet)
        );
    }
    Ok(size)
}

/// The JSON body of a ConfigMap of about `object_bytes`, built from two pre-built halves
/// around the name.
struct ConfigMapTemplate {
    head: Bytes,
    tail: Bytes,
}

impl ConfigMapTemplate {
    fn new(object_bytes: usize) -> Self {
        let head = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":""#;
        let middle = r#""},"data":{"payload":""#;
        let end = r#""}}"#;
        let typical_name = 12;
        let payload_len = object_bytes
            .saturating_sub(head.len() + middle.len() + end.len() + typical_name)
            .max(1);
        let alphabet = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
        let payload: Vec<u8> = (0..payload_len)
            .map(|i| alphabet[(i * 7 + i / 61) % alphabet.len()])
            .collect();
        let mut tail = BytesMut::new();
        tail.put_slice(middle.as_bytes());
        tail.put_slice(&payload);
        tail.put_slice(end.as_bytes());
        Self {
            head: Bytes::from_static(head.as_bytes()),
            tail: tail.freeze(),
        }
    }

    fn body(&self, name: &str) -> Bytes {
        let mut out = BytesMut::with_capacity(self.head.len() + name.len() + self.tail.len());
        out.put_slice(&self.head);
        out.put_slice(name.as_bytes());
        out.put_slice(&self.tail);
        out.freeze()
    }
}

// ---------------------------------------------------------------------------------------------
// Closed-loop phases

/// One kind of operation, run back to back by one worker.
trait Worker: Send + 'static {
    /// Performs operation number `seq`; returns the response bytes received.
    fn op(&mut self, seq: u64) -> impl Future<Output = Result<usize>> + Send;
}

/// A raw etcd write of a ~1 KiB JSON value under a fresh key: a plain put, or the apiserver's
/// create transaction (put if the key's create_revision is 0).
struct EtcdWrite {
    kv: etcd_client::KvClient,
    worker: usize,
    template: Arc<ConfigMapTemplate>,
    prefix: &'static str,
    create_txn: bool,
}

impl Worker for EtcdWrite {
    async fn op(&mut self, seq: u64) -> Result<usize> {
        let name = format!("w{}-{seq}", self.worker);
        let key = format!("{}{name}", self.prefix);
        let value = self.template.body(&name).to_vec();
        if self.create_txn {
            let txn = etcd_client::Txn::new()
                .when([etcd_client::Compare::create_revision(
                    key.as_str(),
                    etcd_client::CompareOp::Equal,
                    0,
                )])
                .and_then([etcd_client::TxnOp::put(key.as_str(), value, None)]);
            let response = self.kv.txn(txn).await?;
            if !response.succeeded() {
                bail!("{key} already exists");
            }
        } else {
            self.kv.put(key, value, None).await?;
        }
        Ok(0)
    }
}

struct HttpCall {
    api: Arc<Api>,
    sender: Sender,
    method: Method,
    uri: Uri,
    expected: StatusCode,
    /// For creates: the body template; names are `w<worker>-<seq>`.
    create: Option<Arc<ConfigMapTemplate>>,
    worker: usize,
}

impl Worker for HttpCall {
    async fn op(&mut self, seq: u64) -> Result<usize> {
        let body = match &self.create {
            Some(template) => template.body(&format!("w{}-{seq}", self.worker)),
            None => Bytes::new(),
        };
        let request = self.api.request(self.method.clone(), &self.uri, body);
        let response = self.sender.send(request).await?;
        finish(response, self.expected).await
    }
}

#[derive(Default)]
struct Outcome {
    ops: u64,
    errors: u64,
    first_error: Option<String>,
    latencies_us: Vec<u32>,
    bytes: u64,
    seconds: f64,
    cpu: CpuUsage,
}

impl Outcome {
    fn rate(&self) -> f64 {
        self.ops as f64 / self.seconds
    }

    fn percentile_ms(&self, q: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        let index = ((self.latencies_us.len() - 1) as f64 * q).round() as usize;
        f64::from(self.latencies_us[index]) / 1000.0
    }

    fn latency(&self) -> String {
        format!("{:.2} / {:.2} ms", self.percentile_ms(0.50), self.percentile_ms(0.99))
    }

    fn report(&self, name: &str) {
        eprintln!(
            "  {name}: {:.0} ops/s ({} ops in {:.1} s), p50 {:.2} ms, p99 {:.2} ms, {:.1} MB/s received, {} errors",
            self.rate(),
            self.ops,
            self.seconds,
            self.percentile_ms(0.50),
            self.percentile_ms(0.99),
            self.bytes as f64 / self.seconds / 1e6,
            self.errors
        );
        if let Some(error) = &self.first_error {
            eprintln!("    first error: {error}");
        }
        eprintln!(
            "    cpu (cores): client {} | apiserver {} | etcd {} | other {:.2} | machine {:.2}",
            cores(self.cpu.client),
            cores(self.cpu.apiserver),
            cores(self.cpu.etcd),
            self.cpu.other(),
            self.cpu.machine
        );
    }
}

/// Runs every worker back to back for warmup + duration; counts what completes in the
/// measured window.
async fn closed_loop<W: Worker>(workers: Vec<W>, settings: &Settings, procs: &Procs) -> Outcome {
    let start = Instant::now();
    let from = start + Duration::from_secs_f64(settings.warmup);
    let to = from + Duration::from_secs_f64(settings.seconds);
    let handles: Vec<_> = workers
        .into_iter()
        .map(|mut worker| {
            tokio::spawn(async move {
                let mut outcome = Outcome::default();
                let mut seq = 0u64;
                loop {
                    let began = Instant::now();
                    if began >= to {
                        break;
                    }
                    let result = match tokio::time::timeout(OP_TIMEOUT, worker.op(seq)).await {
                        Ok(result) => result,
                        Err(_) => Err(anyhow!("no answer within {OP_TIMEOUT:?}")),
                    };
                    seq += 1;
                    let done = Instant::now();
                    match result {
                        Ok(bytes) if done >= from && done <= to => {
                            outcome.ops += 1;
                            outcome.bytes += bytes as u64;
                            let us = done.duration_since(began).as_micros();
                            outcome.latencies_us.push(u32::try_from(us).unwrap_or(u32::MAX));
                        }
                        Ok(_) => {}
                        Err(error) => {
                            outcome.errors += 1;
                            outcome.first_error.get_or_insert_with(|| format!("{error:#}"));
                            // A persistent failure should not spin.
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    }
                }
                outcome
            })
        })
        .collect();
    tokio::time::sleep_until(from.into()).await;
    let before = procs.sample();
    tokio::time::sleep_until(to.into()).await;
    let after = procs.sample();
    let mut total = Outcome {
        seconds: settings.seconds,
        cpu: CpuUsage::between(&before, &after),
        ..Outcome::default()
    };
    for handle in handles {
        match handle.await {
            Ok(outcome) => {
                total.ops += outcome.ops;
                total.errors += outcome.errors;
                total.bytes += outcome.bytes;
                total.latencies_us.extend(outcome.latencies_us);
                if total.first_error.is_none() {
                    total.first_error = outcome.first_error;
                }
            }
            Err(error) => {
                total.errors += 1;
                total
                    .first_error
                    .get_or_insert_with(|| format!("worker panicked: {error}"));
            }
        }
    }
    total.latencies_us.sort_unstable();
    total
}

// ---------------------------------------------------------------------------------------------
// Setup helpers

async fn create_namespace(api: &Api, sender: &mut Sender, name: &str) -> Result<()> {
    let body = format!(r#"{{"apiVersion":"v1","kind":"Namespace","metadata":{{"name":"{name}"}}}}"#);
    let uri = api.uri("/api/v1/namespaces")?;
    let response = sender.send(api.request(Method::POST, &uri, Bytes::from(body))).await?;
    finish(response, StatusCode::CREATED)
        .await
        .with_context(|| format!("creating namespace {name}"))?;
    Ok(())
}

/// Creates ConfigMaps `names` in `namespace`, spread over `senders`.
async fn create_configmaps(
    api: &Arc<Api>,
    senders: Vec<Sender>,
    namespace: &str,
    names: Vec<String>,
    template: &Arc<ConfigMapTemplate>,
) -> Result<()> {
    let uri = api.uri(&format!("/api/v1/namespaces/{namespace}/configmaps"))?;
    let names = Arc::new(names);
    let next = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = senders
        .into_iter()
        .map(|mut sender| {
            let (api, uri, names, next, template) =
                (api.clone(), uri.clone(), names.clone(), next.clone(), template.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(name) = names.get(i) else {
                        return Ok::<(), anyhow::Error>(());
                    };
                    let request = api.request(Method::POST, &uri, template.body(name));
                    let response = sender.send(request).await?;
                    finish(response, StatusCode::CREATED)
                        .await
                        .with_context(|| format!("creating configmap {name}"))?;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    Ok(())
}

/// The resourceVersion of a namespace's ConfigMap list.
async fn list_revision(api: &Api, sender: &mut Sender, namespace: &str) -> Result<String> {
    let uri = api.uri(&format!("/api/v1/namespaces/{namespace}/configmaps"))?;
    let response = sender.send(api.request(Method::GET, &uri, Bytes::new())).await?;
    if response.status() != StatusCode::OK {
        bail!("listing {namespace}: HTTP {}", response.status());
    }
    let body = response.into_body().collect().await?.to_bytes();
    let list: serde_json::Value = serde_json::from_slice(&body)?;
    list["metadata"]["resourceVersion"]
        .as_str()
        .map(str::to_string)
        .context("the list has no resourceVersion")
}

// ---------------------------------------------------------------------------------------------
// Watch fan-out

/// Counts `{"type":"ADDED",...}` lines in a chunked watch stream.
#[derive(Default)]
struct LineCounter {
    /// The start of the current line, until it is long enough to classify.
    start: Vec<u8>,
    /// The current line is classified; skipping to its end.
    skipping: bool,
    added: usize,
    other: usize,
}

const ADDED_PREFIX: &[u8] = br#"{"type":"ADDED""#;

impl LineCounter {
    fn classify(&mut self) {
        if self.start == ADDED_PREFIX {
            self.added += 1;
        } else if !self.start.is_empty() {
            self.other += 1;
        }
        self.start.clear();
    }

    fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            if self.skipping {
                match data.iter().position(|&b| b == b'\n') {
                    Some(i) => {
                        self.skipping = false;
                        data = &data[i + 1..];
                    }
                    None => return,
                }
                continue;
            }
            let want = ADDED_PREFIX.len() - self.start.len();
            let window = &data[..want.min(data.len())];
            if let Some(i) = window.iter().position(|&b| b == b'\n') {
                // A line shorter than the prefix.
                self.start.extend_from_slice(&window[..i]);
                self.classify();
                data = &data[i + 1..];
                continue;
            }
            self.start.extend_from_slice(window);
            data = &data[window.len()..];
            if self.start.len() == ADDED_PREFIX.len() {
                self.classify();
                self.skipping = true;
            }
        }
    }
}

struct WatchOutcome {
    watchers: usize,
    events: usize,
    established_in: Duration,
    created_in: Duration,
    complete_watchers: usize,
    received: u64,
    other_lines: usize,
    /// First create → last event at the last watcher (None if some watcher did not finish).
    delivery: Option<Duration>,
    /// First create → the median watcher has every event.
    median_watcher: Option<Duration>,
    first_error: Option<String>,
    cpu: CpuUsage,
}

impl WatchOutcome {
    fn expected(&self) -> u64 {
        (self.watchers * self.events) as u64
    }

    fn delivered_per_second(&self) -> Option<f64> {
        self.delivery.map(|d| self.received as f64 / d.as_secs_f64())
    }

    fn report(&self) {
        eprintln!(
            "  watch: {} streams established in {:.2} s; {} creates in {:.2} s; {} / {} events received, {} of {} \
             watchers complete, {} other lines",
            self.watchers,
            self.established_in.as_secs_f64(),
            self.events,
            self.created_in.as_secs_f64(),
            self.received,
            self.expected(),
            self.complete_watchers,
            self.watchers,
            self.other_lines
        );
        if let (Some(delivery), Some(median), Some(rate)) =
            (self.delivery, self.median_watcher, self.delivered_per_second())
        {
            eprintln!(
                "    delivery: median watcher complete {:.3} s, last watcher {:.3} s after the first create; {:.0} \
                 events/s",
                median.as_secs_f64(),
                delivery.as_secs_f64(),
                rate
            );
        }
        if let Some(error) = &self.first_error {
            eprintln!("    first error: {error}");
        }
        eprintln!(
            "    cpu (cores): client {} | apiserver {} | etcd {} | other {:.2} | machine {:.2}",
            cores(self.cpu.client),
            cores(self.cpu.apiserver),
            cores(self.cpu.etcd),
            self.cpu.other(),
            self.cpu.machine
        );
    }
}

async fn watch_fanout(
    api: &Arc<Api>,
    setup: &mut Sender,
    settings: &Settings,
    procs: &Procs,
    template: &Arc<ConfigMapTemplate>,
) -> Result<WatchOutcome> {
    let namespace = "bench-watch";
    create_namespace(api, setup, namespace).await?;
    let revision = list_revision(api, setup, namespace).await?;
    let uri = api.uri(&format!(
        "/api/v1/namespaces/{namespace}/configmaps?watch=true&resourceVersion={revision}"
    ))?;

    let opening = Instant::now();
    let connections = match api.proto {
        Proto::H1 => settings.watchers,
        Proto::H2 => settings.watchers.div_ceil(settings.watchers_per_connection),
    };
    let shared = api.connect_many(connections).await?;
    let established = Arc::new(AtomicUsize::new(0));
    let received = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::with_capacity(settings.watchers);
    let mut own = shared.into_iter();
    let mut current: Option<Sender> = None;
    for i in 0..settings.watchers {
        let mut sender = match api.proto {
            Proto::H1 => own.next().context("one connection per watcher")?,
            Proto::H2 => {
                if i % settings.watchers_per_connection == 0 {
                    current = own.next();
                }
                current
                    .as_ref()
                    .and_then(Sender::share)
                    .context("a shared connection")?
            }
        };
        let request = api.request(Method::GET, &uri, Bytes::new());
        let (established, received, events) = (established.clone(), received.clone(), settings.events);
        tasks.push(tokio::spawn(async move {
            let response = sender.send(request).await?;
            if response.status() != StatusCode::OK {
                bail!("watch answered HTTP {}", response.status());
            }
            established.fetch_add(1, Ordering::Relaxed);
            let mut body = response.into_body();
            let mut counter = LineCounter::default();
            while counter.added < events {
                match body.frame().await {
                    Some(Ok(frame)) => {
                        if let Some(data) = frame.data_ref() {
                            let before = counter.added;
                            counter.feed(data);
                            received.fetch_add((counter.added - before) as u64, Ordering::Relaxed);
                        }
                    }
                    Some(Err(error)) => bail!("watch stream failed after {} events: {error}", counter.added),
                    None => bail!("watch stream ended after {} events", counter.added),
                }
            }
            Ok((Instant::now(), counter.other))
        }));
    }
    while established.load(Ordering::Relaxed) < settings.watchers {
        if opening.elapsed() > WATCH_TIMEOUT {
            bail!(
                "only {} of {} watches were established within {WATCH_TIMEOUT:?}",
                established.load(Ordering::Relaxed),
                settings.watchers
            );
        }
        if let Some(failed) = tasks.iter().position(|t| t.is_finished()) {
            let result = tasks.swap_remove(failed).await?;
            bail!("a watch ended before the creates: {:?}", result.err());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let established_in = opening.elapsed();

    let creators = api
        .worker_senders(settings.concurrency, settings.h2_connections)
        .await?;
    let names: Vec<String> = (0..settings.events).map(|i| format!("event-{i:05}")).collect();
    let before = procs.sample();
    let first_create = Instant::now();
    create_configmaps(api, creators, namespace, names, template).await?;
    let created_in = first_create.elapsed();

    let deadline = tokio::time::Instant::from_std(first_create + WATCH_TIMEOUT);
    let mut done = Vec::new();
    let mut other_lines = 0;
    let mut first_error = None;
    for task in tasks {
        let abort = task.abort_handle();
        match tokio::time::timeout_at(deadline, task).await {
            Ok(Ok(Ok((at, other)))) => {
                done.push(at.duration_since(first_create));
                other_lines += other;
            }
            Ok(Ok(Err(error))) => {
                first_error.get_or_insert_with(|| format!("{error:#}"));
            }
            Ok(Err(error)) => {
                first_error.get_or_insert_with(|| format!("watcher panicked: {error}"));
            }
            Err(_) => {
                abort.abort();
                first_error.get_or_insert_with(|| format!("watchers still incomplete after {WATCH_TIMEOUT:?}"));
            }
        }
    }
    let after = procs.sample();
    done.sort_unstable();
    let complete = done.len() == settings.watchers;
    Ok(WatchOutcome {
        watchers: settings.watchers,
        events: settings.events,
        established_in,
        created_in,
        complete_watchers: done.len(),
        received: received.load(Ordering::Relaxed),
        other_lines,
        delivery: if complete { done.last().copied() } else { None },
        median_watcher: if complete {
            done.get(done.len() / 2).copied()
        } else {
            None
        },
        first_error,
        cpu: CpuUsage::between(&before, &after),
    })
}

// ---------------------------------------------------------------------------------------------
// The run

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "n/a".into())
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

struct Results {
    raw: Outcome,
    raw_txn: Outcome,
    create: Outcome,
    get: Outcome,
    list: Outcome,
    list_bytes_per_response: f64,
    watch: WatchOutcome,
}

async fn run(settings: &Settings, etcd: &EtcdServer, apiserver: &ApiServer, procs: &Procs) -> Result<Results> {
    let template = Arc::new(ConfigMapTemplate::new(settings.object_bytes));
    eprintln!(
        "object body: {} bytes (ConfigMap JSON as posted / etcd value)",
        template.body("w12-1234567").len()
    );

    // 1. Raw etcd puts, one client (one gRPC connection) like the apiserver's storage.
    eprintln!("phase 1: raw etcd puts");
    let etcd_client = etcd_client::Client::connect([etcd.endpoint.as_str()], None).await?;
    let raw_workers = |prefix: &'static str, create_txn: bool| -> Vec<EtcdWrite> {
        (0..settings.concurrency)
            .map(|worker| EtcdWrite {
                kv: etcd_client.kv_client(),
                worker,
                template: template.clone(),
                prefix,
                create_txn,
            })
            .collect()
    };
    let raw = closed_loop(raw_workers("/bench/raw/", false), settings, procs).await;
    raw.report("etcd put");
    let raw_txn = closed_loop(raw_workers("/bench/txn/", true), settings, procs).await;
    raw_txn.report("etcd create txn");

    let credentials = read_kubeconfig(&apiserver.kubeconfig())?;
    let addr = SocketAddr::from(([127, 0, 0, 1], apiserver.port));
    let api = Arc::new(Api {
        addr,
        authority: addr.to_string(),
        proto: settings.proto,
        tls: tls_connector(&credentials, settings.proto)?,
    });
    let mut setup = api.connect().await?;

    // 2. Creates.
    eprintln!("phase 2: apiserver creates");
    create_namespace(&api, &mut setup, "bench-create").await?;
    let create_uri = api.uri("/api/v1/namespaces/bench-create/configmaps")?;
    let senders = api
        .worker_senders(settings.concurrency, settings.h2_connections)
        .await?;
    let workers = senders
        .into_iter()
        .enumerate()
        .map(|(worker, sender)| HttpCall {
            api: api.clone(),
            sender,
            method: Method::POST,
            uri: create_uri.clone(),
            expected: StatusCode::CREATED,
            create: Some(template.clone()),
            worker,
        })
        .collect();
    let create = closed_loop(workers, settings, procs).await;
    create.report("create");

    // 3. GET and LIST from the watch cache (resourceVersion unset: consistent reads).
    eprintln!("phase 3: GET and LIST");
    create_namespace(&api, &mut setup, "bench-list").await?;
    let names: Vec<String> = (0..settings.list_objects).map(|i| format!("cm-{i:04}")).collect();
    let senders = api
        .worker_senders(settings.concurrency, settings.h2_connections)
        .await?;
    create_configmaps(&api, senders, "bench-list", names, &template).await?;
    let read_phase = |path: String| {
        let api = api.clone();
        async move {
            let uri = api.uri(&path)?;
            let senders = api
                .worker_senders(settings.concurrency, settings.h2_connections)
                .await?;
            let workers = senders
                .into_iter()
                .enumerate()
                .map(|(worker, sender)| HttpCall {
                    api: api.clone(),
                    sender,
                    method: Method::GET,
                    uri: uri.clone(),
                    expected: StatusCode::OK,
                    create: None,
                    worker,
                })
                .collect();
            Ok::<Outcome, anyhow::Error>(closed_loop(workers, settings, procs).await)
        }
    };
    let get = read_phase("/api/v1/namespaces/bench-list/configmaps/cm-0000".into()).await?;
    get.report("GET");
    let list = read_phase("/api/v1/namespaces/bench-list/configmaps".into()).await?;
    list.report("LIST");
    let list_bytes_per_response = list.bytes as f64 / (list.ops.max(1)) as f64;

    // 4. Watch fan-out.
    eprintln!("phase 4: watch fan-out");
    let watch = watch_fanout(&api, &mut setup, settings, procs, &template).await?;
    watch.report();

    Ok(Results {
        raw,
        raw_txn,
        create,
        get,
        list,
        list_bytes_per_response,
        watch,
    })
}

fn print_table(settings: &Settings, results: &Results) {
    let Results {
        raw,
        raw_txn,
        create,
        get,
        list,
        list_bytes_per_response,
        watch,
    } = results;
    let ratio = create.rate() / raw.rate();
    let c = settings.concurrency;
    println!();
    println!("| metric | kaji apiserver | raw etcd | ratio / target |");
    println!("|---|---|---|---|");
    println!(
        "| writes/s ({c} workers, ~{} B objects) | {:.0} creates/s | {:.0} puts/s | {:.1} % (target ≥ {:.0} %: {}) |",
        settings.object_bytes,
        create.rate(),
        raw.rate(),
        ratio * 100.0,
        WRITE_RATIO_TARGET * 100.0,
        verdict(ratio >= WRITE_RATIO_TARGET)
    );
    println!(
        "| write latency p50 / p99 | {} | {} | |",
        create.latency(),
        raw.latency()
    );
    println!(
        "| diagnostic: creates/s vs raw etcd create txns/s (the apiserver's write) | {:.0} creates/s | {:.0} txns/s \
         (p50 / p99 {}) | {:.1} % (no target) |",
        create.rate(),
        raw_txn.rate(),
        raw_txn.latency(),
        create.rate() / raw_txn.rate() * 100.0
    );
    println!(
        "| GET/s (1 object, RV unset, {c} workers) | {:.0} | – | {:.0} % of {:.0} ({}) |",
        get.rate(),
        get.rate() / READ_TARGET * 100.0,
        READ_TARGET,
        verdict(get.rate() >= READ_TARGET)
    );
    println!("| GET latency p50 / p99 | {} | – | |", get.latency());
    println!(
        "| LIST/s ({} objects, no limit, {c} workers) | {:.0} ({:.0} KB/response, {:.0} MB/s) | – | {:.1} % of {:.0} ({}) |",
        settings.list_objects,
        list.rate(),
        list_bytes_per_response / 1000.0,
        list.bytes as f64 / list.seconds / 1e6,
        list.rate() / READ_TARGET * 100.0,
        READ_TARGET,
        verdict(list.rate() >= READ_TARGET)
    );
    println!("| LIST latency p50 / p99 | {} | – | |", list.latency());
    let all = watch.received == watch.expected() && watch.complete_watchers == watch.watchers;
    println!(
        "| watch: ADDED events received ({} streams × {} creates) | {} / {} | – | {} |",
        watch.watchers,
        watch.events,
        watch.received,
        watch.expected(),
        if all { "all delivered" } else { "MISSING EVENTS" }
    );
    let seconds = |d: Option<Duration>| d.map_or_else(|| "n/a".to_string(), |d| format!("{:.3} s", d.as_secs_f64()));
    println!(
        "| watch delivery (first create → last event at last watcher) | {} (median watcher {}) | – | |",
        seconds(watch.delivery),
        seconds(watch.median_watcher)
    );
    println!(
        "| watch events delivered/s | {} | – | |",
        watch
            .delivered_per_second()
            .map_or_else(|| "n/a".to_string(), |r| format!("{r:.0}"))
    );
    println!(
        "| errors (all phases) | {} | {} | |",
        create.errors + get.errors + list.errors,
        raw.errors + raw_txn.errors
    );

    println!();
    println!(
        "CPU during each measured window, in cores (of {}), and CPU time per operation (per event for the watch):",
        available_cores()
    );
    println!();
    println!(
        "| phase | bench client | apiserver | etcd | other processes | machine busy | client / apiserver / etcd µs per op |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (name, cpu, rate) in [
        ("raw etcd puts", &raw.cpu, raw.rate()),
        ("raw etcd create txns", &raw_txn.cpu, raw_txn.rate()),
        ("creates", &create.cpu, create.rate()),
        ("GET", &get.cpu, get.rate()),
        ("LIST", &list.cpu, list.rate()),
        (
            "watch delivery",
            &watch.cpu,
            watch.delivered_per_second().unwrap_or(f64::NAN),
        ),
    ] {
        let per_op = |cores: Option<f64>| match cores {
            Some(cores) if rate > 0.0 => format!("{:.0}", cores * 1e6 / rate),
            _ => "n/a".to_string(),
        };
        println!(
            "| {name} | {} | {} | {} | {:.2} | {:.2} | {} / {} / {} |",
            cores(cpu.client),
            cores(cpu.apiserver),
            cores(cpu.etcd),
            cpu.other(),
            cpu.machine,
            per_op(cpu.client),
            per_op(cpu.apiserver),
            per_op(cpu.etcd),
        );
    }
}

fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(0, usize::from)
}

fn main() -> Result<()> {
    let settings = Settings::from_env()?;
    let load_before = loadavg();
    let began = Instant::now();
    eprintln!("settings: {}", settings.describe());

    let etcd = EtcdServer::start()?;
    let apiserver = ApiServer::start(Path::new(env!("CARGO_BIN_EXE_kube-apiserver")), &etcd.endpoint, &[])?;
    let etcd_port = etcd
        .endpoint
        .rsplit(':')
        .next()
        .and_then(|p| p.parse::<u16>().ok())
        .context("etcd endpoint port")?;
    let procs = Procs {
        apiserver: pid_listening_on(apiserver.port),
        etcd: pid_listening_on(etcd_port),
    };
    eprintln!(
        "etcd {} (pid {}), apiserver {} (pid {})",
        etcd.endpoint,
        procs.etcd.map_or_else(|| "?".into(), |p| p.to_string()),
        apiserver.url(),
        procs.apiserver.map_or_else(|| "?".into(), |p| p.to_string())
    );

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let results = runtime.block_on(run(&settings, &etcd, &apiserver, &procs));
    let results = match results {
        Ok(results) => results,
        Err(error) => {
            eprintln!("apiserver log tail:\n{}", apiserver.log_tail());
            return Err(error);
        }
    };
    let load_after = loadavg();

    println!();
    println!("## apiserver throughput");
    println!();
    println!("command: `{}`", command_line());
    println!("settings: {}", settings.describe());
    println!(
        "machine: {} cores; load average before: {load_before}; after: {load_after}",
        available_cores()
    );
    println!("total run time: {:.0} s", began.elapsed().as_secs_f64());
    print_table(&settings, &results);
    drop(runtime);
    Ok(())
}
