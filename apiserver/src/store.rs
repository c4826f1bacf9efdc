//! The generic object store over `storage` (upstream's `genericregistry.Store`): reads served
//! from the watch caches with upstream's resourceVersion semantics, and the bookkeeping every
//! write needs. Writes live in `write.rs`, service address allocation in `services.rs`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use api::ResourceDef;
use base64::Engine;
use serde_json::{Value, json};
use storage::{ListRequest, Revision, Storage};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::cache::{CachedObject, WatchCache};
use crate::error::{ApiError, ApiResult};
use crate::request::{ListOptions, RvMatch, parse_rv};
use crate::services::Allocators;

/// How long a read waits for the cache to reach a revision before answering from storage.
const CACHE_WAIT: Duration = Duration::from_secs(3);

/// Hands out the store's current revision for consistent reads, one storage round trip per
/// batch: every request that arrives while a fetch is in flight waits for the next fetch, which
/// starts after it arrived, so the revision it gets covers every write completed before it.
#[derive(Clone)]
pub struct RevisionSource {
    tx: mpsc::UnboundedSender<oneshot::Sender<Result<Revision, storage::StorageError>>>,
}

impl RevisionSource {
    pub fn start(storage: Arc<dyn Storage>) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<oneshot::Sender<Result<Revision, storage::StorageError>>>();
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                while let Ok(next) = rx.try_recv() {
                    batch.push(next);
                }
                let result = storage.current_revision().await;
                for waiter in batch {
                    let _ = waiter.send(result.clone());
                }
            }
        });
        Self { tx }
    }

    pub async fn current(&self) -> ApiResult<Revision> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(tx).map_err(|_| ApiError::unavailable("shutting down"))?;
        Ok(rx.await.map_err(|_| ApiError::unavailable("shutting down"))??)
    }
}

/// The result of a list.
pub struct ListResult {
    /// The matching objects as cached (stored version, resourceVersion set, pre-serialized).
    pub items: Vec<Arc<CachedObject>>,
    pub revision: Revision,
    pub continue_token: Option<String>,
    pub remaining: Option<i64>,
}

/// The continue token: the revision of the first page and the key to start from, relative to the
/// resource prefix (upstream's shape, base64-encoded JSON).
#[derive(serde::Serialize, serde::Deserialize)]
struct ContinueToken {
    v: String,
    rv: Revision,
    start: String,
}

pub fn encode_continue(revision: Revision, start: &str) -> String {
    let token = ContinueToken {
        v: "meta.k8s.io/v1".into(),
        rv: revision,
        start: start.into(),
    };
    base64::engine::general_purpose::URL_SAFE.encode(serde_json::to_vec(&token).unwrap_or_default())
}

fn decode_continue(token: &str) -> ApiResult<(Revision, String)> {
    let invalid = |why: &str| ApiError::bad_request(format!("continue key is not valid: {why}"));
    let bytes = base64::engine::general_purpose::URL_SAFE
        .decode(token)
        .or_else(|_| base64::engine::general_purpose::STANDARD.decode(token))
        .map_err(|_| invalid("not base64"))?;
    let token: ContinueToken = serde_json::from_slice(&bytes).map_err(|_| invalid("not a continue token"))?;
    if token.v != "meta.k8s.io/v1" {
        return Err(invalid(
            "incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
        ));
    }
    if token.rv <= 0 || token.start.contains("..") || token.start.starts_with('/') {
        return Err(invalid("invalid start"));
    }
    Ok((token.rv, token.start))
}

/// The object store shared by all handlers.
pub struct Store {
    pub storage: Arc<dyn Storage>,
    caches: HashMap<&'static str, Arc<WatchCache>>,
    pub revisions: RevisionSource,
    pub allocators: Allocators,
    /// How long Events are kept after their last write (`--event-ttl`); zero keeps them.
    pub event_ttl: Duration,
}

impl Store {
    pub fn new(
        storage: Arc<dyn Storage>,
        allocators: Allocators,
        event_ttl: Duration,
        cancel: &CancellationToken,
    ) -> Self {
        let mut caches = HashMap::new();
        for def in api::RESOURCES {
            caches
                .entry(def.storage)
                .or_insert_with(|| WatchCache::start(storage.clone(), def.storage_prefix(), cancel.child_token()));
        }
        let revisions = RevisionSource::start(storage.clone());
        Self {
            storage,
            caches,
            revisions,
            allocators,
            event_ttl,
        }
    }

