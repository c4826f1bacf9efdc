//! The etcd backend (etcd v3 API through `etcd-client`).
//!
//! Every write is a single etcd transaction, so the compare-and-swap semantics of the
//! [`Storage`] contract are exactly etcd's. Unary calls are bounded by a request timeout (the
//! client's channel otherwise waits forever while no endpoint is reachable); watch streams are
//! not, since they are meant to live indefinitely.
//!
//! With several endpoints there is one client per member and one member in use: a call that
//! could not even connect to it (so the request was never sent, and retrying a write is safe)
//! moves on to the next member, which stays in use, as the Go client's retry does.
//! (`etcd-client`'s own balanced channel fails every call once one endpoint is down:
//! etcdv3/etcd-client#39.)

mod leases;

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use etcd_client::{
    Client, CompactionOptions, Compare, CompareOp, ConnectOptions, DeleteOptions, GetOptions, PutOptions, Txn, TxnOp,
    TxnOpResponse, TxnResponse, WatchOptions, WatchResponse,
};

use crate::{
    Event, KeyValue, ListRequest, ListResponse, Result, Revision, Storage, StorageError, WatchItem, WatchStream,
};

/// How long a unary etcd call may take before it is reported as [`StorageError::Unavailable`].
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long establishing the connection may take in [`EtcdStorage::connect`].
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long we wait for etcd to tell us its compaction revision when building an error.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// A key nobody writes, used by probes that need "some key".
const PROBE_KEY: &str = "\0kaji-storage-probe";

/// The production backend: a client for one etcd cluster.
#[derive(Clone)]
pub struct EtcdStorage {
    members: Arc<Members>,
    /// Whether the server orders progress answers after the events they cover.
    progress_ordered: bool,
    /// The lease keys written with a ttl are attached to. Held across a grant, so that
    /// concurrent writes wait for one lease instead of granting one each.
    leases: Arc<tokio::sync::Mutex<leases::Leases>>,
}

/// One client per member, and the one in use.
struct Members {
    clients: Vec<Client>,
    current: AtomicUsize,
}

impl EtcdStorage {
    /// The client of the member in use.
    fn client(&self) -> Client {
        let members = &self.members;
        members.clients[members.current.load(Ordering::Relaxed) % members.clients.len()].clone()
    }

    /// Runs `call` (bounded by the request timeout) on the member in use, and on the next ones
    /// in turn while a member cannot be connected to; keeps etcd's own error for the caller.
    async fn call<T, F, Fut>(&self, call: F) -> Result<std::result::Result<T, etcd_client::Error>>
    where
        F: Fn(Client) -> Fut,
        Fut: Future<Output = std::result::Result<T, etcd_client::Error>>,
    {
        let mut result = bounded_raw(REQUEST_TIMEOUT, call(self.client())).await?;
        for _ in 1..self.members.clients.len() {
            match &result {
                Err(error) if never_sent(error) => {}
                _ => break,
            }
            let failed = self.members.current.load(Ordering::Relaxed);
            let member = failed % self.members.clients.len();
            let error = error_text(&result);
            tracing::warn!(member, %error, "etcd member unreachable; trying the next");
            // Another call may have moved on already; then its choice stands.
            let _ = self
                .members
                .current
                .compare_exchange(failed, failed + 1, Ordering::Relaxed, Ordering::Relaxed);
            result = bounded_raw(REQUEST_TIMEOUT, call(self.client())).await?;
        }
        Ok(result)
    }

    /// [`EtcdStorage::call`] with every failure mapped.
    async fn run<T, F, Fut>(&self, call: F) -> Result<T>
    where
        F: Fn(Client) -> Fut,
        Fut: Future<Output = std::result::Result<T, etcd_client::Error>>,
    {
        self.call(call).await?.map_err(map_error)
    }

