//! `kubectl port-forward`: local ports to a pod's ports through one SPDY/3.1 session (the
//! `spdy` crate as client) tunnelled in a WebSocket (`SPDY/3.1+portforward.k8s.io`, wire doc
//! §13): per local connection an `error` and a `data` stream paired by `requestid`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use crate::cmd::remote::{self, Socket};
use crate::cmd::{Context, logs};
use crate::error::Error;
use crate::request;

/// Forward one or more local ports to a pod.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct PortForwardArgs {
    /// TYPE/NAME followed by [LOCAL_PORT:]REMOTE_PORT ...
    pub args: Vec<String>,
    /// Addresses to listen on (comma separated). Only accepts IP addresses or localhost as a
    /// value. When localhost is supplied, kubectl will try to bind on both 127.0.0.1 and ::1
    /// and will fail if neither of these addresses are available to bind.
    #[arg(long, value_delimiter = ',', default_value = "localhost")]
    pub address: Vec<String>,
    /// The length of time (like 5s, 2m, or 3h) to wait until at least one pod is running.
    #[arg(long, default_value = "1m0s")]
    pub pod_running_timeout: String,
}

const PROTOCOL: &str = "SPDY/3.1+portforward.k8s.io";
/// client-go's tunnelling dialer pings every 10 s.
const PING_EVERY: Duration = Duration::from_secs(10);

/// Splits `[LOCAL:]REMOTE` (upstream's `splitPort`).
fn split_port(port: &str) -> (&str, &str) {
    match port.split_once(':') {
        Some((local, remote)) if !remote.contains(':') => (local, remote),
        _ => (port, port),
    }
}

/// A container port of the pod by name.
fn container_port_by_name(pod: &Value, name: &str) -> Result<u16, Error> {
    pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| c["ports"].as_array().cloned().unwrap_or_default())
        .find(|p| p["name"] == name)
        .and_then(|p| p["containerPort"].as_u64())
        .and_then(|p| u16::try_from(p).ok())
        .ok_or_else(|| {
            Error::Message(format!(
                "Pod '{}' does not have a named port '{name}'",
                pod["metadata"]["name"].as_str().unwrap_or_default()
            ))
        })
}

/// Upstream's `convertPodNamedPortToNumber` and `translateServicePortToTargetPort`: the
/// ports as `LOCAL:REMOTE` with numeric remote ports.
fn translate(ports: &[String], pod: &Value, service: Option<&Value>) -> Result<Vec<(String, u16)>, Error> {
    let mut out = Vec::new();
    for port in ports {
        let (local, remote) = split_port(port);
        if remote.is_empty() {
            return Err(Error::Message("remote port cannot be empty".into()));
        }
        let mut local = local.to_string();
        let number = match service {
            None => {
                let number = match (remote.parse::<u16>(), remote.parse::<i64>()) {
                    (Ok(number), _) => number,
                    // Numeric but out of range: upstream fails parsing it as a port.
                    (Err(_), Ok(_)) => {
                        let side = if local == remote { "local" } else { "remote" };
                        return Err(Error::Message(format!(
                            "error parsing {side} port '{remote}': strconv.ParseUint: parsing \"{remote}\": value out of range"
                        )));
                    }
                    (Err(_), Err(_)) => container_port_by_name(pod, remote)?,
                };
                if local == remote {
                    local = number.to_string();
                }
                number
            }
            Some(service) => {
                let service_ports = service["spec"]["ports"].as_array().cloned().unwrap_or_default();
                let service_name = service["metadata"]["name"].as_str().unwrap_or_default();
                let declared = match remote.parse::<i64>() {
                    Ok(number) => service_ports
                        .iter()
                        .find(|p| p["port"].as_i64() == Some(number))
                        .ok_or_else(|| {
                            Error::Message(format!("Service {service_name} does not have a service port {number}"))
                        })?,
                    Err(_) => {
                        let found = service_ports.iter().find(|p| p["name"] == remote).ok_or_else(|| {
                            Error::Message(format!(
                                "Service '{service_name}' does not have a named port '{remote}'"
                            ))
                        })?;
                        if local == remote {
                            local = found["port"].to_string();
                        }
                        found
                    }
                };
                match &declared["targetPort"] {
                    Value::String(name) => container_port_by_name(pod, name)?,
                    Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()).unwrap_or_default(),
                    _ => declared["port"]
                        .as_u64()
                        .and_then(|n| u16::try_from(n).ok())
                        .unwrap_or_default(),
                }
            }
        };
        out.push((local, number));
    }
    Ok(out)
}

