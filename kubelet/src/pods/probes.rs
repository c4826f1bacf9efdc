//! Liveness, readiness and startup probes (upstream's prober): `httpGet`, `tcpSocket` and
//! `grpc` (the standard `grpc.health.v1.Health/Check`, through tonic) run from inside the
//! pod's network namespace (a fresh thread joins it, so the kubelet's own
//! threads never change namespace), `exec` runs in the container through the runtime.
//! Thresholds, periods, initial delays and timeouts as upstream defaults them. Lifecycle hooks
//! (postStart, preStop) run through the same handlers.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// Which probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Startup,
    Liveness,
    Readiness,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Startup => "Startup",
            Kind::Liveness => "Liveness",
            Kind::Readiness => "Readiness",
        }
    }
}

/// One probe's running state for one container attempt.
#[derive(Debug, Clone)]
struct State {
    attempt: u32,
    next: Instant,
    successes: i32,
    failures: i32,
    /// The current verdict (after thresholds).
    ok: Option<bool>,
}

/// What happened in one round of probing.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Containers to kill (failed liveness or startup), with the reason.
    pub kill: Vec<(String, String)>,
    /// Failed probe runs to report as `Unhealthy` events: (container, message).
    pub unhealthy: Vec<(String, String)>,
}

/// Probe state of one pod.
#[derive(Debug, Default)]
pub struct Prober {
    states: BTreeMap<(String, Kind), State>,
}

/// How a probe is run: where the pod's network is, and how to exec in a container.
pub trait ProbeTarget: Send + Sync {
    /// `/proc/<pid>/ns/net` of the pod, or None for host-network pods.
    fn netns(&self) -> Option<std::path::PathBuf>;
    /// Runs `args` in the container; Ok(exit code, output) or Err(message).
    fn exec(&self, container_id: &str, args: &[String], timeout: Duration) -> Result<(i32, String), String>;
}

fn probe_of(container: &Container, kind: Kind) -> Option<&Probe> {
    match kind {
        Kind::Startup => container.startup_probe.as_ref(),
        Kind::Liveness => container.liveness_probe.as_ref(),
        Kind::Readiness => container.readiness_probe.as_ref(),
    }
}

fn seconds(value: Option<i32>, default: i32) -> Duration {
    Duration::from_secs(value.unwrap_or(default).max(0) as u64)
}

impl Prober {
    /// Runs the probes that are due for the running containers `(container, attempt, id,
    /// started_at)`; updates `ready` and `started` (by container name).
    pub async fn run(
        &mut self,
        containers: &[(&Container, u32, String, Instant)],
        target: std::sync::Arc<dyn ProbeTarget>,
        ready: &mut BTreeMap<String, bool>,
        started: &mut BTreeMap<String, bool>,
    ) -> Outcome {
        let now = Instant::now();
        let mut outcome = Outcome::default();
        let running: Vec<&str> = containers.iter().map(|(c, ..)| c.name.as_str()).collect();
        self.states.retain(|(name, _), _| running.contains(&name.as_str()));
        for (container, attempt, id, started_at) in containers {
            let name = container.name.clone();
            let has_startup = container.startup_probe.is_some();
            let startup_done = !has_startup || started.get(&name).copied().unwrap_or(false);
            for kind in [Kind::Startup, Kind::Liveness, Kind::Readiness] {
                let Some(probe) = probe_of(container, kind) else {
                    continue;
                };
                if kind != Kind::Startup && !startup_done {
                    continue;
                }
                if kind == Kind::Startup && startup_done {
                    continue;
                }
                let key = (name.clone(), kind);
                let state = self.states.entry(key.clone()).or_insert_with(|| State {
                    attempt: *attempt,
                    next: *started_at + seconds(probe.initial_delay_seconds, 0),
                    successes: 0,
                    failures: 0,
                    ok: None,
                });
                if state.attempt != *attempt {
                    *state = State {
                        attempt: *attempt,
                        next: *started_at + seconds(probe.initial_delay_seconds, 0),
                        successes: 0,
                        failures: 0,
                        ok: None,
                    };
                }
                if state.next > now {
                    continue;
                }
                let timeout = seconds(probe.timeout_seconds, 1).max(Duration::from_secs(1));
                let result = run_probe(
                    &with_port_numbers(probe.clone(), container),
                    id,
                    timeout,
                    target.clone(),
                )
                .await;
                let state = self.states.get_mut(&key).expect("inserted above");
                state.next = now + seconds(probe.period_seconds, 10).max(Duration::from_secs(1));
                match result {
                    Ok(()) => {
                        state.failures = 0;
                        state.successes += 1;
                        if state.successes >= probe.success_threshold.unwrap_or(1).max(1) {
                            state.ok = Some(true);
                        }
                    }
                    Err(message) => {
                        state.successes = 0;
                        state.failures += 1;
                        outcome
                            .unhealthy
                            .push((name.clone(), format!("{} probe failed: {message}", kind.name())));
                        if state.failures >= probe.failure_threshold.unwrap_or(3).max(1) {
                            state.ok = Some(false);
                        }
                    }
                }
                match (kind, state.ok) {
                    (Kind::Readiness, Some(ok)) => {
                        ready.insert(name.clone(), ok);
                    }
                    (Kind::Startup, Some(true)) => {
                        started.insert(name.clone(), true);
                    }
                    (Kind::Startup | Kind::Liveness, Some(false)) => {
                        outcome.kill.push((
                            name.clone(),
                            format!(
                                "Container {name} failed {} probe, will be restarted",
                                kind.name().to_lowercase()
                            ),
                        ));
                        self.states.remove(&key);
                    }
                    _ => {}
                }
            }
        }
        outcome
    }