    /// Connects to the cluster and checks it answers a linearizable read, so a wrong endpoint
    /// fails here with [`StorageError::Unavailable`] instead of at the first request.
    pub async fn connect(endpoints: &[String]) -> Result<Self> {
        let options = ConnectOptions::new()
            .with_connect_timeout(CONNECT_TIMEOUT)
            .with_keep_alive(Duration::from_secs(10), Duration::from_secs(10))
            .with_keep_alive_while_idle(true);
        let mut clients = Vec::new();
        for endpoint in endpoints {
            // A single-endpoint client connects lazily, so a member that is down now is no
            // obstacle; it is skipped when used.
            clients.push(bounded(CONNECT_TIMEOUT, Client::connect([endpoint], Some(options.clone()))).await?);
        }
        if clients.is_empty() {
            return Err(StorageError::Unavailable("no etcd endpoint given".into()));
        }
        let mut storage = EtcdStorage {
            members: Arc::new(Members {
                clients,
                current: AtomicUsize::new(0),
            }),
            progress_ordered: true,
            leases: Arc::default(),
        };
        tokio::time::timeout(CONNECT_TIMEOUT, storage.current_revision())
            .await
            .map_err(|_| {
                StorageError::Unavailable(format!(
                    "etcd at {endpoints:?} did not answer within {CONNECT_TIMEOUT:?}"
                ))
            })??;
        if let Ok(version) = storage.server_version().await
            && !progress_is_ordered(&version)
        {
            storage.progress_ordered = false;
            tracing::warn!(
                %version,
                "etcd before 3.4.31 / 3.5.13 may answer a watch progress request before \
                 delivering the events it covers (etcd-io/etcd#15220, #17507)"
            );
        }
        Ok(storage)
    }

    /// The version of the etcd server answering our requests, e.g. `3.4.23`.
    pub async fn server_version(&self) -> Result<String> {
        let status = self
            .run(|client| async move { client.maintenance_client().status().await })
            .await?;
        Ok(status.version().to_owned())
    }

    /// The lease a write with `ttl` attaches to (granting one when none can be reused).
    async fn lease(&self, ttl: Duration) -> Result<i64> {
        let mut leases = self.leases.lock().await;
        let seconds = match leases.plan(ttl, Instant::now()) {
            leases::Plan::Reuse(id) => return Ok(id),
            leases::Plan::Grant { seconds } => seconds,
        };
        let asked = Instant::now();
        let granted = self
            .run(|client| async move { client.lease_client().grant(seconds, None).await })
            .await?;
        leases.granted(granted.id(), granted.ttl(), asked);
        Ok(granted.id())
    }

    /// Runs the transaction `build` makes from the options of its put: with a `ttl`, the put
    /// is attached to a lease. A lease etcd no longer knows (revoked, or lost with a restored
    /// cluster) is forgotten and the write tried once more with a new one.
    async fn txn_with_ttl(&self, ttl: Option<Duration>, build: impl Fn(PutOptions) -> Txn) -> Result<TxnResponse> {
        let Some(ttl) = ttl else {
            return self.txn(build(PutOptions::new())).await;
        };
        let mut retried = false;
        loop {
            let lease = self.lease(ttl).await?;
            let txn = build(PutOptions::new().with_lease(lease));
            let call = self.call(|client| {
                let txn = txn.clone();
                async move { client.kv_client().txn(txn).await }
            });
            match call.await? {
                Ok(response) => return Ok(response),
                Err(etcd_client::Error::GRpcStatus(status))
                    if !retried && status.message().contains("requested lease not found") =>
                {
                    tracing::warn!(lease, "etcd no longer knows the lease; granting a new one");
                    self.leases.lock().await.forget(lease);
                    retried = true;
                }
                Err(error) => return Err(map_error(error)),
            }
        }
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResponse> {
        self.run(|client| {
            let txn = txn.clone();
            async move { client.kv_client().txn(txn).await }
        })
        .await
    }

    /// Translates etcd's revision errors into typed ones; everything else via [`map_error`].
    async fn revision_error(&self, error: etcd_client::Error, requested: Revision) -> StorageError {
        match classify(&error) {
            Some(RevisionError::Compacted) => StorageError::Compacted {
                requested,
                compacted: self.compaction_revision().await.unwrap_or(requested + 1),
            },
            Some(RevisionError::Future) => StorageError::FutureRevision {
                requested,
                // etcd's error carries no revision: ask, else fall back to a bound we know.
                current: self.current_revision().await.unwrap_or(requested - 1),
            },
            None => map_error(error),
        }
    }

    /// The cluster's compaction revision. etcd only reports it to a watcher that starts below
    /// it, so we watch an unused key from revision 1 and read the cancellation. Only called
    /// after etcd reported a compaction, so the answer comes promptly.
    async fn compaction_revision(&self) -> Option<Revision> {
        let mut client = self.client().watch_client();
        let options = WatchOptions::new().with_start_revision(1);
        let probe = async {
            let mut stream = client.watch(PROBE_KEY, Some(options)).await.ok()?;
            while let Ok(Some(response)) = stream.message().await {
                if response.compact_revision() > 0 {
                    return Some(response.compact_revision());
                }
                if response.canceled() {
                    return None;
                }
            }
            None
        };
        tokio::time::timeout(PROBE_TIMEOUT, probe).await.ok().flatten()
    }
}

#[async_trait::async_trait]
impl Storage for EtcdStorage {
    fn progress_is_reliable(&self) -> bool {
        self.progress_ordered
    }