    /// The ttl writes of `def`'s objects carry: Events expire (core/v1 and events.k8s.io/v1
    /// share their storage), as upstream's `--event-ttl` makes them.
    pub fn ttl(&self, def: &ResourceDef) -> Option<Duration> {
        (def.storage == "events" && !self.event_ttl.is_zero()).then_some(self.event_ttl)
    }

    pub fn cache(&self, def: &ResourceDef) -> &Arc<WatchCache> {
        // Every def's storage segment got a cache in `new`.
        &self.caches[def.storage]
    }

    pub fn caches(&self) -> impl Iterator<Item = (&'static str, &Arc<WatchCache>)> {
        self.caches.iter().map(|(k, v)| (*k, v))
    }

    pub fn all_ready(&self) -> bool {
        self.caches.values().all(|c| c.is_ready())
    }

    /// Brings `def`'s cache to `revision`: events in flight usually land at once; otherwise,
    /// when storage's progress notifications cannot be trusted, the cache is proven current by
    /// asking storage whether its prefix changed; else it waits for events or progress.
    async fn reach(&self, def: &ResourceDef, revision: Revision) -> bool {
        let cache = self.cache(def);
        if cache.wait_for(revision, Duration::ZERO).await {
            return true;
        }
        if !self.storage.progress_is_reliable() {
            if cache.wait_for(revision, Duration::from_millis(2)).await {
                return true;
            }
            if cache.prove_current(self.storage.as_ref(), revision).await {
                return true;
            }
        }
        cache.wait_for(revision, CACHE_WAIT).await
    }

    /// Waits until `def`'s cache reflects every write completed before this call.
    pub async fn sync_cache(&self, def: &ResourceDef) -> ApiResult<Revision> {
        let revision = self.revisions.current().await?;
        if self.reach(def, revision).await {
            Ok(revision)
        } else {
            Err(ApiError::timeout(
                "Timeout: Too large resource version: the watch cache did not catch up with storage",
            ))
        }
    }

    /// Waits until the cache has reached `revision` (a client-given resourceVersion).
    async fn wait_cache(&self, def: &ResourceDef, revision: Revision) -> ApiResult<()> {
        if self.reach(def, revision).await {
            return Ok(());
        }
        let current = self.revisions.current().await?;
        let mut err = ApiError::timeout(format!("Too large resource version: {revision}, current: {current}"));
        err.causes.push(crate::error::Cause {
            reason: "ResourceVersionTooLarge".into(),
            message: "Too large resource version".into(),
            field: None,
        });
        Err(err)
    }

    /// Brings the cache to the freshness a resourceVersion asks for: `None` → current, `0` →
    /// anything, `N` → at least N.
    pub async fn fresh_enough(&self, def: &ResourceDef, resource_version: Option<&str>) -> ApiResult<()> {
        match resource_version {
            None => self.sync_cache(def).await.map(drop),
            Some("0") => {
                if self.cache(def).is_ready() {
                    Ok(())
                } else {
                    self.sync_cache(def).await.map(drop)
                }
            }
            Some(rv) => self.wait_cache(def, parse_rv(rv)?).await,
        }
    }

    /// The served form of a stored object (converted when `def` is not the stored version).
    pub fn served(def: &ResourceDef, object: &CachedObject) -> Value {
        match def.conversion {
            Some(conversion) => (conversion.from_storage)(object.value.clone()),
            None => object.value.clone(),
        }
    }

    /// GET of one object as cached (stored version).
    pub async fn get_cached(
        &self,
        def: &ResourceDef,
        namespace: Option<&str>,
        name: &str,
        resource_version: Option<&str>,
    ) -> ApiResult<Arc<CachedObject>> {
        self.fresh_enough(def, resource_version).await?;
        let key = def.storage_key(namespace, name);
        self.cache(def)
            .get(&key)
            .0
            .ok_or_else(|| ApiError::not_found(def, name))
    }

    /// GET of one object.
    pub async fn get(
        &self,
        def: &ResourceDef,
        namespace: Option<&str>,
        name: &str,
        resource_version: Option<&str>,
    ) -> ApiResult<Value> {
        self.fresh_enough(def, resource_version).await?;
        let key = def.storage_key(namespace, name);
        match self.cache(def).get(&key) {
            (Some(object), _) => Ok(Self::served(def, &object)),
            (None, _) => Err(ApiError::not_found(def, name)),
        }
    }