    /// The next time a probe is due, if any.
    pub fn next_due(&self) -> Option<Instant> {
        self.states.values().map(|s| s.next).min()
    }

    /// Forgets a container (it exited or restarts).
    pub fn forget(&mut self, name: &str, ready: &mut BTreeMap<String, bool>, started: &mut BTreeMap<String, bool>) {
        self.states.retain(|(n, _), _| n != name);
        ready.remove(name);
        started.remove(name);
    }
}

pub(crate) async fn run_probe(
    probe: &Probe,
    container_id: &str,
    timeout: Duration,
    target: std::sync::Arc<dyn ProbeTarget>,
) -> Result<(), String> {
    let netns = target.netns();
    if let Some(http) = &probe.http_get {
        let port = port_number(&http.port)?;
        let host = http
            .host
            .clone()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "127.0.0.1".to_string());
        let path = http
            .path
            .clone()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "/".to_string());
        let headers: Vec<(String, String)> = http
            .http_headers
            .iter()
            .flatten()
            .map(|h| (h.name.clone(), h.value.clone()))
            .collect();
        if http.scheme.as_deref() == Some("HTTPS") {
            // A TCP connect is what we can check without a TLS client here.
            return in_netns(netns, move || tcp_check(&host, port, timeout)).await;
        }
        return in_netns(netns, move || http_check(&host, port, &path, &headers, timeout)).await;
    }
    if let Some(tcp) = &probe.tcp_socket {
        let port = port_number(&tcp.port)?;
        let host = tcp
            .host
            .clone()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "127.0.0.1".to_string());
        return in_netns(netns, move || tcp_check(&host, port, timeout)).await;
    }
    if let Some(exec) = &probe.exec {
        let args = exec.command.clone().unwrap_or_default();
        let id = container_id.to_string();
        return tokio::task::spawn_blocking(move || match target.exec(&id, &args, timeout) {
            Ok((0, _)) => Ok(()),
            Ok((code, output)) => Err(format!("command {args:?} exited with {code}: {}", output.trim())),
            Err(message) => Err(message),
        })
        .await
        .map_err(|e| e.to_string())?;
    }
    if let Some(grpc) = &probe.grpc {
        let port = u16::try_from(grpc.port).map_err(|_| format!("invalid port {}", grpc.port))?;
        let service = grpc.service.clone().unwrap_or_default();
        let tls = match grpc.mode.as_deref() {
            None | Some("Plaintext") => false,
            Some("TLS") => true,
            Some(other) => return Err(format!("unsupported gRPC probe mode {other:?}")),
        };
        return in_netns(netns, move || grpc_check("127.0.0.1", port, service, tls, timeout)).await;
    }
    Err("the probe has no handler".to_string())
}