    /// Two facts at revision `at` prove the prefix unchanged since `since`: no key was
    /// modified after `since` (so every key existing at `at` existed unchanged at `since`), and
    /// the key count is the same as at `since` (so none was deleted). Note that etcd applies
    /// `min_mod_revision` after reading the whole range.
    async fn prefix_changed(&self, prefix: &str, since: Revision, at: Revision) -> Result<bool> {
        let end = prefix_end(prefix.as_bytes());
        let count_at = |revision: Revision| {
            GetOptions::new()
                .with_range(end.clone())
                .with_count_only()
                .with_revision(revision)
        };
        let get = |options: GetOptions| {
            self.call(move |client| {
                let options = options.clone();
                async move { client.kv_client().get(prefix, Some(options)).await }
            })
        };
        let before = match get(count_at(since)).await? {
            Ok(response) => response.count(),
            Err(error) => return Err(self.revision_error(error, since).await),
        };
        let after = match get(count_at(at)).await? {
            Ok(response) => response.count(),
            Err(error) => return Err(self.revision_error(error, at).await),
        };
        if before != after {
            return Ok(true);
        }
        let modified = GetOptions::new()
            .with_range(end)
            .with_keys_only()
            .with_revision(at)
            .with_min_mod_revision(since + 1)
            .with_limit(1);
        match get(modified).await? {
            Ok(response) => Ok(!response.kvs().is_empty()),
            Err(error) => Err(self.revision_error(error, at).await),
        }
    }

    async fn create_with_ttl(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<KeyValue> {
        let response = self
            .txn_with_ttl(ttl, |put| {
                Txn::new()
                    .when([Compare::create_revision(key, CompareOp::Equal, 0)])
                    .and_then([TxnOp::put(key, value.to_vec(), Some(put))])
            })
            .await?;
        if !response.succeeded() {
            return Err(StorageError::AlreadyExists(key.to_owned()));
        }
        let revision = header_revision(response.header())?;
        Ok(KeyValue {
            key: key.to_owned(),
            value,
            create_revision: revision,
            mod_revision: revision,
        })
    }

    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let response = self
            .run(|client| async move { client.kv_client().get(key, None).await })
            .await?;
        response.kvs().first().map(convert_kv).transpose()
    }

