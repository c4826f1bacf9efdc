//! LimitRange admission (upstream's `LimitRanger` plugin): on pod creation the defaults of the
//! namespace's LimitRanges are filled in ([`default`]), then pods and PersistentVolumeClaims
//! are checked against their min / max / ratio constraints ([`check`]), refused with 403 as
//! upstream refuses them. Runs before quota admission, so quotas see the defaulted
//! resources. LimitRanges come from the watch cache, as upstream reads them from an informer.
//! The rules themselves are `api::limitrange`.

use api::ResourceDef;
use serde_json::Value;

use crate::error::ApiResult;
use crate::store::Store;

fn limit_range_def() -> &'static ResourceDef {
    api::registry::find("", "v1", "limitranges").expect("limitranges are registered")
}

/// The namespace's LimitRanges, when the plugin looks at this write at all.
fn limit_ranges(store: &Store, def: &ResourceDef, namespace: &str, update: bool) -> Vec<Value> {
    if !api::limitrange::applies(def.group, def.plural, update) {
        return Vec::new();
    }
    let lr = limit_range_def();
    let prefix = Store::scope_prefix(lr, Some(namespace));
    store
        .cache(lr)
        .list(&prefix)
        .0
        .iter()
        .map(|cached| Store::served(lr, cached))
        .collect()
}

/// The mutating half, for a pod being created: fills in the LimitRanges' default requests and
/// limits. Returns whether the object changed (and so must be validated again).
pub fn default(store: &Store, def: &ResourceDef, namespace: &str, object: &mut Value) -> bool {
    if def.plural != "pods" {
        return false;
    }
    let mut changed = false;
    for lr in limit_ranges(store, def, namespace, false) {
        changed |= api::limitrange::default_pod(&lr, object);
    }
    changed
}

/// The validating half: refuses `object` (created, or replacing `old`) when it breaks a
/// constraint of one of the namespace's LimitRanges. Objects being deleted are let through.
pub fn check(
    store: &Store,
    def: &ResourceDef,
    namespace: &str,
    name: &str,
    object: &Value,
    old: Option<&Value>,
) -> ApiResult<()> {
    if old.is_some_and(|o| o["metadata"].get("deletionTimestamp").is_some_and(|t| !t.is_null())) {
        return Ok(());
    }
    for lr in limit_ranges(store, def, namespace, old.is_some()) {
        api::limitrange::validate(&lr, def.group, def.plural, object)
            .map_err(|refused| crate::quota::forbidden(def, name, &refused))?;
    }
    Ok(())
}
