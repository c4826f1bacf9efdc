//! Serving: the hickory-server request handler (cluster zone from the catalog, everything else
//! forwarded), UDP and TCP listeners, and the reflectors that keep the catalog current.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::{Stream, StreamExt};
use hickory_server::Server;
use hickory_server::net::runtime::Time;
use hickory_server::proto::op::{Edns, Header, HeaderCounts, MessageType, Metadata, OpCode, ResponseCode};
use hickory_server::proto::rr::{LowerName, Name, Record};
use hickory_server::resolver::config::{ConnectionConfig, NameServerConfig, ResolverOpts};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::store::forwarder::{ForwardConfig, ForwardZoneHandler};
use hickory_server::zone_handler::{Catalog as ZoneCatalog, MessageResponseBuilder};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::Notify;

use crate::answer::{Answer, answer, in_served_zones};
use crate::catalog::{Catalog, SERVICE_NAME_LABEL, SharedCatalog};

/// How the DNS server listens, what it is authoritative for and where it forwards the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsConfig {
    /// Addresses to answer on, UDP and TCP each. Port 0 picks a free port, the same for both.
    pub listen: Vec<SocketAddr>,
    /// The cluster domain, e.g. `cluster.local`.
    pub domain: String,
    /// Resolvers for names outside the served zones; none means such queries are REFUSED.
    pub upstreams: Vec<SocketAddr>,
}

/// Why the DNS server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid cluster domain {domain:?}: {reason}")]
    Domain { domain: String, reason: String },
    #[error("binding {protocol} {addr}: {source}")]
    Bind {
        protocol: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("configuring the forwarder: {0}")]
    Forwarder(String),
    #[error("DNS server: {0}")]
    Server(String),
}

/// A bound DNS server, not yet answering.
pub struct DnsServer {
    server: Server<Handler>,
    local_addrs: Vec<SocketAddr>,
}

impl DnsServer {
    /// Binds every listen address (UDP and TCP) and prepares the handler.
    pub async fn bind(config: &DnsConfig, catalog: SharedCatalog) -> Result<Self, Error> {
        let handler = Handler::new(config, catalog)?;
        let mut server = Server::new(handler);
        let mut local_addrs = Vec::new();
        for addr in &config.listen {
            let bind_err = |protocol, source| Error::Bind {
                protocol,
                addr: *addr,
                source,
            };
            let (udp, tcp, local) = bind_pair(*addr).await.map_err(|(protocol, e)| bind_err(protocol, e))?;
            server.register_socket(udp);
            server.register_listener(tcp, Duration::from_secs(5), 32);
            local_addrs.push(local);
        }
        Ok(DnsServer { server, local_addrs })
    }

    /// The bound addresses (with the ports chosen for port 0).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }

    /// Answers until `shutdown` completes.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
        tokio::select! {
            () = shutdown => {}
            res = self.server.block_until_done() => {
                return res.map_err(|e| Error::Server(e.to_string()));
            }
        }
        self.server
            .shutdown_gracefully()
            .await
            .map_err(|e| Error::Server(e.to_string()))
    }
}

/// Binds UDP and TCP on the same address. With port 0 the kernel picks the UDP port, and
/// another process may already hold that port for TCP: then another UDP port is tried.
async fn bind_pair(addr: SocketAddr) -> Result<(UdpSocket, TcpListener, SocketAddr), (&'static str, std::io::Error)> {
    const ATTEMPTS: usize = 16;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let udp = UdpSocket::bind(addr).await.map_err(|e| ("udp", e))?;
        let local = udp.local_addr().map_err(|e| ("udp", e))?;
        match TcpListener::bind(local).await {
            Ok(tcp) => return Ok((udp, tcp, local)),
            Err(e) if addr.port() == 0 && e.kind() == std::io::ErrorKind::AddrInUse && attempt < ATTEMPTS => {}
            Err(e) => return Err(("tcp", e)),
        }
    }
}

/// Serves DNS from `catalog` on `config.listen` until `shutdown` completes.
pub async fn serve_catalog(
    config: DnsConfig,
    catalog: SharedCatalog,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    DnsServer::bind(&config, catalog).await?.run(shutdown).await
}

