//! ResourceQuota admission (upstream's `ResourceQuota` plugin) for creates and for updates
//! of the kinds whose usage can grow (Services, claims): an object whose namespace has quotas
//! that count it is refused with 403 when it (or its growth) would exceed one, and otherwise
//! charged to them — each quota's `status.used` raised by a compare-and-swap before
//! the object is stored, so concurrent creates cannot both take the last unit. The
//! resourcequota controller later recomputes `status.used` from what exists (releasing what
//! deleted objects, or creates that failed after the charge, held). The accounting itself is
//! `api::quota`.

use api::ResourceDef;
use bytes::Bytes;
use serde_json::Value;
use storage::{ListRequest, StorageError};

use crate::cache::CachedObject;
use crate::error::{ApiError, ApiResult};
use crate::store::Store;

/// How many times the charge is retried after another writer changed a quota.
const MAX_RETRIES: usize = 16;

fn quota_def() -> &'static ResourceDef {
    api::registry::find("", "v1", "resourcequotas").expect("resourcequotas are registered")
}

/// Admission's 403: `<resource> "<name>" is forbidden: <why>`.
pub fn forbidden(def: &ResourceDef, name: &str, refused: &api::quota::Refused) -> ApiError {
    let mut error = ApiError::forbidden(format!("{} {name:?} is forbidden: {refused}", def.qualified_resource()));
    error.details = Some(Box::new((
        def.group.to_string(),
        def.plural.to_string(),
        name.to_string(),
    )));
    error
}

/// Checks `object` (about to be created as `name` in `namespace`, or to replace `old`)
/// against the namespace's quotas and charges it to them (nothing is written on a dry run).
pub async fn charge(
    store: &Store,
    def: &ResourceDef,
    namespace: &str,
    name: &str,
    object: &Value,
    old: Option<&Value>,
    dry_run: bool,
) -> ApiResult<()> {
    if old.is_some() && !api::quota::handles_update(def.group, def.plural) {
        return Ok(());
    }
    let rq = quota_def();
    let prefix = Store::scope_prefix(rq, Some(namespace));
    // The common case costs one cache lookup: no quota in the namespace.
    if store.cache(rq).list(&prefix).0.is_empty() {
        return Ok(());
    }
    let now = jiff::Timestamp::now();
    // Quotas charged already: a retry after a lost race checks and charges only the others.
    let mut done = std::collections::HashSet::new();
    for _ in 0..MAX_RETRIES {
        let listed = store
            .storage
            .list(ListRequest {
                prefix: prefix.clone(),
                ..Default::default()
            })
            .await?;
        let quotas: Vec<(String, i64, Value)> = listed
            .kvs
            .iter()
            .filter(|kv| !done.contains(&kv.key))
            .filter_map(|kv| {
                let cached = CachedObject::from_kv(kv)?;
                Some((kv.key.clone(), kv.mod_revision, Store::served(rq, &cached)))
            })
            .collect();
        let values: Vec<Value> = quotas.iter().map(|(_, _, v)| v.clone()).collect();
        let charged = api::quota::charge(&values, def.group, def.plural, object, old, now)
            .map_err(|refused| forbidden(def, name, &refused))?;
        if dry_run || charged.is_empty() {
            return Ok(());
        }
        let mut lost_race = false;
        for (index, used) in charged {
            let (key, revision, quota) = &quotas[index];
            let mut updated = quota.clone();
            updated["status"]["used"] = api::quota::to_json(&used);
            if let Some(meta) = updated["metadata"].as_object_mut() {
                meta.remove("resourceVersion");
            }
            let bytes = Bytes::from(serde_json::to_vec(&updated).unwrap_or_default());
            match store.storage.update(key, *revision, bytes).await {
                Ok(_) => {
                    done.insert(key.clone());
                }
                Err(StorageError::Conflict { .. }) => {
                    lost_race = true;
                    break;
                }
                Err(other) => return Err(other.into()),
            }
        }
        if !lost_race {
            return Ok(());
        }
    }
    Err(ApiError::new(
        409,
        "Conflict",
        "too many concurrent quota updates; try again".to_string(),
    ))
}