/// Runs `kubectl port-forward`.
pub async fn run(ctx: &mut Context, args: &PortForwardArgs) -> Result<(), Error> {
    let [target, ports @ ..] = args.args.as_slice() else {
        return Err(usage());
    };
    if ports.is_empty() {
        return Err(usage());
    }
    let namespace = ctx.namespace().await?;
    let client = ctx.client().await?;
    let pod = logs::resolve_pod(ctx, target, &namespace).await?;
    let service = match target.split_once('/') {
        Some((word, name)) if ctx.discovery().await?.resolve(word)?.kind == "Service" => Some(
            request::get(
                &client,
                &format!("/api/v1/namespaces/{namespace}/services/{name}"),
                "application/json",
            )
            .await?,
        ),
        _ => None,
    };
    let mut forwards = Vec::new();
    for (local, remote) in translate(ports, &pod, service.as_ref())? {
        let local = if local.is_empty() {
            0
        } else {
            local.parse::<u16>().map_err(|e| {
                let why = match e.kind() {
                    std::num::IntErrorKind::PosOverflow => "value out of range",
                    _ => "invalid syntax",
                };
                Error::Message(format!(
                    "error parsing local port '{local}': strconv.ParseUint: parsing \"{local}\": {why}"
                ))
            })?
        };
        forwards.push((local, remote));
    }
    let name = pod["metadata"]["name"].as_str().unwrap_or_default().to_string();
    let pod_namespace = pod["metadata"]["namespace"].as_str().unwrap_or(&namespace).to_string();
    let pod = request::get(
        &client,
        &format!("/api/v1/namespaces/{pod_namespace}/pods/{name}"),
        "application/json",
    )
    .await?;
    let phase = pod["status"]["phase"].as_str().unwrap_or_default();
    if phase != "Running" {
        return Err(Error::Message(format!(
            "unable to forward port because pod is not running. Current status={phase}"
        )));
    }
    let url = format!("/api/v1/namespaces/{pod_namespace}/pods/{name}/portforward");
    let socket = remote::upgrade(&client, &url, PROTOCOL).await?;
    let session = Arc::new(spdy::Session::new(tunnel(socket), spdy::Role::Client).map_err(spdy_error)?);

    // Listeners: `localhost` is 127.0.0.1 and ::1 (one of them may fail), a random local port
    // is chosen once and reused for the other addresses.
    let (failures, mut failed) = mpsc::channel::<String>(1);
    let request_ids = Arc::new(AtomicU32::new(0));
    for (local, remote) in forwards {
        let mut port = local;
        let mut bound = 0;
        for address in &args.address {
            let ips: Vec<IpAddr> = match address.as_str() {
                "localhost" => vec![IpAddr::V4(Ipv4Addr::LOCALHOST), IpAddr::V6(Ipv6Addr::LOCALHOST)],
                other => vec![
                    other
                        .parse::<IpAddr>()
                        .map_err(|_| Error::Message(format!("{other} is not a valid IP")))?,
                ],
            };
            for ip in ips {
                let Ok(listener) = TcpListener::bind(SocketAddr::new(ip, port)).await else {
                    continue;
                };
                let actual = listener.local_addr()?.port();
                port = actual;
                bound += 1;
                let shown = match ip {
                    IpAddr::V4(ip) => ip.to_string(),
                    IpAddr::V6(ip) => format!("[{ip}]"),
                };
                ctx.out(&format!("Forwarding from {shown}:{actual} -> {remote}\n"));
                tokio::spawn(accept_loop(
                    listener,
                    actual,
                    remote,
                    session.clone(),
                    request_ids.clone(),
                    failures.clone(),
                ));
            }
        }
        if bound == 0 {
            return Err(Error::Message(format!(
                "unable to listen on any of the requested ports: [{{{local} {remote}}}]"
            )));
        }
    }

    let pinger = session.clone();
    tokio::spawn(async move {
        let mut id = 1u32;
        loop {
            tokio::time::sleep(PING_EVERY).await;
            if pinger.ping(id).await.is_err() {
                return;
            }
            id = id.wrapping_add(2);
        }
    });
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    tokio::select! {
        _ = interrupt.recv() => {
            let _ = session.go_away().await;
            Ok(())
        }
        message = failed.recv() => {
            ctx.err(&format!("{}\n", message.unwrap_or_default()));
            Err(Error::Message("lost connection to pod".into()))
        }
        _ = session.closed() => Err(Error::Message("lost connection to pod".into())),
    }
}

fn usage() -> Error {
    Error::Usage(
        "TYPE/NAME and list of ports are required for port-forward\nSee 'kubectl port-forward -h' for help and examples"
            .into(),
    )
}

fn spdy_error(error: spdy::Error) -> Error {
    Error::Message(error.to_string())
}