    async fn list(&self, request: ListRequest) -> Result<ListResponse> {
        // A start key before the prefix must not widen the range beyond the prefix.
        let mut start = match &request.start_key {
            Some(start) if *start > request.prefix => start.clone(),
            _ => request.prefix.clone(),
        };
        if start.is_empty() {
            // etcd rejects an empty key; "\0" is the smallest key there is.
            start.push('\0');
        }
        let mut options = GetOptions::new().with_range(prefix_end(request.prefix.as_bytes()));
        if request.limit > 0 {
            options = options.with_limit(request.limit);
        }
        if request.revision > 0 {
            options = options.with_revision(request.revision);
        }
        let start = start.as_str();
        let call = self.call(|client| {
            let options = options.clone();
            async move { client.kv_client().get(start, Some(options)).await }
        });
        let response = match call.await? {
            Ok(response) => response,
            Err(error) => return Err(self.revision_error(error, request.revision).await),
        };
        let kvs = response.kvs().iter().map(convert_kv).collect::<Result<Vec<_>>>()?;
        // etcd's `count` covers the whole range regardless of the limit.
        let remaining = (response.count() - kvs.len() as i64).max(0);
        // etcd's header carries the current revision even for reads in the past; the contract
        // wants the revision the read was served at.
        let revision = if request.revision > 0 {
            request.revision
        } else {
            header_revision(response.header())?
        };
        Ok(ListResponse {
            kvs,
            revision,
            remaining,
        })
    }