    /// The key prefix a (possibly all-namespaces) list covers.
    pub fn scope_prefix(def: &ResourceDef, namespace: Option<&str>) -> String {
        match namespace {
            Some(ns) if def.namespaced => format!("{}{}/", def.storage_prefix(), ns),
            _ => def.storage_prefix(),
        }
    }

    /// LIST with selectors, pagination and resourceVersion semantics.
    pub async fn list(
        &self,
        def: &ResourceDef,
        namespace: Option<&str>,
        options: &ListOptions,
    ) -> ApiResult<ListResult> {
        let prefix = Self::scope_prefix(def, namespace);
        let filter = Filter::new(def, namespace, options);
        if let Some(token) = &options.continue_token {
            let (revision, start) = decode_continue(token)?;
            return self
                .list_from_storage(def, &prefix, &filter, options.limit, revision, Some(start))
                .await;
        }
        if options.rv_match == RvMatch::Exact {
            let revision = parse_rv(options.resource_version.as_deref().unwrap_or("0"))?;
            return self
                .list_from_storage(def, &prefix, &filter, options.limit, revision, None)
                .await;
        }
        self.fresh_enough(def, options.resource_version.as_deref()).await?;
        let (objects, revision) = self.cache(def).list(&prefix);
        let mut items = Vec::new();
        let mut continue_token = None;
        let mut remaining = None;
        let limit = usize::try_from(options.limit).unwrap_or(0);
        for (i, object) in objects.iter().enumerate() {
            if !filter.matches(object) {
                continue;
            }
            if limit > 0 && items.len() == limit {
                // Later pages are read from storage at this revision.
                let last = &objects[i - 1].key;
                continue_token = Some(encode_continue(
                    revision,
                    &format!("{}\0", relative(&def.storage_prefix(), last)),
                ));
                if filter.is_empty() {
                    remaining = Some((objects.len() - i) as i64);
                }
                break;
            }
            items.push(object.clone());
        }
        Ok(ListResult {
            items,
            revision,
            continue_token,
            remaining,
        })
    }

    /// A page (or a whole list at an exact revision) read from storage.
    async fn list_from_storage(
        &self,
        def: &ResourceDef,
        prefix: &str,
        filter: &Filter<'_>,
        limit: i64,
        revision: Revision,
        start: Option<String>,
    ) -> ApiResult<ListResult> {
        let resource_prefix = def.storage_prefix();
        let mut start_key = start.map(|s| format!("{resource_prefix}{s}"));
        if let Some(key) = &start_key
            && !key.starts_with(prefix)
            && key.as_str() < prefix
        {
            start_key = Some(prefix.to_string());
        }
        let mut items = Vec::new();
        loop {
            let page = self
                .storage
                .list(ListRequest { prefix: prefix.to_string(), start_key: start_key.clone(), limit: if limit > 0 { limit } else { 0 }, revision })
                .await
                .map_err(|e| match e {
                    storage::StorageError::Compacted { .. } => ApiError::expired(
                        "The provided continue parameter is too old to display a consistent list result. You can start a \
                         new list without the continue parameter.",
                    ),
                    other => other.into(),
                })?;
            let mut last_key = None;
            for kv in &page.kvs {
                last_key = Some(kv.key.clone());
                let Some(object) = CachedObject::from_kv(kv) else {
                    continue;
                };
                if filter.matches(&object) {
                    items.push(Arc::new(object));
                    if limit > 0 && items.len() as i64 == limit {
                        break;
                    }
                }
            }
            let consumed_all = last_key.as_ref() == page.kvs.last().map(|kv| &kv.key);
            let more = page.remaining > 0 || !consumed_all;
            if limit > 0 && items.len() as i64 == limit && more {
                let last = last_key.unwrap_or_default();
                let remaining = if filter.is_empty() {
                    let skipped = page
                        .kvs
                        .iter()
                        .position(|kv| kv.key == last)
                        .map(|p| page.kvs.len() - p - 1)
                        .unwrap_or(0);
                    Some(page.remaining + skipped as i64)
                } else {
                    None
                };
                return Ok(ListResult {
                    items,
                    revision: page.revision,
                    continue_token: Some(encode_continue(
                        page.revision,
                        &format!("{}\0", relative(&resource_prefix, &last)),
                    )),
                    remaining,
                });
            }
            if !more || last_key.is_none() {
                return Ok(ListResult {
                    items,
                    revision: page.revision,
                    continue_token: None,
                    remaining: None,
                });
            }
            start_key = last_key.map(|k| format!("{k}\0"));
        }
    }
}

