//! Shared fixtures and helpers of the REST integration tests: one etcd + apiserver shared by
//! the tests of a binary (started by the first test that asks, stopped at process exit), raw
//! HTTPS requests through kube-rs's client, watch readers and object builders.

#![allow(dead_code, unused_imports)]

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use futures::StreamExt;
use http::{Method, Request};
use http_body_util::BodyExt;
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, ListParams, PostParams};
use kube::runtime::watcher;
use serde_json::{Value, json};
use storage::Storage;
use testkit::apiserver::ApiServer;
use testkit::etcd::EtcdServer;

/// Upper bound for one request, and for waiting on one watch event.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(30);
/// How long a watch must stay silent to count as "no further events".
pub(crate) const QUIET: Duration = Duration::from_millis(1500);
/// The static token the shared apiserver accepts (see `start_shared`).
pub(crate) const TOKEN: &str = "s3cret-token-for-alice";

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

pub(crate) fn apiserver_binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_kube-apiserver"))
}

/// The processes every test shares.
pub(crate) struct Shared {
    // Field order is drop order: the apiserver goes before its etcd.
    pub(crate) apiserver: ApiServer,
    pub(crate) etcd: EtcdServer,
    pub(crate) _token_dir: tempfile::TempDir,
}

pub(crate) static SHARED: Mutex<Option<Shared>> = Mutex::new(None);

unsafe extern "C" {
    pub(crate) fn atexit(callback: extern "C" fn()) -> std::ffi::c_int;
}

/// Stops the shared processes when the test binary exits (statics are never dropped).
extern "C" fn stop_shared() {
    let shared = match SHARED.lock() {
        Ok(mut guard) => guard.take(),
        Err(poisoned) => poisoned.into_inner().take(),
    };
    drop(shared);
}

pub(crate) fn start_shared() -> Result<Shared> {
    let etcd = EtcdServer::start()?;
    let token_dir = tempfile::tempdir()?;
    let token_file = token_dir.path().join("tokens.csv");
    std::fs::write(&token_file, format!("{TOKEN},alice,1001,\"dev,ops\"\n"))?;
    let token_arg = token_file.to_string_lossy().into_owned();
    let apiserver = ApiServer::start(apiserver_binary(), &etcd.endpoint, &["--token-auth-file", &token_arg])?;
    Ok(Shared {
        apiserver,
        etcd,
        _token_dir: token_dir,
    })
}

/// Where the shared apiserver is and how to reach it.
pub(crate) struct Env {
    pub(crate) kubeconfig: PathBuf,
    pub(crate) url: String,
    pub(crate) ca_b64: String,
    pub(crate) etcd_endpoint: String,
}

/// The shared etcd + apiserver, started on first use.
pub(crate) fn env() -> Env {
    let mut guard = SHARED.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if guard.is_none() {
        let shared = start_shared().expect("starting the shared etcd and kube-apiserver");
        // SAFETY: registers a plain `extern "C"` function with the C runtime.
        unsafe {
            atexit(stop_shared);
        }
        *guard = Some(shared);
    }
    let shared = guard.as_ref().expect("the shared fixture was just started");
    Env {
        kubeconfig: shared.apiserver.kubeconfig(),
        url: shared.apiserver.url(),
        ca_b64: ca_b64(&shared.apiserver),
        etcd_endpoint: shared.etcd.endpoint.clone(),
    }
}

pub(crate) fn ca_b64(apiserver: &ApiServer) -> String {
    use base64::Engine;
    let pem = std::fs::read(apiserver.data_dir().join("pki/ca.crt")).expect("reading pki/ca.crt");
    base64::engine::general_purpose::STANDARD.encode(pem)
}

impl Env {
    pub(crate) async fn admin(&self) -> Result<Http> {
        Http::from_kubeconfig_file(&self.kubeconfig).await
    }

    /// A client that trusts the cluster CA and presents no credentials.
    pub(crate) async fn anonymous(&self) -> Result<Http> {
        Http::from_kubeconfig_yaml(&kubeconfig_yaml(&self.url, &self.ca_b64, "{}")).await
    }

