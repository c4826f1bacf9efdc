//! Field managers on writes: `metadata.managedFields` bookkeeping for creates, updates and
//! patches (operation `Update`, manager from `fieldManager` or the User-Agent), and server-side
//! apply (`PATCH` with `application/apply-patch+yaml`): create when absent, merge and prune
//! otherwise, 409 with `FieldManagerConflict` causes when another manager owns a changed
//! field and the request is not forced. The field logic is `api::managed`'s.

use api::ResourceDef;
use api::managed::{self, Conflict, Operation, Writer};
use api::registry::Subresource;
use http::{HeaderMap, StatusCode, header};
use serde_json::{Value, json};

use crate::body::FieldValidation;
use crate::error::{ApiError, ApiResult, Cause};
use crate::request::Query;
use crate::store::Store;

/// Upstream's limit on a manager's name.
const MAX_MANAGER_LEN: usize = 128;

/// Who is writing, and how.
#[derive(Clone, Debug)]
pub struct FieldManager {
    pub name: String,
    pub operation: Operation,
    pub subresource: &'static str,
    pub force: bool,
}

fn subresource_name(sub: Option<Subresource>) -> &'static str {
    match sub {
        Some(Subresource::Status) => "status",
        Some(Subresource::Scale) => "scale",
        Some(Subresource::Finalize) => "finalize",
        _ => "",
    }
}

fn now() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

impl FieldManager {
    /// The `Update` manager of a request: `fieldManager`, else the User-Agent up to its first
    /// `/` (`kubectl/v1.37.1 (linux/amd64) …` is `kubectl`).
    pub fn for_update(query: &Query, headers: &HeaderMap, sub: Option<Subresource>) -> Self {
        let name = match query.get("fieldManager").filter(|m| !m.is_empty()) {
            Some(name) => name.to_string(),
            None => headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(|ua| {
                    ua.split('/')
                        .next()
                        .unwrap_or_default()
                        .chars()
                        .take(MAX_MANAGER_LEN)
                        .collect()
                })
                .unwrap_or_default(),
        };
        Self {
            name,
            operation: Operation::Update,
            subresource: subresource_name(sub),
            force: false,
        }
    }

    fn writer<'a>(&'a self, api_version: &'a str, time: &'a str) -> Writer<'a> {
        Writer {
            manager: &self.name,
            operation: self.operation,
            api_version,
            subresource: self.subresource,
            time,
        }
    }
}

fn supplied_list(supplied: Option<&Value>) -> Option<&Vec<Value>> {
    supplied.and_then(Value::as_array).filter(|l| !l.is_empty())
}

/// Records the write of `new` (replacing `live`; `None` on create) in its managedFields.
/// `supplied` is the managedFields the client sent: for an apply the entries computed from
/// it; for an update a replacement list (an empty list keeps the live entries, `[{}]` clears
/// them all, as upstream).
pub fn record(
    def: &ResourceDef,
    manager: &FieldManager,
    live: Option<&Value>,
    new: &mut Value,
    supplied: Option<&Value>,
) {
    let Some(meta) = new.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    if manager.operation == Operation::Apply {
        match supplied {
            Some(entries) => meta.insert("managedFields".into(), entries.clone()),
            None => meta.remove("managedFields"),
        };
        return;
    }
    let live_entries = live.map(|l| managed::decode(l).unwrap_or_default()).unwrap_or_default();
    let entries = match supplied_list(supplied) {
        Some(list) if list.len() == 1 && list[0].as_object().is_some_and(|o| o.is_empty()) => {
            meta.remove("managedFields");
            return;
        }
        Some(list) if live.and_then(|l| l["metadata"].get("managedFields")) != Some(&Value::Array(list.clone())) => {
            managed::decode(&json!({"metadata": {"managedFields": list}})).unwrap_or(live_entries)
        }
        _ => live_entries,
    };
    let empty = json!({});
    let api_version = def.api_version();
    let time = now();
    let entries = managed::update(
        live.unwrap_or(&empty),
        new,
        &api::patch::patch_meta(def),
        entries,
        &manager.writer(&api_version, &time),
    );
    managed::store(new, entries);
}

/// The 409 of an apply that would change fields other managers own.
fn conflict_error(conflicts: &[Conflict]) -> ApiError {
    let mut error = ApiError::new(409, "Conflict", managed::conflict_message(conflicts));
    error.causes = conflicts
        .iter()
        .map(|c| Cause {
            reason: "FieldManagerConflict".into(),
            message: format!("conflict with {}", c.manager),
            field: Some(c.path.clone()),
        })
        .collect();
    error
}