fn relative<'a>(prefix: &str, key: &'a str) -> &'a str {
    key.strip_prefix(prefix).unwrap_or(key)
}

/// Label, field and namespace filtering of objects (lists and watches).
pub struct Filter<'a> {
    def: &'a ResourceDef,
    namespace: Option<String>,
    labels: Option<api::selector::LabelSelector>,
    fields: Option<api::selector::FieldSelector>,
}

impl<'a> Filter<'a> {
    pub fn new(def: &'a ResourceDef, namespace: Option<&str>, options: &ListOptions) -> Self {
        Self {
            def,
            namespace: namespace.filter(|_| def.namespaced).map(str::to_string),
            labels: options.label_selector.clone().filter(|s| !s.is_empty()),
            fields: options.field_selector.clone(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_none() && self.fields.is_none()
    }

    pub fn matches(&self, object: &CachedObject) -> bool {
        if let Some(ns) = &self.namespace
            && object.namespace.as_deref() != Some(ns.as_str())
        {
            return false;
        }
        if let Some(labels) = &self.labels
            && !labels.matches(&object.labels)
        {
            return false;
        }
        if let Some(fields) = &self.fields {
            return fields.matches(|field| field_value(self.def, object, field));
        }
        true
    }
}

/// The value of a selectable field of an object.
pub fn field_value(def: &ResourceDef, object: &CachedObject, field: &str) -> Option<String> {
    match field {
        "metadata.name" => return Some(object.name.clone()),
        "metadata.namespace" => return Some(object.namespace.clone().unwrap_or_default()),
        _ => {}
    }
    let selectable = def.selectable_fields.iter().find(|f| f.name == field)?;
    let mut value = &object.value;
    for part in selectable.path.split('.') {
        match value.get(part) {
            Some(v) => value = v,
            None => return Some(selectable.absent.to_string()),
        }
    }
    Some(match value {
        Value::String(s) => s.clone(),
        Value::Null => selectable.absent.to_string(),
        other => other.to_string(),
    })
}

impl ListResult {
    /// The items in `def`'s version.
    pub fn served(&self, def: &ResourceDef) -> Vec<Value> {
        self.items.iter().map(|o| Store::served(def, o)).collect()
    }

    /// The list's `metadata`.
    pub fn metadata(&self) -> Value {
        let mut metadata = json!({"resourceVersion": self.revision.to_string()});
        if let Some(token) = &self.continue_token {
            metadata["continue"] = json!(token);
        }
        if let Some(remaining) = self.remaining {
            metadata["remainingItemCount"] = json!(remaining);
        }
        metadata
    }
}

/// The bytes of a list response. Items in the stored version are copied from their cached
/// serialization rather than cloned and re-encoded (lists are the apiserver's hottest read).
pub fn list_body(def: &ResourceDef, result: &ListResult) -> bytes::Bytes {
    let head = json!({"kind": def.list_kind(), "apiVersion": def.api_version(), "metadata": result.metadata()});
    let head = serde_json::to_vec(&head).unwrap_or_default();
    let items_len: usize = result.items.iter().map(|o| o.json.len() + 1).sum();
    let mut out = bytes::BytesMut::with_capacity(head.len() + items_len + 16);
    // `head` is a JSON object: reopen it to append the items.
    out.extend_from_slice(&head[..head.len().saturating_sub(1)]);
    out.extend_from_slice(b",\"items\":[");
    for (i, object) in result.items.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b",");
        }
        match def.conversion {
            None => out.extend_from_slice(&object.json),
            Some(_) => out.extend_from_slice(&serde_json::to_vec(&Store::served(def, object)).unwrap_or_default()),
        }
    }
    out.extend_from_slice(b"]}");
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip_and_reject_garbage() {
        let token = encode_continue(42, "default/web\0");
        assert_eq!(decode_continue(&token).unwrap(), (42, "default/web\0".to_string()));
        assert_eq!(decode_continue("!!!").unwrap_err().code, 400);
        let evil = base64::engine::general_purpose::URL_SAFE.encode(br#"{"v":"meta.k8s.io/v1","rv":3,"start":"../x"}"#);
        assert_eq!(decode_continue(&evil).unwrap_err().code, 400);
    }
}