/// Runs a lifecycle hook (postStart / preStop) handler, bounded by `timeout`.
pub async fn run_hook(
    handler: &k8s_openapi::api::core::v1::LifecycleHandler,
    container: &Container,
    container_id: &str,
    timeout: Duration,
    target: std::sync::Arc<dyn ProbeTarget>,
) -> Result<(), String> {
    if let Some(sleep) = &handler.sleep {
        tokio::time::sleep(Duration::from_secs(sleep.seconds.max(0) as u64).min(timeout)).await;
        return Ok(());
    }
    let as_probe = with_port_numbers(
        Probe {
            exec: handler.exec.clone(),
            http_get: handler.http_get.clone(),
            tcp_socket: handler.tcp_socket.clone(),
            ..Default::default()
        },
        container,
    );
    match tokio::time::timeout(timeout, run_probe(&as_probe, container_id, timeout, target)).await {
        Ok(result) => result,
        Err(_) => Err(format!("the hook did not finish within {}s", timeout.as_secs())),
    }
}

/// `probe` with its named ports (`port: http`) replaced by the container's port of that name,
/// as upstream's prober resolves them; a name the container doesn't declare stays, and fails
/// the probe.
fn with_port_numbers(mut probe: Probe, container: &Container) -> Probe {
    let resolve = |port: &mut IntOrString| {
        if let IntOrString::String(name) = port
            && let Some(declared) = container
                .ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(name.as_str()))
        {
            *port = IntOrString::Int(declared.container_port);
        }
    };
    if let Some(http) = probe.http_get.as_mut() {
        resolve(&mut http.port);
    }
    if let Some(tcp) = probe.tcp_socket.as_mut() {
        resolve(&mut tcp.port);
    }
    probe
}

fn port_number(port: &IntOrString) -> Result<u16, String> {
    match port {
        IntOrString::Int(p) => u16::try_from(*p).map_err(|_| format!("invalid port {p}")),
        // Upstream's last resort: a number written as a string.
        IntOrString::String(s) => s.parse().map_err(|_| format!("port {s} not found")),
    }
}

/// Runs `f` on a fresh thread inside the network namespace `netns` (or the kubelet's own).
async fn in_netns(
    netns: Option<std::path::PathBuf>,
    f: impl FnOnce() -> Result<(), String> + Send + 'static,
) -> Result<(), String> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let result = (|| {
            if let Some(path) = netns {
                let file = std::fs::File::open(&path).map_err(|e| format!("opening {}: {e}", path.display()))?;
                nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(|e| format!("joining the pod network: {e}"))?;
            }
            f()
        })();
        let _ = tx.send(result);
    });
    rx.await.map_err(|_| "the probe thread died".to_string())?
}

/// One `grpc.health.v1.Health/Check` call over HTTP/2, plaintext or (`mode: TLS`) TLS without
/// certificate verification, as upstream's gRPC prober makes it (same failure messages). Runs
/// on the calling thread (which may have joined the pod's network namespace: the socket is
/// created here), with a runtime of its own.
fn grpc_check(host: &str, port: u16, service: String, tls: bool, timeout: Duration) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("grpc probe: {e}"))?;
    runtime.block_on(grpc_health(host, port, service, tls, timeout))
}

/// Dials `host:port` and completes a TLS handshake offering `h2`, accepting any certificate.
async fn tls_dial(
    host: String,
    port: u16,
) -> std::io::Result<hyper_util::rt::TokioIo<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>> {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(std::io::Error::other)?
        .dangerous()
        .with_custom_certificate_verifier(std::sync::Arc::new(component_base::tls::AnyServerCertificate::new(
            provider,
        )))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let name = rustls_pki_types::ServerName::try_from(host.clone()).map_err(std::io::Error::other)?;
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
    let stream = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(name, tcp)
        .await?;
    Ok(hyper_util::rt::TokioIo::new(stream))
}