    async fn update_with_ttl(
        &self,
        key: &str,
        expected: Revision,
        value: Bytes,
        ttl: Option<Duration>,
    ) -> Result<KeyValue> {
        // etcd compares a missing key's revisions as 0: the version guard keeps `expected == 0`
        // from silently creating the key. A put without a lease detaches the key from one.
        let response = self
            .txn_with_ttl(ttl, |put| {
                Txn::new()
                    .when([
                        Compare::version(key, CompareOp::Greater, 0),
                        Compare::mod_revision(key, CompareOp::Equal, expected),
                    ])
                    .and_then([TxnOp::put(key, value.to_vec(), Some(put.with_prev_key()))])
                    .or_else([TxnOp::get(key, None)])
            })
            .await?;
        if !response.succeeded() {
            return Err(StorageError::Conflict {
                key: key.to_owned(),
                expected,
                current: first_get(&response)?,
            });
        }
        let revision = header_revision(response.header())?;
        let create_revision = response
            .op_responses()
            .into_iter()
            .find_map(|op| match op {
                TxnOpResponse::Put(put) => put.prev_key().map(|prev| prev.create_revision()),
                _ => None,
            })
            .ok_or_else(|| StorageError::Internal("etcd put returned no previous value".into()))?;
        Ok(KeyValue {
            key: key.to_owned(),
            value,
            create_revision,
            mod_revision: revision,
        })
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<(KeyValue, Revision)> {
        let mut compares = vec![Compare::version(key, CompareOp::Greater, 0)];
        if let Some(expected) = expected {
            compares.push(Compare::mod_revision(key, CompareOp::Equal, expected));
        }
        let txn = Txn::new()
            .when(compares)
            .and_then([TxnOp::delete(key, Some(DeleteOptions::new().with_prev_key()))])
            .or_else([TxnOp::get(key, None)]);
        let response = self.txn(txn).await?;
        if !response.succeeded() {
            return match first_get(&response)? {
                None => Err(StorageError::NotFound(key.to_owned())),
                Some(current) => Err(StorageError::Conflict {
                    key: key.to_owned(),
                    expected: expected.unwrap_or_default(),
                    current: Some(current),
                }),
            };
        }
        let revision = header_revision(response.header())?;
        let prev = response
            .op_responses()
            .into_iter()
            .find_map(|op| match op {
                TxnOpResponse::Delete(delete) => delete.prev_kvs().first().map(convert_kv),
                _ => None,
            })
            .ok_or_else(|| StorageError::Internal("etcd delete returned no previous value".into()))??;
        Ok((prev, revision))
    }

    /// Fails with [`StorageError::Compacted`] (`requested` = `after + 1`) when `after + 1` is
    /// already compacted at the time of the call; a compaction racing with the watch's creation
    /// is reported as the stream's first item instead. A modification or deletion made exactly
    /// at the compaction revision has lost its previous value, which the stream reports as
    /// `Compacted` too (see `convert_event`).
    async fn watch(&self, prefix: &str, after: Revision) -> Result<Box<dyn WatchStream>> {
        // etcd's start revision is inclusive and 0 means "now", so never go below 1.
        let start = after.saturating_add(1).max(1);
        // etcd only reports a compacted start revision asynchronously on the stream; a range
        // read at that revision tells us synchronously. A future revision is fine for a watch.
        let check = GetOptions::new().with_count_only().with_revision(start);
        let probe = self.call(|client| {
            let check = check.clone();
            async move { client.kv_client().get(PROBE_KEY, Some(check)).await }
        });
        if let Err(error) = probe.await? {
            match classify(&error) {
                Some(RevisionError::Future) => {}
                _ => return Err(self.revision_error(error, start).await),
            }
        }

        let options = WatchOptions::new()
            .with_prefix()
            .with_start_revision(start)
            .with_prev_key();
        // On the member the probe just reached.
        let mut client = self.client().watch_client();
        let mut stream = bounded(REQUEST_TIMEOUT, client.watch(prefix, Some(options))).await?;
        // The first response acknowledges the creation; anything else means it was refused.
        let created = bounded(REQUEST_TIMEOUT, stream.message()).await?;
        match created {
            Some(response) if response.created() && !response.canceled() => {}
            Some(response) if response.compact_revision() > 0 => {
                return Err(StorageError::Compacted {
                    requested: start,
                    compacted: response.compact_revision(),
                });
            }
            Some(response) => {
                return Err(StorageError::Internal(format!(
                    "etcd refused the watch: {}",
                    response.cancel_reason()
                )));
            }
            None => return Err(StorageError::Unavailable("etcd closed the watch".into())),
        }
        Ok(Box::new(EtcdWatch {
            stream,
            pending: VecDeque::new(),
            next_revision: start,
            done: false,
        }))
    }

    async fn current_revision(&self) -> Result<Revision> {
        // Gets are linearizable unless asked otherwise, so the header is the cluster's revision.
        let options = GetOptions::new().with_count_only();
        let response = self
            .run(|client| {
                let options = options.clone();
                async move { client.kv_client().get(PROBE_KEY, Some(options)).await }
            })
            .await?;
        header_revision(response.header())
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        let compact = self.call(|client| async move {
            let options = CompactionOptions::new().with_physical();
            client.kv_client().compact(revision, Some(options)).await
        });
        match compact.await? {
            Ok(_) => Ok(()),
            Err(error) => Err(self.revision_error(error, revision).await),
        }
    }
}

/// A watch on one etcd watch stream (one watcher per gRPC stream, so every response is ours).
struct EtcdWatch {
    stream: etcd_client::WatchStream,
    /// Items decoded from a response but not handed out yet (a response may hold many events).
    pending: VecDeque<Result<WatchItem>>,
    /// The first revision not delivered yet; reported if the watch gets compacted.
    next_revision: Revision,
    /// Set once the stream has ended or failed; `next` returns `None` afterwards.
    done: bool,
}

impl EtcdWatch {
    /// Turns one etcd response into items, ending the watch on cancellation or compaction.
    fn absorb(&mut self, response: WatchResponse) {
        if response.compact_revision() > 0 {
            self.finish(StorageError::Compacted {
                requested: self.next_revision,
                compacted: response.compact_revision(),
            });
            return;
        }
        if response.canceled() {
            self.finish(StorageError::Unavailable(format!(
                "etcd canceled the watch: {}",
                response.cancel_reason()
            )));
            return;
        }
        if response.created() {
            return;
        }
        if response.events().is_empty() {
            // A progress notification: every change up to the header's revision was sent.
            if let Some(header) = response.header() {
                self.pending.push_back(Ok(WatchItem::Progress(header.revision())));
            }
            return;
        }
        for event in response.events() {
            match convert_event(event) {
                Ok(event) => {
                    self.next_revision = event.revision() + 1;
                    self.pending.push_back(Ok(WatchItem::Event(event)));
                }
                Err(error) => {
                    // Skipping an event would silently lose a change, so end the watch (a
                    // watch re-established from the last delivered revision meets the same
                    // problem, so `Compacted` is the honest answer; see `convert_event`).
                    self.finish(error);
                    return;
                }
            }
        }
    }