/// The object an apply produces from `current` (`None`: create), with its managedFields.
fn apply_onto(def: &ResourceDef, current: Option<&Value>, config: &Value, manager: &FieldManager) -> ApiResult<Value> {
    let entries = current
        .map(|c| managed::decode(c).unwrap_or_default())
        .unwrap_or_default();
    let api_version = def.api_version();
    let time = now();
    let meta = api::patch::patch_meta(def);
    let (mut merged, entries) = managed::apply(
        current,
        config,
        &meta,
        entries,
        &manager.writer(&api_version, &time),
        manager.force,
    )
    .map_err(|conflicts| conflict_error(&conflicts))?;
    managed::store(&mut merged, entries);
    Ok(merged)
}

/// Whether a PATCH's Content-Type is server-side apply's.
pub fn is_apply(content_type: &str) -> bool {
    content_type.split(';').next().unwrap_or("").trim() == "application/apply-patch+yaml"
}

fn parse_config(body: &[u8]) -> ApiResult<Value> {
    let text = std::str::from_utf8(body).map_err(|_| ApiError::bad_request("the apply body is not valid UTF-8"))?;
    let value = match serde_json::from_str::<Value>(text) {
        Ok(value) => value,
        Err(_) => serde_saphyr::from_str::<Value>(text)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?,
    };
    if !value.is_object() {
        return Err(ApiError::bad_request("the apply body must be an object"));
    }
    Ok(value)
}

/// The 422 upstream answers an apply without `fieldManager`.
fn missing_manager() -> ApiError {
    let mut error = ApiError::new(
        422,
        "Invalid",
        "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
    );
    error.details = Some(Box::new(("meta.k8s.io".into(), "PatchOptions".into(), String::new())));
    error.causes.push(Cause {
        reason: "FieldValueRequired".into(),
        message: "Required value: is required for apply patch".into(),
        field: Some("fieldManager".into()),
    });
    error
}

/// A server-side apply. Returns the status (201 created, 200 otherwise), the object and any
/// field validation warnings.
#[allow(clippy::too_many_arguments)]
pub async fn serve_apply(
    store: &Store,
    def: &ResourceDef,
    namespace: Option<&str>,
    name: &str,
    sub: Option<Subresource>,
    query: &Query,
    body: &[u8],
    content_type: &str,
) -> ApiResult<(StatusCode, Value, Vec<String>)> {
    if !matches!(sub, None | Some(Subresource::Status)) {
        return Err(ApiError::unsupported_media_type(content_type));
    }
    let manager_name = query
        .get("fieldManager")
        .filter(|m| !m.is_empty())
        .ok_or_else(missing_manager)?;
    let manager = FieldManager {
        name: manager_name.chars().take(MAX_MANAGER_LEN).collect(),
        operation: Operation::Apply,
        subresource: subresource_name(sub),
        force: query.flag("force")?,
    };
    let dry_run = query.dry_run()?;
    let mut config = parse_config(body)?;
    crate::write::check_type(def, &mut config)?;
    let mut warnings = Vec::new();
    let duplicates = crate::body::duplicate_keys(body);
    FieldValidation::from_query(query)?.check(def, &config, &duplicates, &mut warnings)?;
    {
        let meta = config
            .as_object_mut()
            .map(|o| o.entry("metadata").or_insert_with(|| json!({})))
            .and_then(Value::as_object_mut)
            .ok_or_else(|| ApiError::bad_request("metadata must be an object"))?;
        match meta.get("name").and_then(Value::as_str) {
            Some(given) if !given.is_empty() && given != name => {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({given}) does not match the name on the URL ({name})"
                )));
            }
            _ => {
                meta.insert("name".into(), json!(name));
            }
        }
        if let Some(ns) = namespace.filter(|_| def.namespaced) {
            meta.entry("namespace").or_insert_with(|| json!(ns));
        }
    }
    // What a subresource owns: the main resource ignores status, status ignores the rest.
    if let Some(map) = config.as_object_mut() {
        if sub == Some(Subresource::Status) {
            map.retain(|k, _| matches!(k.as_str(), "apiVersion" | "kind" | "metadata" | "status"));
        } else if def.has_subresource(Subresource::Status) {
            map.remove("status");
        }
    }
    for _ in 0..2 {
        let updated = store
            .update_as(def, namespace, name, sub, dry_run, Some(&manager), |current| {
                apply_onto(def, Some(current), &config, &manager)
            })
            .await;
        match updated {
            Ok(object) => return Ok((StatusCode::OK, object, warnings)),
            Err(e) if e.code == 404 && e.reason == "NotFound" && sub.is_none() => {}
            Err(e) => return Err(e),
        }
        let object = apply_onto(def, None, &config, &manager)?;
        match store.create_as(def, namespace, object, dry_run, Some(&manager)).await {
            Ok(created) => return Ok((StatusCode::CREATED, created, warnings)),
            // Created by someone else meanwhile: apply onto it.
            Err(e) if e.reason == "AlreadyExists" => continue,
            Err(e) => return Err(e),
        }
    }
    Err(ApiError::conflict(
        def,
        name,
        "the object was created and deleted during the apply; please retry",
    ))
}
