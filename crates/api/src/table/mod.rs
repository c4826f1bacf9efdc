//! Server-side Table printing (`kubectl get`): the column definitions and row cells of every
//! served kind, as upstream's `pkg/printers/internalversion` prints them (with `Wide` always on,
//! as the apiserver's table convertor does), and the `meta.k8s.io` Table around them.
//!
//! Everything here is a pure function of the stored JSON and `now`: ages are computed on the
//! server, as upstream does. Objects may be incomplete or wrongly typed; such fields print as
//! Go's zero values would (`""`, `0`, `<none>`, `<unknown>`), never a panic.
//!
//! Kinds upstream has no printer for (roles, cluster roles, limit ranges, unknown kinds) use the
//! apiserver's default convertor: `Name` and `Created At` (an RFC 3339 date). Resources served
//! from another stored version (events.k8s.io Events, autoscaling/v1 HPAs) are converted to the
//! stored version first, as upstream prints its internal version.

mod apps;
mod core;
mod descriptions;
mod format;
mod negotiate;
mod other;
mod pod;
mod value;

#[cfg(test)]
mod tests_api;
#[cfg(test)]
mod tests_apps;
#[cfg(test)]
mod tests_core;
#[cfg(test)]
mod tests_other;
#[cfg(test)]
mod tests_pod;
#[cfg(test)]
mod testutil;

use jiff::Timestamp;
use serde_json::{Map, Value, json};

pub use negotiate::{
    Conversion, IncludeObject, InvalidIncludeObject, TableVersion, negotiate_accept, parse_include_object,
    parse_table_accept,
};

use crate::registry::{self, ResourceDef};

/// One column of a Table (`metav1.TableColumnDefinition`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Column {
    pub(crate) name: &'static str,
    pub(crate) ty: &'static str,
    pub(crate) format: &'static str,
    pub(crate) description: &'static str,
    /// 0: always shown; 1: only with `-o wide`.
    pub(crate) priority: i32,
}

/// A column shown by default.
pub(crate) const fn col(name: &'static str, ty: &'static str, description: &'static str) -> Column {
    Column {
        name,
        ty,
        format: "",
        description,
        priority: 0,
    }
}

/// A column shown only with `-o wide`.
pub(crate) const fn wide(name: &'static str, ty: &'static str, description: &'static str) -> Column {
    Column {
        name,
        ty,
        format: "",
        description,
        priority: 1,
    }
}

/// The `Name` column every printer starts with.
pub(crate) const NAME: Column = Column {
    name: "Name",
    ty: "string",
    format: "name",
    description: descriptions::NAME,
    priority: 0,
};

/// The `Age` column.
pub(crate) const AGE: Column = col("Age", "string", descriptions::CREATION);

/// How one kind prints.
pub(crate) struct Printer {
    pub(crate) columns: &'static [Column],
    pub(crate) cells: fn(&Value, Timestamp) -> Vec<Value>,
    /// Upstream's generic convertors (default, CRD) leave `rows` nil for an empty list, which
    /// encodes as `null`; the printers' list handlers give `[]`.
    pub(crate) null_rows_when_empty: bool,
}

/// The printer for a resource's stored group and kind.
fn printer(group: &str, kind: &str) -> &'static Printer {
    match (group, kind) {
        ("", "Pod") => &pod::POD,
        ("", "Namespace") => &core::NAMESPACE,
        ("", "Node") => &core::NODE,
        ("", "Service") => &core::SERVICE,
        ("", "Endpoints") => &core::ENDPOINTS,
        ("", "ConfigMap") => &core::CONFIG_MAP,
        ("", "Secret") => &core::SECRET,
        ("", "Event") => &core::EVENT,
        ("", "ServiceAccount") => &core::SERVICE_ACCOUNT,
        ("", "PersistentVolume") => &core::PERSISTENT_VOLUME,
        ("", "PersistentVolumeClaim") => &core::PERSISTENT_VOLUME_CLAIM,
        ("", "ResourceQuota") => &core::RESOURCE_QUOTA,
        ("apps", "Deployment") => &apps::DEPLOYMENT,
        ("apps", "ReplicaSet") => &apps::REPLICA_SET,
        ("apps", "StatefulSet") => &apps::STATEFUL_SET,
        ("apps", "DaemonSet") => &apps::DAEMON_SET,
        ("apps", "ControllerRevision") => &apps::CONTROLLER_REVISION,
        ("batch", "Job") => &apps::JOB,
        ("batch", "CronJob") => &apps::CRON_JOB,
        ("autoscaling", "HorizontalPodAutoscaler") => &apps::HPA,
        ("coordination.k8s.io", "Lease") => &other::LEASE,
        ("discovery.k8s.io", "EndpointSlice") => &other::ENDPOINT_SLICE,
        ("networking.k8s.io", "Ingress") => &other::INGRESS,
        ("networking.k8s.io", "NetworkPolicy") => &other::NETWORK_POLICY,
        ("rbac.authorization.k8s.io", "RoleBinding") => &other::ROLE_BINDING,
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => &other::CLUSTER_ROLE_BINDING,
        ("apiextensions.k8s.io", "CustomResourceDefinition") => &other::CRD,
        _ => &other::DEFAULT,
    }
}