    pub(crate) async fn with_token(&self, token: &str) -> Result<Http> {
        Http::from_kubeconfig_yaml(&kubeconfig_yaml(
            &self.url,
            &self.ca_b64,
            &format!("{{token: \"{token}\"}}"),
        ))
        .await
    }
}

pub(crate) fn kubeconfig_yaml(url: &str, ca_b64: &str, user: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {url}\n    \
         certificate-authority-data: {ca_b64}\nusers:\n- name: u\n  user: {user}\ncontexts:\n- name: c\n  \
         context:\n    cluster: c\n    user: u\ncurrent-context: c\n"
    )
}

pub(crate) async fn client_from(kubeconfig: kube::config::Kubeconfig) -> Result<Client> {
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
    // The tests look at every answer as it is; kube's default retries 503/504/429.
    config.default_retry = false;
    Ok(Client::try_from(config)?)
}

// ---------------------------------------------------------------------------------------------
// Raw HTTP
// ---------------------------------------------------------------------------------------------

/// A response: status code and body (parsed as JSON when it is JSON).
pub(crate) struct Reply {
    pub(crate) what: String,
    pub(crate) status: u16,
    pub(crate) body: Value,
    pub(crate) text: String,
}

impl Reply {
    /// The body, after checking the status code.
    pub(crate) fn expect(self, code: u16) -> Result<Value> {
        ensure!(
            self.status == code,
            "{}: expected HTTP {code}, got {}: {}",
            self.what,
            self.status,
            self.text
        );
        Ok(self.body)
    }

    /// Checks that this is a failure Status with `code` and `reason`; returns the Status.
    pub(crate) fn expect_status(self, code: u16, reason: &str) -> Result<Value> {
        ensure!(
            self.status == code,
            "{}: expected HTTP {code} {reason}, got {}: {}",
            self.what,
            self.status,
            self.text
        );
        let body = &self.body;
        ensure!(
            body["kind"] == "Status" && body["apiVersion"] == "v1",
            "{}: not a Status: {}",
            self.what,
            self.text
        );
        ensure!(
            body["status"] == "Failure",
            "{}: status is not Failure: {}",
            self.what,
            self.text
        );
        ensure!(
            body["code"] == code,
            "{}: Status code is not {code}: {}",
            self.what,
            self.text
        );
        ensure!(
            body["reason"] == reason,
            "{}: reason is not {reason}: {}",
            self.what,
            self.text
        );
        Ok(self.body)
    }
}

#[derive(Clone)]
pub(crate) struct Http {
    pub(crate) client: Client,
}

impl Http {
    pub(crate) async fn from_kubeconfig_file(path: &Path) -> Result<Self> {
        let kubeconfig = kube::config::Kubeconfig::read_from(path)?;
        Ok(Self {
            client: client_from(kubeconfig).await?,
        })
    }

    pub(crate) async fn from_kubeconfig_yaml(yaml: &str) -> Result<Self> {
        let kubeconfig = kube::config::Kubeconfig::from_yaml(yaml)?;
        Ok(Self {
            client: client_from(kubeconfig).await?,
        })
    }

    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Result<Reply> {
        let what = format!("{method} {path}");
        let mut request = Request::builder().method(method).uri(path);
        if let Some(content_type) = content_type {
            request = request.header(http::header::CONTENT_TYPE, content_type);
        }
        let request = request.body(kube::client::Body::from(body))?;
        let exchange = async {
            let response = self.client.send(request).await?;
            let status = response.status().as_u16();
            let bytes = response.into_body().collect_bytes().await?;
            anyhow::Ok((status, bytes))
        };
        let (status, bytes) = tokio::time::timeout(TIMEOUT, exchange)
            .await
            .with_context(|| format!("{what}: no answer within {TIMEOUT:?}"))?
            .with_context(|| what.clone())?;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(Reply {
            what,
            status,
            body,
            text,
        })
    }