/// Reflects Services and EndpointSlices (all namespaces) from the apiserver and serves DNS from
/// them until `shutdown` completes. Cluster names get SERVFAIL until both lists have synced.
pub async fn serve(config: DnsConfig, client: kube::Client, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
    let shared = SharedCatalog::pending();
    let server = DnsServer::bind(&config, shared.clone()).await?;
    tracing::info!(addrs = ?server.local_addrs(), domain = %config.domain, "cluster DNS listening");

    let (svc_store, svc_writer) = reflector::store::<Service>();
    let (eps_store, eps_writer) = reflector::store::<EndpointSlice>();
    let services = reflector::reflector(
        svc_writer,
        watcher(Api::<Service>::all(client.clone()), watcher::Config::default()).default_backoff(),
    );
    let slices = reflector::reflector(
        eps_writer,
        watcher(
            Api::<EndpointSlice>::all(client),
            watcher::Config::default().labels(SERVICE_NAME_LABEL),
        )
        .default_backoff(),
    );

    let changed = Notify::new();
    let (svc_synced, eps_synced) = (AtomicBool::new(false), AtomicBool::new(false));
    let updater = async {
        futures::join!(
            drive("services", services, &changed, &svc_synced),
            drive("endpointslices", slices, &changed, &eps_synced),
            rebuild(&svc_store, &eps_store, &shared, &changed, [&svc_synced, &eps_synced]),
        );
    };
    tokio::select! {
        res = server.run(shutdown) => res,
        () = updater => Err(Error::Server("catalog updater stopped".into())),
    }
}

async fn drive<K>(
    what: &'static str,
    stream: impl Stream<Item = Result<watcher::Event<K>, watcher::Error>>,
    changed: &Notify,
    synced: &AtomicBool,
) {
    let mut stream = std::pin::pin!(stream);
    while let Some(event) = stream.next().await {
        match event {
            Ok(watcher::Event::InitDone) => {
                synced.store(true, Ordering::SeqCst);
                changed.notify_one();
            }
            Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => {}
            Ok(_) => changed.notify_one(),
            Err(err) => tracing::warn!(what, %err, "watch failed; retrying"),
        }
    }
}

async fn rebuild(
    services: &Store<Service>,
    slices: &Store<EndpointSlice>,
    shared: &SharedCatalog,
    changed: &Notify,
    synced: [&AtomicBool; 2],
) {
    loop {
        changed.notified().await;
        if !synced.iter().all(|s| s.load(Ordering::SeqCst)) {
            continue;
        }
        // Batch bursts of events (a rollout touches many slices) into one rebuild.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let services = services.state();
        let slices = slices.state();
        let serial = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX))
            .unwrap_or(1);
        let catalog =
            Catalog::new(services.iter().map(|s| s.as_ref()), slices.iter().map(|s| s.as_ref())).with_serial(serial);
        tracing::debug!(services = catalog.service_count(), "cluster DNS catalog rebuilt");
        shared.replace(catalog);
    }
}

struct Handler {
    catalog: SharedCatalog,
    domain: Name,
    forwarder: Option<ZoneCatalog>,
}

impl Handler {
    fn new(config: &DnsConfig, catalog: SharedCatalog) -> Result<Self, Error> {
        let domain_err = |reason: String| Error::Domain {
            domain: config.domain.clone(),
            reason,
        };
        let mut domain = Name::from_ascii(config.domain.trim_end_matches('.'))
            .map_err(|e| domain_err(e.to_string()))?
            .to_lowercase();
        domain.set_fqdn(true);
        if domain.is_root() {
            return Err(domain_err("must not be the root".into()));
        }
        let forwarder = if config.upstreams.is_empty() {
            None
        } else {
            Some(forwarder(&config.upstreams)?)
        };
        Ok(Handler {
            catalog,
            domain,
            forwarder,
        })
    }