    fn finish(&mut self, error: StorageError) {
        self.pending.push_back(Err(error));
        self.done = true;
    }
}

#[async_trait::async_trait]
impl WatchStream for EtcdWatch {
    async fn next(&mut self) -> Option<Result<WatchItem>> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Some(item);
            }
            if self.done {
                return None;
            }
            match self.stream.message().await {
                Ok(Some(response)) => self.absorb(response),
                Ok(None) => self.done = true,
                Err(error) => self.finish(map_error(error)),
            }
        }
    }

    /// etcd's progress request. Only etcd 3.4.31+ / 3.5.13+ delivers the answer after the events
    /// it covers; older servers answer at once, even while this watch is still replaying
    /// history ([`progress_is_ordered`], warned about in [`EtcdStorage::connect`]).
    async fn request_progress(&mut self) -> Result<()> {
        bounded(REQUEST_TIMEOUT, self.stream.request_progress()).await
    }
}

/// Converts one watch event. Deletions are recognized by their tombstone (version 0) rather
/// than `Event::event_type`, which panics on an unknown wire value.
///
/// etcd attaches `prev_kv` by reading at `revision - 1`; for a change made exactly at the
/// compaction revision that read fails and the previous value is silently missing. Reporting a
/// modification as a creation (or a deletion without its value) would mislead consumers, so that
/// is a [`StorageError::Compacted`]: the history this watch needs is gone. The compaction
/// revision is then exactly the event's (the watcher started at or after it, and `revision - 1`
/// is below it).
fn convert_event(event: &etcd_client::Event) -> Result<Event> {
    let kv = event
        .kv()
        .ok_or_else(|| StorageError::Internal("etcd watch event without a key".into()))?;
    let revision = kv.mod_revision();
    let lost = StorageError::Compacted {
        requested: revision,
        compacted: revision,
    };
    if kv.version() == 0 {
        let prev = event.prev_kv().ok_or(lost)?;
        return Ok(Event::Delete {
            prev: convert_kv(prev)?,
            revision,
        });
    }
    let kv = convert_kv(kv)?;
    // A create (including a re-create after a deletion) has no previous value by definition;
    // only trust `prev_kv` for modifications.
    if kv.create_revision == kv.mod_revision {
        return Ok(Event::Put { kv, prev: None });
    }
    let prev = convert_kv(event.prev_kv().ok_or(lost)?)?;
    Ok(Event::Put { kv, prev: Some(prev) })
}

fn convert_kv(kv: &etcd_client::KeyValue) -> Result<KeyValue> {
    let key = kv
        .key_str()
        .map_err(|error| StorageError::Internal(format!("non-UTF-8 key in etcd: {error}")))?;
    Ok(KeyValue {
        key: key.to_owned(),
        value: Bytes::copy_from_slice(kv.value()),
        create_revision: kv.create_revision(),
        mod_revision: kv.mod_revision(),
    })
}

/// The key of the single `get` in a transaction's else-branch, if it found one.
fn first_get(response: &TxnResponse) -> Result<Option<KeyValue>> {
    for op in response.op_responses() {
        if let TxnOpResponse::Get(get) = op {
            return get.kvs().first().map(convert_kv).transpose();
        }
    }
    Ok(None)
}

fn header_revision(header: Option<&etcd_client::ResponseHeader>) -> Result<Revision> {
    header
        .map(|header| header.revision())
        .ok_or_else(|| StorageError::Internal("etcd response without a header".into()))
}

/// The first key after every key starting with `prefix` (etcd's range end for a prefix).
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // Empty or all-0xff prefix: "\0" as range end means "to the end of the key space".
    vec![0]
}

/// Whether an etcd of `version` orders requested progress notifications after the events they
/// cover, as [`WatchStream::request_progress`] promises: fixed in 3.4.31 and 3.5.13
/// (etcd-io/etcd#15237, #17557). Unparseable versions are assumed fixed.
pub fn progress_is_ordered(version: &str) -> bool {
    let mut parts = version
        .trim_start_matches('v')
        .split(['.', '-', '+'])
        .map(|part| part.parse::<u64>().ok());
    let (Some(Some(major)), Some(Some(minor)), Some(Some(patch))) = (parts.next(), parts.next(), parts.next()) else {
        return true;
    };
    match (major, minor) {
        (3, 4) => patch >= 31,
        (3, 5) => patch >= 13,
        (major, minor) => (major, minor) > (3, 5),
    }
}