async fn grpc_health(host: &str, port: u16, service: String, tls: bool, timeout: Duration) -> Result<(), String> {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;

    let addr = format!("{host}:{port}");
    let deadline = tokio::time::Instant::now() + timeout;
    let timeout_text = format!("{}s", timeout.as_secs_f64());
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| format!("error: failed to connect service at {addr:?}: {e}"))?
        .user_agent("kube-probe/1.37")
        .map_err(|e| format!("error: failed to connect service at {addr:?}: {e}"))?;
    let connect = async {
        if tls {
            let host = host.to_owned();
            let dial = tower::service_fn(move |_: tonic::transport::Uri| tls_dial(host.clone(), port));
            endpoint.connect_with_connector(dial).await
        } else {
            endpoint.connect().await
        }
    };
    let channel = match tokio::time::timeout_at(deadline, connect).await {
        Err(_) => {
            return Err(format!(
                "timeout: failed to connect service {addr:?} within {timeout_text}: context deadline exceeded"
            ));
        }
        Ok(Err(e)) => {
            return Err(format!(
                "error: failed to connect service at {addr:?}: {}",
                error_chain(&e)
            ));
        }
        Ok(Ok(channel)) => channel,
    };
    let mut client = HealthClient::new(channel);
    let response = match tokio::time::timeout_at(deadline, client.check(HealthCheckRequest { service })).await {
        Err(_) => return Err(format!("timeout: health rpc did not complete within {timeout_text}")),
        Ok(Err(status)) => {
            return Err(match status.code() {
                tonic::Code::Unimplemented => format!(
                    "error: this server does not implement the grpc health protocol (grpc.health.v1.Health): {}",
                    status.message()
                ),
                tonic::Code::DeadlineExceeded => format!("timeout: health rpc did not complete within {timeout_text}"),
                code => format!(
                    "error: health rpc probe failed: rpc error: code = {code:?} desc = {}",
                    status.message()
                ),
            });
        }
        Ok(Ok(response)) => response.into_inner(),
    };
    match response.status() {
        ServingStatus::Serving => Ok(()),
        other => Err(format!("service unhealthy (responded with {:?})", other.as_str_name())),
    }
}

/// An error and its sources, `: `-joined (tonic's transport errors hide the cause otherwise).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn connect(host: &str, port: u16, timeout: Duration) -> Result<TcpStream, String> {
    let ip: std::net::IpAddr = host
        .parse()
        .map_err(|_| format!("host {host:?} is not an IP address"))?;
    let stream = TcpStream::connect_timeout(&SocketAddr::new(ip, port), timeout)
        .map_err(|e| format!("dial tcp {host}:{port}: connect: {e}"))?;
    let _ = stream.set_read_timeout(Some(timeout));
    let _ = stream.set_write_timeout(Some(timeout));
    Ok(stream)
}

fn tcp_check(host: &str, port: u16, timeout: Duration) -> Result<(), String> {
    connect(host, port, timeout).map(|_| ())
}