async fn accept_loop(
    listener: TcpListener,
    local: u16,
    remote: u16,
    session: Arc<spdy::Session>,
    request_ids: Arc<AtomicU32>,
    failures: mpsc::Sender<String>,
) {
    while let Ok((conn, _)) = listener.accept().await {
        let mut out = tokio::io::stdout();
        let _ = out
            .write_all(format!("Handling connection for {local}\n").as_bytes())
            .await;
        let _ = out.flush().await;
        let id = request_ids.fetch_add(1, Ordering::SeqCst);
        let session = session.clone();
        let failures = failures.clone();
        tokio::spawn(async move {
            let failed = |message: String| async move {
                let _ = failures
                    .send(format!(
                        "error: an error occurred forwarding {local} -> {remote}: {message}"
                    ))
                    .await;
            };
            if let Err(message) = forward(conn, remote, id, &session, failed).await {
                // Opening the streams failed: the session is gone.
                let _ = message;
            }
        });
    }
}

/// One local connection: the `error` stream (half-closed at once) and the `data` stream. A
/// message on the error stream goes to `failed` as soon as the stream ends; the connection
/// ends when the pod's side does.
async fn forward<F, Fut>(
    mut conn: TcpStream,
    remote: u16,
    id: u32,
    session: &spdy::Session,
    failed: F,
) -> Result<(), String>
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let headers = |kind: &str| -> spdy::Headers {
        vec![
            ("streamtype".to_string(), kind.to_string()),
            ("port".to_string(), remote.to_string()),
            ("requestid".to_string(), id.to_string()),
        ]
    };
    let error_stream = session.open(headers("error"), true).await.map_err(|e| e.to_string())?;
    let data = session.open(headers("data"), false).await.map_err(|e| e.to_string())?;
    let (mut error_reader, _error_writer) = error_stream.split();
    let (mut data_reader, data_writer) = data.split();
    let (mut conn_read, mut conn_write) = conn.split();
    let upload = async {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match conn_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if data_writer
                        .send(bytes::Bytes::copy_from_slice(&buf[..n]))
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }
        let _ = data_writer.finish().await;
    };
    let download = async {
        while let Some(chunk) = data_reader.recv().await {
            if conn_write.write_all(&chunk).await.is_err() {
                break;
            }
        }
        let _ = conn_write.shutdown().await;
    };
    let error = async {
        let mut message = Vec::new();
        while let Some(chunk) = error_reader.recv().await {
            message.extend_from_slice(&chunk);
        }
        if !message.is_empty() {
            failed(String::from_utf8_lossy(&message).into_owned()).await;
        }
    };
    let transfer = async {
        tokio::pin!(upload);
        tokio::pin!(download);
        tokio::select! {
            _ = &mut upload => download.await,
            _ = &mut download => {}
        }
    };
    tokio::join!(transfer, error);
    let _ = data_writer.reset(spdy::frame::rst::CANCEL).await;
    Ok(())
}

/// The WebSocket as a byte stream: binary messages' payloads in order, each write one
/// binary message (what the SPDY session reads and writes).
fn tunnel(socket: Socket) -> tokio::io::DuplexStream {
    let (ours, theirs) = tokio::io::duplex(256 * 1024);
    let (mut read_half, mut write_half) = tokio::io::split(theirs);
    let (mut sink, mut incoming) = socket.split();
    tokio::spawn(async move {
        while let Some(Ok(message)) = incoming.next().await {
            match message {
                Message::Binary(data) if write_half.write_all(&data).await.is_err() => break,
                Message::Close(_) => break,
                _ => {}
            }
        }
        let _ = write_half.shutdown().await;
    });
    tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match read_half.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if sink
                        .send(Message::Binary(bytes::Bytes::copy_from_slice(&buf[..n])))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
        let _ = sink.close().await;
    });
    ours
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ports_translate_like_upstream() {
        let pod = json!({"metadata": {"name": "web"}, "spec": {"containers": [
            {"name": "c", "ports": [{"name": "http", "containerPort": 8080}]}]}});
        let ports = |list: &[&str]| list.iter().map(|p| p.to_string()).collect::<Vec<_>>();
        assert_eq!(
            translate(&ports(&["8080", ":8080", "9000:http", "http"]), &pod, None).unwrap(),
            vec![
                ("8080".into(), 8080),
                ("".into(), 8080),
                ("9000".into(), 8080),
                ("8080".into(), 8080)
            ]
        );
        let error = translate(&ports(&["1:nope"]), &pod, None).unwrap_err();
        assert_eq!(error.render(), "error: Pod 'web' does not have a named port 'nope'");
        let service = json!({"metadata": {"name": "web"}, "spec": {"ports": [
            {"name": "web", "port": 80, "targetPort": "http"}, {"port": 81, "targetPort": 9090}, {"port": 82}]}});
        assert_eq!(
            translate(&ports(&[":80", "81", "web", "5:82"]), &pod, Some(&service)).unwrap(),
            vec![
                ("".into(), 8080),
                ("81".into(), 9090),
                ("80".into(), 8080),
                ("5".into(), 82)
            ]
        );
        let error = translate(&ports(&["83"]), &pod, Some(&service)).unwrap_err();
        assert_eq!(error.render(), "error: Service web does not have a service port 83");
    }
}