    async fn answer_locally<R: ResponseHandler>(
        &self,
        request: &Request,
        mut response_handle: R,
        answer: Answer,
    ) -> ResponseInfo {
        let resp_edns = request.edns.as_ref().map(|req| {
            let mut edns = Edns::new();
            edns.set_max_payload(req.max_payload().max(512));
            edns.set_version(0);
            edns
        });
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.authoritative = true;
        metadata.recursion_available = self.forwarder.is_some();
        let empty = Vec::new();
        let (answers, soa, additionals): (&Vec<Record>, Option<&Record>, &Vec<Record>) = match &answer {
            Answer::Records { answers, additionals } => (answers, None, additionals),
            Answer::NoData { soa } => (&empty, Some(soa), &empty),
            Answer::NxDomain { soa } => {
                metadata.response_code = ResponseCode::NXDomain;
                (&empty, Some(soa), &empty)
            }
            Answer::NotAuthoritative => {
                metadata.authoritative = false;
                metadata.response_code = ResponseCode::Refused;
                (&empty, None, &empty)
            }
        };
        let response = MessageResponseBuilder::new(&request.queries, resp_edns.as_ref()).build(
            metadata,
            answers.iter(),
            std::iter::empty(),
            soa,
            additionals.iter(),
        );
        match response_handle.send_response(response).await {
            Ok(info) => info,
            Err(err) => {
                tracing::debug!(%err, "sending DNS response failed");
                serve_failed(&request.metadata)
            }
        }
    }

    async fn error<R: ResponseHandler>(
        &self,
        request: &Request,
        mut response_handle: R,
        code: ResponseCode,
    ) -> ResponseInfo {
        let response = MessageResponseBuilder::new(&request.queries, None).error_msg(&request.metadata, code);
        match response_handle.send_response(response).await {
            Ok(info) => info,
            Err(_) => serve_failed(&request.metadata),
        }
    }
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(&self, request: &Request, response_handle: R) -> ResponseInfo {
        if request.metadata.message_type != MessageType::Query {
            return self.error(request, response_handle, ResponseCode::FormErr).await;
        }
        if request.metadata.op_code != OpCode::Query {
            return self.error(request, response_handle, ResponseCode::NotImp).await;
        }
        let Ok(info) = request.request_info() else {
            return self.error(request, response_handle, ResponseCode::FormErr).await;
        };
        let lower = Name::from(info.query.name().clone());
        let qtype = info.query.query_type();
        let local = if in_served_zones(&self.domain, &lower) {
            match self.catalog.snapshot() {
                Some(catalog) => answer(&catalog, &self.domain, info.query.original().name(), qtype),
                None if self.domain.zone_of(&lower) => {
                    // Not synced yet: better a retry than a cached NXDOMAIN.
                    return self.error(request, response_handle, ResponseCode::ServFail).await;
                }
                None => Answer::NotAuthoritative,
            }
        } else {
            Answer::NotAuthoritative
        };
        match (&local, &self.forwarder) {
            (Answer::NotAuthoritative, Some(forwarder)) => {
                forwarder.handle_request::<R, T>(request, response_handle).await
            }
            _ => self.answer_locally(request, response_handle, local).await,
        }
    }
}

fn serve_failed(request: &Metadata) -> ResponseInfo {
    let mut metadata = Metadata::response_from_request(request);
    metadata.response_code = ResponseCode::ServFail;
    ResponseInfo::from(Header {
        metadata,
        counts: HeaderCounts::default(),
    })
}

/// A hickory catalog with a forwarding zone handler for the root, over `upstreams`.
fn forwarder(upstreams: &[SocketAddr]) -> Result<ZoneCatalog, Error> {
    let name_servers = upstreams
        .iter()
        .map(|addr| {
            let mut udp = ConnectionConfig::udp();
            udp.port = addr.port();
            let mut tcp = ConnectionConfig::tcp();
            tcp.port = addr.port();
            NameServerConfig::new(addr.ip(), true, vec![udp, tcp])
        })
        .collect();
    let mut options = ResolverOpts::default();
    options.timeout = Duration::from_secs(2);
    options.attempts = 2;
    let config = ForwardConfig {
        name_servers,
        options: Some(options),
    };
    let handler = ForwardZoneHandler::builder_tokio(config)
        .build()
        .map_err(Error::Forwarder)?;
    let mut catalog = ZoneCatalog::new();
    catalog.upsert(LowerName::from(Name::root()), vec![Arc::new(handler)]);
    Ok(catalog)
}