    pub(crate) async fn get(&self, path: &str) -> Result<Reply> {
        self.send(Method::GET, path, None, Vec::new()).await
    }

    pub(crate) async fn post(&self, path: &str, body: &Value) -> Result<Reply> {
        self.send(
            Method::POST,
            path,
            Some("application/json"),
            body.to_string().into_bytes(),
        )
        .await
    }

    pub(crate) async fn put(&self, path: &str, body: &Value) -> Result<Reply> {
        self.send(
            Method::PUT,
            path,
            Some("application/json"),
            body.to_string().into_bytes(),
        )
        .await
    }

    pub(crate) async fn patch(&self, path: &str, content_type: &str, body: &Value) -> Result<Reply> {
        self.send(Method::PATCH, path, Some(content_type), body.to_string().into_bytes())
            .await
    }

    pub(crate) async fn delete(&self, path: &str) -> Result<Reply> {
        self.send(Method::DELETE, path, None, Vec::new()).await
    }

    pub(crate) async fn delete_with(&self, path: &str, options: &Value) -> Result<Reply> {
        self.send(
            Method::DELETE,
            path,
            Some("application/json"),
            options.to_string().into_bytes(),
        )
        .await
    }

    /// GET that must succeed.
    pub(crate) async fn fetch(&self, path: &str) -> Result<Value> {
        self.get(path).await?.expect(200)
    }

    /// POST that must create.
    pub(crate) async fn create(&self, path: &str, body: &Value) -> Result<Value> {
        self.post(path, body).await?.expect(201)
    }

    /// Opens a watch (the path carries `watch=true` and the options).
    pub(crate) async fn watch(&self, path: &str) -> Result<Watch> {
        let request = Request::builder()
            .method(Method::GET)
            .uri(path)
            .body(kube::client::Body::empty())?;
        let response = tokio::time::timeout(TIMEOUT, self.client.send(request))
            .await
            .with_context(|| format!("watch {path}: no answer within {TIMEOUT:?}"))??;
        let status = response.status().as_u16();
        if status != 200 {
            let bytes = response.into_body().collect_bytes().await.unwrap_or_default();
            bail!("watch {path}: HTTP {status}: {}", String::from_utf8_lossy(&bytes));
        }
        Ok(Watch {
            path: path.to_string(),
            body: response.into_body(),
            buf: Vec::new(),
        })
    }
}

/// A watch response read event by event.
pub(crate) struct Watch {
    pub(crate) path: String,
    pub(crate) body: kube::client::Body,
    pub(crate) buf: Vec<u8>,
}

pub(crate) enum Next {
    Event(Value),
    Silent,
    Ended,
}

impl Watch {
    pub(crate) async fn next(&mut self, wait: Duration) -> Result<Next> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(end) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=end).collect();
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let event: Value = serde_json::from_slice(&line)
                    .with_context(|| format!("watch {}: bad event {}", self.path, String::from_utf8_lossy(&line)))?;
                return Ok(Next::Event(event));
            }
            match tokio::time::timeout_at(deadline, self.body.frame()).await {
                Err(_) => return Ok(Next::Silent),
                Ok(None) => return Ok(Next::Ended),
                Ok(Some(Err(error))) => bail!("watch {}: reading: {error}", self.path),
                Ok(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        self.buf.extend_from_slice(&data);
                    }
                }
            }
        }
    }

    /// The next event, which must arrive within [`TIMEOUT`].
    pub(crate) async fn event(&mut self) -> Result<Value> {
        match self.next(TIMEOUT).await? {
            Next::Event(event) => Ok(event),
            Next::Silent => bail!("watch {}: no event within {TIMEOUT:?}", self.path),
            Next::Ended => bail!("watch {}: the stream ended", self.path),
        }
    }

    /// The next event, which must be `event_type` for the object `name`; returns the object.
    pub(crate) async fn expect(&mut self, event_type: &str, name: &str) -> Result<Value> {
        let event = self.event().await?;
        ensure!(
            event["type"] == event_type && event["object"]["metadata"]["name"] == name,
            "watch {}: expected {event_type} {name}, got {event}",
            self.path
        );
        Ok(event["object"].clone())
    }

    /// No event for [`QUIET`].
    pub(crate) async fn expect_quiet(&mut self) -> Result<()> {
        match self.next(QUIET).await? {
            Next::Silent => Ok(()),
            Next::Event(event) => bail!("watch {}: unexpected event {event}", self.path),
            Next::Ended => bail!("watch {}: the stream ended", self.path),
        }
    }

    pub(crate) async fn expect_end(&mut self) -> Result<()> {
        match self.next(TIMEOUT).await? {
            Next::Ended => Ok(()),
            Next::Event(event) => bail!("watch {}: expected the end, got {event}", self.path),
            Next::Silent => bail!("watch {}: still open after {TIMEOUT:?}", self.path),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Objects and small helpers
// ---------------------------------------------------------------------------------------------

pub(crate) fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", &uuid::Uuid::new_v4().simple().to_string()[..10])
}

/// Creates a namespace of the test's own.
pub(crate) async fn namespace(http: &Http, prefix: &str) -> Result<String> {
    let name = unique(prefix);
    http.create(
        "/api/v1/namespaces",
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}),
    )
    .await?;
    Ok(name)
}