/// The group and kind a resource's objects are printed as: the stored version's for a resource
/// served through a conversion.
fn printed_as(def: &ResourceDef) -> (&'static str, &'static str) {
    if def.conversion.is_some()
        && let Some(stored) = registry::storage_def(def.storage)
    {
        return (stored.group, stored.kind);
    }
    (def.group, def.kind)
}

fn printer_for(def: &ResourceDef) -> &'static Printer {
    let (group, kind) = printed_as(def);
    printer(group, kind)
}

/// The object as the printer reads it: converted to the stored version when `def` is served
/// through a conversion.
fn printable(def: &ResourceDef, object: &Value) -> Value {
    match def.conversion {
        Some(conversion) => (conversion.to_storage)(object.clone()),
        None => object.clone(),
    }
}

fn column_json(c: &Column) -> Value {
    json!({
        "name": c.name,
        "type": c.ty,
        "format": c.format,
        "description": c.description,
        "priority": c.priority,
    })
}

/// The Table column definitions for a resource, wide (priority 1) columns included, each
/// `{"name","type","format","description","priority"}`.
pub fn column_definitions(def: &ResourceDef) -> Vec<Value> {
    printer_for(def).columns.iter().map(column_json).collect()
}

/// The cells of one object's row, one per column of [`column_definitions`]: strings, JSON
/// numbers for integer columns, booleans for boolean columns.
pub fn row(def: &ResourceDef, object: &Value, now: Timestamp) -> Vec<Value> {
    let p = printer_for(def);
    let object = printable(def, object);
    let mut cells = (p.cells)(&object, now);
    cells.resize(p.columns.len(), Value::from(""));
    cells
}

/// A `meta.k8s.io/v1` Table of `objects` (see [`table_as`]).
pub fn table(
    def: &ResourceDef,
    objects: &[Value],
    include_object: IncludeObject,
    with_headers: bool,
    list_meta: Value,
    now: Timestamp,
) -> Value {
    table_as(
        TableVersion::V1,
        def,
        objects,
        include_object,
        with_headers,
        list_meta,
        now,
    )
}

/// A Table in the requested `meta.k8s.io` version: `metadata` is `list_meta` (the list's
/// `resourceVersion`/`continue`, or a single object's `resourceVersion`); `columnDefinitions` is
/// `null` without headers (every watch event after the first); each row has its `cells`, the
/// `conditions` upstream adds for finished pods, and `object` as `include_object` says
/// (`PartialObjectMetadata` in the Table's own group-version by default).
pub fn table_as(
    version: TableVersion,
    def: &ResourceDef,
    objects: &[Value],
    include_object: IncludeObject,
    with_headers: bool,
    list_meta: Value,
    now: Timestamp,
) -> Value {
    let p = printer_for(def);
    let mut rows = Vec::with_capacity(objects.len());
    for object in objects {
        let printed = printable(def, object);
        let mut cells = (p.cells)(&printed, now);
        cells.resize(p.columns.len(), Value::from(""));
        let mut row = Map::new();
        row.insert("cells".into(), Value::Array(cells));
        if std::ptr::eq(p, &pod::POD)
            && let Some(conditions) = pod::row_conditions(&printed)
        {
            row.insert("conditions".into(), conditions);
        }
        row.insert("object".into(), row_object(version, def, object, include_object));
        rows.push(Value::Object(row));
    }
    let rows = if rows.is_empty() && p.null_rows_when_empty {
        Value::Null
    } else {
        Value::Array(rows)
    };
    let columns = if with_headers {
        Value::Array(p.columns.iter().map(column_json).collect())
    } else {
        Value::Null
    };
    let metadata = if list_meta.is_object() { list_meta } else { json!({}) };
    json!({
        "kind": "Table",
        "apiVersion": version.api_version(),
        "metadata": metadata,
        "columnDefinitions": columns,
        "rows": rows,
    })
}

/// An object's metadata as a `PartialObjectMetadata` in `version` (upstream's
/// `meta.AsPartialObjectMetadata`: the whole `metadata`, nothing else).
pub fn partial_object_metadata(version: TableVersion, object: &Value) -> Value {
    let metadata = object
        .get("metadata")
        .filter(|m| m.is_object())
        .cloned()
        .unwrap_or_else(|| json!({}));
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": version.api_version(),
        "metadata": metadata,
    })
}

/// A list as a `PartialObjectMetadataList` in `version`: each item's metadata (each a
/// `PartialObjectMetadata` with its kind and apiVersion), `list_meta` as the list's.
pub fn partial_object_metadata_list(version: TableVersion, objects: &[Value], list_meta: Value) -> Value {
    let items: Vec<Value> = objects
        .iter()
        .map(|object| partial_object_metadata(version, object))
        .collect();
    let metadata = if list_meta.is_object() { list_meta } else { json!({}) };
    json!({
        "kind": "PartialObjectMetadataList",
        "apiVersion": version.api_version(),
        "metadata": metadata,
        "items": items,
    })
}

/// A row's `object`.
fn row_object(version: TableVersion, def: &ResourceDef, object: &Value, include: IncludeObject) -> Value {
    match include {
        IncludeObject::None => Value::Null,
        IncludeObject::Metadata => partial_object_metadata(version, object),
        IncludeObject::Object => {
            let mut full = object.clone();
            if let Some(map) = full.as_object_mut() {
                map.entry("kind").or_insert_with(|| Value::from(def.kind));
                map.entry("apiVersion")
                    .or_insert_with(|| Value::from(def.api_version()));
            }
            full
        }
    }
}