enum RevisionError {
    Compacted,
    Future,
}

/// Recognizes etcd's `ErrCompacted` / `ErrFutureRev`, which only exist as gRPC messages.
fn classify(error: &etcd_client::Error) -> Option<RevisionError> {
    let etcd_client::Error::GRpcStatus(status) = error else {
        return None;
    };
    let message = status.message();
    if message.contains("required revision has been compacted") {
        Some(RevisionError::Compacted)
    } else if message.contains("future revision") {
        Some(RevisionError::Future)
    } else {
        None
    }
}

/// Connection trouble is [`StorageError::Unavailable`] (retrying may help); the rest is internal.
fn map_error(error: etcd_client::Error) -> StorageError {
    use etcd_client::Error;
    // gRPC status codes are fixed by the gRPC spec; compared by number because `tonic` is not
    // a direct dependency of this crate.
    const CANCELLED: i32 = 1;
    const DEADLINE_EXCEEDED: i32 = 4;
    const UNAVAILABLE: i32 = 14;
    match &error {
        Error::TransportError(_) | Error::IoError(_) | Error::EndpointError(_) => {
            StorageError::Unavailable(error.to_string())
        }
        Error::GRpcStatus(status) if matches!(status.code() as i32, CANCELLED | DEADLINE_EXCEEDED | UNAVAILABLE) => {
            StorageError::Unavailable(error.to_string())
        }
        // The client's request channel to the watch task is gone: the stream is dead.
        Error::WatchError(_) => StorageError::Unavailable(error.to_string()),
        _ => StorageError::Internal(error.to_string()),
    }
}

/// Whether the call failed before its request reached the member (it could not connect), so
/// sending it to another member cannot apply it twice.
fn never_sent(error: &etcd_client::Error) -> bool {
    const UNAVAILABLE: i32 = 14;
    match error {
        etcd_client::Error::TransportError(_) => true,
        etcd_client::Error::GRpcStatus(status) => {
            status.code() as i32 == UNAVAILABLE && status.message().contains("connect")
        }
        _ => false,
    }
}

fn error_text<T>(result: &std::result::Result<T, etcd_client::Error>) -> String {
    result.as_ref().err().map(ToString::to_string).unwrap_or_default()
}

/// Runs an etcd call with a deadline, keeping etcd's own error for the caller to classify.
async fn bounded_raw<T>(
    timeout: Duration,
    call: impl Future<Output = std::result::Result<T, etcd_client::Error>>,
) -> Result<std::result::Result<T, etcd_client::Error>> {
    tokio::time::timeout(timeout, call)
        .await
        .map_err(|_| StorageError::Unavailable(format!("etcd did not answer within {timeout:?}")))
}

/// Runs an etcd call with a deadline, mapping every failure.
async fn bounded<T>(
    timeout: Duration,
    call: impl Future<Output = std::result::Result<T, etcd_client::Error>>,
) -> Result<T> {
    bounded_raw(timeout, call).await?.map_err(map_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_ordering_versions() {
        assert!(!progress_is_ordered("3.4.23"));
        assert!(progress_is_ordered("3.4.31"));
        assert!(!progress_is_ordered("3.5.12"));
        assert!(progress_is_ordered("3.5.13"));
        assert!(progress_is_ordered("3.6.0"));
        assert!(!progress_is_ordered("3.3.27"));
        assert!(progress_is_ordered("garbage"));
    }

    #[test]
    fn prefix_end_increments_the_last_byte() {
        assert_eq!(prefix_end(b"/a/"), b"/a0".to_vec());
        assert_eq!(prefix_end(b"a\xff"), b"b".to_vec());
        assert_eq!(prefix_end(b""), vec![0]);
        assert_eq!(prefix_end(b"\xff\xff"), vec![0]);
    }
}