/// Percent-encodes a query parameter value.
pub(crate) fn enc(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

pub(crate) fn configmap(name: &str, labels: Value, data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels}, "data": data})
}

pub(crate) fn pod(name: &str, labels: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]},
    })
}

pub(crate) fn deployment(name: &str, replicas: i64) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [
                    {"name": "web", "image": "nginx:1.25"},
                    {"name": "sidecar", "image": "busybox:1"},
                ]},
            },
        },
    })
}

pub(crate) fn service(name: &str, spec: Value) -> Value {
    let mut spec = spec;
    if spec.get("ports").is_none() {
        spec["ports"] = json!([{"port": 80, "targetPort": 8080, "protocol": "TCP"}]);
    }
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec})
}

/// `metadata.resourceVersion` as a number.
pub(crate) fn rv(object: &Value) -> Result<i64> {
    object["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("no numeric metadata.resourceVersion in {object}"))
}

/// The names of a list's items, sorted.
pub(crate) fn names(list: &Value) -> Vec<String> {
    let mut names: Vec<String> = list["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i["metadata"]["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

pub(crate) fn strs(names: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

/// The `field` values of a Status's causes.
pub(crate) fn cause_fields(status: &Value) -> Vec<String> {
    status["details"]["causes"]
        .as_array()
        .map(|causes| {
            causes
                .iter()
                .filter_map(|c| c["field"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// After a restart: the Service `default/keep` is unchanged (same resourceVersion, cluster IP
/// and node port) and its addresses are still held (asking for either again is 422), and the
/// system namespaces exist once each.
pub(crate) async fn check_service_survived(http: &Http, svc: &Value, ip: &str, port: u64) -> Result<()> {
    let svc_after = http.fetch("/api/v1/namespaces/default/services/keep").await?;
    ensure!(
        svc_after["metadata"]["resourceVersion"] == svc["metadata"]["resourceVersion"]
            && svc_after["spec"]["clusterIP"] == ip
            && svc_after["spec"]["ports"][0]["nodePort"] == port,
        "{svc} vs {svc_after}"
    );
    // The allocations are still held.
    http.post(
        "/api/v1/namespaces/default/services",
        &service("same-ip", json!({"clusterIP": ip})),
    )
    .await?
    .expect_status(422, "Invalid")?;
    let same_port = json!({"type": "NodePort", "ports": [{"port": 80, "protocol": "TCP", "nodePort": port}]});
    http.post("/api/v1/namespaces/default/services", &service("same-port", same_port))
        .await?
        .expect_status(422, "Invalid")?;
    let namespaces = http.fetch("/api/v1/namespaces").await?;
    ensure!(
        names(&namespaces) == strs(&["default", "kube-node-lease", "kube-public", "kube-system"]),
        "system namespaces once each: {namespaces}"
    );
    Ok(())
}