fn http_check(
    host: &str,
    port: u16,
    path: &str,
    headers: &[(String, String)],
    timeout: Duration,
) -> Result<(), String> {
    let mut stream = connect(host, port, timeout)?;
    let mut request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: kube-probe/1.37\r\nAccept: */*\r\nConnection: close\r\n"
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("Get \"http://{host}:{port}{path}\": {e}"))?;
    let mut head = [0u8; 64];
    let n = stream
        .read(&mut head)
        .map_err(|e| format!("Get \"http://{host}:{port}{path}\": {e}"))?;
    let line = String::from_utf8_lossy(&head[..n]);
    let code: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("Get \"http://{host}:{port}{path}\": malformed HTTP response"))?;
    if (200..400).contains(&code) {
        Ok(())
    } else {
        Err(format!("HTTP probe failed with statuscode: {code}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{HTTPGetAction, TCPSocketAction};

    struct Host;
    impl ProbeTarget for Host {
        fn netns(&self) -> Option<std::path::PathBuf> {
            None
        }
        fn exec(&self, _: &str, _: &[String], _: Duration) -> Result<(i32, String), String> {
            Err("no exec here".into())
        }
    }

    fn serve(status: u16) -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut stream = stream;
                let mut buf = [0u8; 1024];
                let _ = stream.read(&mut buf);
                let _ = stream.write_all(format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n").as_bytes());
            }
        });
        port
    }

    /// A prober with its readiness and started maps, probing on the host.
    #[derive(Default)]
    struct Probing {
        prober: Prober,
        ready: BTreeMap<String, bool>,
        started: BTreeMap<String, bool>,
    }

    impl Probing {
        /// One round of `c`'s due probes.
        async fn once(&mut self, c: &Container) -> Outcome {
            let target: std::sync::Arc<dyn ProbeTarget> = std::sync::Arc::new(Host);
            self.prober
                .run(
                    &[(c, 0, "id".into(), Instant::now())],
                    target,
                    &mut self.ready,
                    &mut self.started,
                )
                .await
        }
    }

    fn container(probe: Probe, kind: Kind) -> Container {
        let mut c = Container {
            name: "c".into(),
            ..Default::default()
        };
        match kind {
            Kind::Readiness => c.readiness_probe = Some(probe),
            Kind::Liveness => c.liveness_probe = Some(probe),
            Kind::Startup => c.startup_probe = Some(probe),
        }
        c
    }

    #[tokio::test]
    async fn readiness_follows_http_status() {
        let ok_port = serve(200);
        let probe = Probe {
            http_get: Some(HTTPGetAction {
                port: IntOrString::Int(i32::from(ok_port)),
                path: Some("/healthz".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let c = container(probe, Kind::Readiness);
        let mut probing = Probing::default();
        probing.once(&c).await;
        assert_eq!(probing.ready.get("c"), Some(&true));
    }

    #[tokio::test]
    async fn named_ports_are_the_containers_ports_of_that_name() {
        use k8s_openapi::api::core::v1::ContainerPort;
        let ok_port = serve(200);
        let named = |name: &str| Probe {
            tcp_socket: Some(TCPSocketAction {
                port: IntOrString::String(name.into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut c = container(named("web"), Kind::Readiness);
        c.ports = Some(vec![ContainerPort {
            name: Some("web".into()),
            container_port: i32::from(ok_port),
            ..Default::default()
        }]);
        let mut probing = Probing::default();
        probing.once(&c).await;
        assert_eq!(probing.ready.get("c"), Some(&true), "tcpSocket port: web");

        c.readiness_probe = Some(named("admin"));
        let outcome = Probing::default().once(&c).await;
        assert_eq!(outcome.unhealthy[0].1, "Readiness probe failed: port admin not found");
    }

    #[tokio::test]
    async fn liveness_failures_kill_after_the_threshold() {
        let bad_port = serve(500);
        let probe = Probe {
            http_get: Some(HTTPGetAction {
                port: IntOrString::Int(i32::from(bad_port)),
                ..Default::default()
            }),
            failure_threshold: Some(2),
            period_seconds: Some(1),
            ..Default::default()
        };
        let c = container(probe, Kind::Liveness);
        let mut probing = Probing::default();
        let first = probing.once(&c).await;
        assert!(first.kill.is_empty());
        assert_eq!(
            first.unhealthy[0].1,
            "Liveness probe failed: HTTP probe failed with statuscode: 500"
        );
        // Due again after the period.
        for state in probing.prober.states.values_mut() {
            state.next = Instant::now();
        }
        let second = probing.once(&c).await;
        assert_eq!(second.kill[0].1, "Container c failed liveness probe, will be restarted");
    }

    #[tokio::test]
    async fn tcp_probe_of_a_closed_port_fails() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let probe = Probe {
            tcp_socket: Some(TCPSocketAction {
                port: IntOrString::Int(i32::from(port)),
                host: None,
            }),
            ..Default::default()
        };
        let target: std::sync::Arc<dyn ProbeTarget> = std::sync::Arc::new(Host);
        let result = run_probe(&probe, "id", Duration::from_secs(1), target).await;
        assert!(result.unwrap_err().contains("connect"), "closed port");
    }

    fn grpc_probe(port: u16, service: Option<&str>) -> Probe {
        Probe {
            grpc: Some(k8s_openapi::api::core::v1::GRPCAction {
                mode: None,
                port: i32::from(port),
                service: service.map(str::to_owned),
            }),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn grpc_probe_follows_the_health_service() {
        use tonic_health::ServingStatus;
        let (reporter, service) = tonic_health::server::health_reporter();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        let target: std::sync::Arc<dyn ProbeTarget> = std::sync::Arc::new(Host);
        let second = Duration::from_secs(1);
        // The overall server ("") is SERVING from the start.
        run_probe(&grpc_probe(port, None), "id", second, target.clone())
            .await
            .expect("serving");
        reporter.set_service_status("backend", ServingStatus::NotServing).await;
        let result = run_probe(&grpc_probe(port, Some("backend")), "id", second, target.clone()).await;
        assert_eq!(
            result.unwrap_err(),
            r#"service unhealthy (responded with "NOT_SERVING")"#
        );
        reporter.set_service_status("backend", ServingStatus::Serving).await;
        run_probe(&grpc_probe(port, Some("backend")), "id", second, target.clone())
            .await
            .expect("serving again");
        let unknown = run_probe(&grpc_probe(port, Some("nope")), "id", second, target).await;
        assert!(
            unknown
                .unwrap_err()
                .starts_with("error: health rpc probe failed: rpc error: code = NotFound"),
            "an unknown service"
        );
        server.abort();
    }

    #[tokio::test]
    async fn grpc_probe_in_tls_mode_accepts_a_self_signed_server() {
        use rustls_pki_types::pem::PemObject;
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["grpc.test".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let mut config =
            rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(
                    vec![cert.der().clone()],
                    rustls_pki_types::PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes()).unwrap(),
                )
                .unwrap();
        config.alpn_protocols = vec![b"h2".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
        let (_reporter, service) = tonic_health::server::health_reporter();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, service) = (acceptor.clone(), service.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else { return };
                    let _ = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                        .http2_only()
                        .serve_connection(
                            hyper_util::rt::TokioIo::new(tls),
                            hyper_util::service::TowerToHyperService::new(service),
                        )
                        .await;
                });
            }
        });
        let target: std::sync::Arc<dyn ProbeTarget> = std::sync::Arc::new(Host);
        let mut probe = grpc_probe(port, None);
        probe.grpc.as_mut().unwrap().mode = Some("TLS".into());
        run_probe(&probe, "id", Duration::from_secs(2), target.clone())
            .await
            .expect("serving over TLS");
        // Plaintext against a TLS server fails.
        let result = run_probe(&grpc_probe(port, None), "id", Duration::from_secs(2), target.clone()).await;
        assert!(result.is_err(), "plaintext to a TLS server");
        probe.grpc.as_mut().unwrap().mode = Some("QUIC".into());
        let result = run_probe(&probe, "id", Duration::from_secs(2), target).await;
        assert_eq!(result.unwrap_err(), r#"unsupported gRPC probe mode "QUIC""#);
        server.abort();
    }

    #[tokio::test]
    async fn grpc_probe_of_a_server_without_grpc_fails() {
        let target: std::sync::Arc<dyn ProbeTarget> = std::sync::Arc::new(Host);
        let http = serve(200);
        let result = run_probe(&grpc_probe(http, None), "id", Duration::from_secs(1), target.clone()).await;
        assert!(result.is_err(), "an HTTP/1 server is no gRPC health service");
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let result = run_probe(&grpc_probe(closed, None), "id", Duration::from_secs(1), target).await;
        let message = result.unwrap_err();
        assert!(
            message.starts_with(&format!("error: failed to connect service at \"127.0.0.1:{closed}\"")),
            "{message}"
        );
    }
}
