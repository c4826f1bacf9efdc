//! The REST surface for resources: maps method + URL to store operations, decodes bodies
//! (JSON, YAML), encodes answers, and turns every failure into a Status.

use std::sync::Arc;

use api::ResourceDef;
use api::registry::Subresource;
use api::table::Conversion;
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode, header};
use serde_json::{Value, json};

use crate::AppState;
use crate::body::{self, FieldValidation, warning_header};
use crate::error::{ApiError, ApiResult, success_status};
use crate::managed::FieldManager;
use crate::patch::{self, PatchType};
use crate::request::{ListOptions, Query, parse_resource_path};
use crate::store::{Store, list_body};
use crate::write::DeleteOptions;

/// JSON response with a status code.
pub fn json_response(code: StatusCode, value: &Value) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::to_vec(value).unwrap_or_default(),
    )
        .into_response()
}

/// A response with an already-serialized JSON body.
pub fn bytes_response(code: StatusCode, body: Bytes) -> Response {
    (code, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// A JSON response carrying `Warning` headers.
fn warned(code: StatusCode, value: &Value, warnings: &[String]) -> Response {
    let mut response = json_response(code, value);
    let mut seen = std::collections::HashSet::new();
    for warning in warnings.iter().filter(|w| seen.insert(w.as_str())) {
        if let Ok(value) = http::HeaderValue::from_str(&warning_header(warning)) {
            response.headers_mut().append(header::WARNING, value);
        }
    }
    response
}

/// Decodes a body that must be an object of `def`'s kind and applies field validation.
fn decode_object(
    def: &ResourceDef,
    headers: &HeaderMap,
    raw: &[u8],
    validation: FieldValidation,
    warnings: &mut Vec<String>,
) -> ApiResult<Value> {
    let decoded = body::decode(headers, raw)?;
    let mut value = decoded.value;
    crate::write::check_type(def, &mut value)?;
    validation.check(def, &value, &decoded.duplicates, warnings)?;
    Ok(value)
}

/// Rejects an Accept header we cannot satisfy (we answer JSON).
fn check_accept(headers: &HeaderMap) -> ApiResult<()> {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let acceptable = accept.split(',').any(|part| {
        let media = part.split(';').next().unwrap_or("").trim();
        matches!(
            media,
            "application/json" | "*/*" | "application/*" | "" | "application/yaml"
        )
    });
    if acceptable {
        Ok(())
    } else {
        Err(ApiError::not_acceptable())
    }
}

/// Entry point for `/api/...` and `/apis/...` resource URLs. `upgrade` is the pending
/// connection upgrade of an HTTP/1.1 request (for `pods/exec`, `pods/attach` and
/// `pods/portforward`).
#[allow(clippy::too_many_arguments)]
pub async fn serve_resource(
    state: Arc<AppState>,
    core: bool,
    method: Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: Bytes,
    upgrade: Option<hyper::upgrade::OnUpgrade>,
) -> Response {
    match route(state, core, method, path, query, headers, body, upgrade).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

#[allow(clippy::too_many_arguments)]
async fn route(
    state: Arc<AppState>,
    core: bool,
    method: Method,
    path: &str,
    raw_query: Option<&str>,
    headers: &HeaderMap,
    body: Bytes,
    upgrade: Option<hyper::upgrade::OnUpgrade>,
) -> ApiResult<Response> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let request = parse_resource_path(core, &segments)?;
    let query = Query::parse(raw_query)?;
    check_accept(headers)?;
    let store = state.store.clone();
    let def = request.def;
    let ns = request.namespace.as_deref();
    if def.namespaced && request.name.is_some() && ns.is_none() {
        // A namespaced object addressed without its namespace.
        return Err(ApiError::path_not_found());
    }
    if request.legacy_watch && method != Method::GET {
        return Err(ApiError::method_not_allowed());
    }
    // `kubectl get` asks for server-side Table printing; metadata clients for
    // PartialObjectMetadata.
    let conversion = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .map_or(Conversion::None, api::table::negotiate_accept);
    let table = match conversion {
        Conversion::Table(version) => Some(version),
        _ => None,
    };
    let include = api::table::parse_include_object(query.get("includeObject"))
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    // Watch events carry single objects.
    let watch_format = || match conversion {
        Conversion::Table(version) => Ok(crate::watch::Format::Table { version, include }),
        Conversion::PartialObjectMetadata(version) => Ok(crate::watch::Format::Partial { version }),
        Conversion::PartialObjectMetadataList(_) => Err(not_a_list(def)),
        Conversion::None => Ok(crate::watch::Format::Json),
    };
    // A single object in an answer (a Status passes as it is).
    let one = |value: Value| -> ApiResult<Value> { convert_one(conversion, def, value) };
    let as_table = |objects: &[Value], list_meta: Value| {
        table.map(|version| {
            api::table::table_as(version, def, objects, include, true, list_meta, jiff::Timestamp::now())
        })
    };
    match (&method, request.name.as_deref(), request.subresource) {
        (&Method::GET, None, None) => {
            let mut options = ListOptions::from_query(def, &query)?;
            options.watch |= request.legacy_watch;
            if options.watch {
                let format = watch_format()?;
                let stream = crate::watch::watch(store, def, request.namespace.clone(), options, format).await?;
                return Ok(Response::builder()
                    .status(StatusCode::OK)
                    .header(header::CONTENT_TYPE, "application/json")
                    .header(header::CACHE_CONTROL, "no-cache, private")
                    .body(Body::from_stream(stream))
                    .unwrap_or_else(|_| ApiError::internal("building the watch response").into_response()));
            }
            let result = store.list(def, ns, &options).await?;
            match conversion {
                Conversion::Table(_) => match as_table(&result.served(def), result.metadata()) {
                    Some(table) => Ok(json_response(StatusCode::OK, &table)),
                    None => Err(ApiError::internal("no table version")),
                },
                Conversion::PartialObjectMetadataList(version) => Ok(json_response(
                    StatusCode::OK,
                    &api::table::partial_object_metadata_list(version, &result.served(def), result.metadata()),
                )),
                Conversion::PartialObjectMetadata(_) => Err(a_list(def)),
                Conversion::None => Ok(bytes_response(StatusCode::OK, list_body(def, &result))),
            }
        }
        (&Method::GET | &Method::POST, Some(name), Some(sub @ (Subresource::Exec | Subresource::Attach))) => {
            crate::node_proxy::pod_stream(
                &store,
                state.kubelet_tls.clone(),
                if sub == Subresource::Exec { "exec" } else { "attach" },
                ns.unwrap_or("default"),
                name,
                &method,
                raw_query,
                &query,
                headers,
                upgrade,
            )
            .await
        }
        (&Method::GET | &Method::POST, Some(name), Some(Subresource::PortForward)) => {
            crate::node_proxy::pod_port_forward(
                &store,
                state.kubelet_tls.clone(),
                ns.unwrap_or("default"),
                name,
                &method,
                raw_query,
                headers,
                upgrade,
            )
            .await
        }
        (&Method::GET, Some(name), Some(Subresource::Log)) => {
            crate::node_proxy::pod_log(&store, state.kubelet_tls.clone(), ns.unwrap_or("default"), name, &query).await
        }
        (&Method::GET, Some(name), sub) => {
            let mut options = ListOptions::from_query(def, &query)?;
            if request.legacy_watch || options.watch {
                // Watch of one object: a watch with a metadata.name field selector.
                options.field_selector = Some(
                    api::selector::FieldSelector::parse(&format!("metadata.name={name}"))
                        .map_err(|e| ApiError::bad_request(e.to_string()))?,
                );
                options.watch = true;
                let format = watch_format()?;
                let stream = crate::watch::watch(store, def, request.namespace.clone(), options, format).await?;
                return Ok(Response::builder()
                    .status(StatusCode::OK)
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Body::from_stream(stream))
                    .unwrap_or_else(|_| ApiError::internal("building the watch response").into_response()));
            }
            let cached = store
                .get_cached(def, ns, name, query.get("resourceVersion").filter(|s| !s.is_empty()))
                .await?;
            match sub {
                Some(Subresource::Scale) => Ok(json_response(
                    StatusCode::OK,
                    &one(scale_of(def, &Store::served(def, &cached)))?,
                )),
                Some(Subresource::Binding)
                | Some(Subresource::Eviction)
                | Some(Subresource::Finalize)
                | Some(Subresource::Log) => Err(ApiError::method_not_allowed()),
                // The common case answers with the cached serialization as is.
                _ if conversion == Conversion::None && def.conversion.is_none() => {
                    Ok(bytes_response(StatusCode::OK, cached.json.clone()))
                }
                _ => {
                    let object = Store::served(def, &cached);
                    let meta = json!({"resourceVersion": cached.revision.to_string()});
                    match as_table(std::slice::from_ref(&object), meta) {
                        Some(table) => Ok(json_response(StatusCode::OK, &table)),
                        None => Ok(json_response(StatusCode::OK, &one(object)?)),
                    }
                }
            }
        }
        (&Method::POST, None, None) => {
            let mut warnings = Vec::new();
            let object = decode_object(def, headers, &body, FieldValidation::from_query(&query)?, &mut warnings)?;
            let manager = FieldManager::for_update(&query, headers, None);
            let created = store
                .create_as(def, ns, object, query.dry_run()?, Some(&manager))
                .await?;
            Ok(warned(StatusCode::CREATED, &one(created)?, &warnings))
        }
        (&Method::POST, Some(name), Some(Subresource::Binding)) => {
            let binding = body::decode(headers, &body)?.value;
            store
                .bind(ns.unwrap_or_default(), name, &binding, query.dry_run()?)
                .await?;
            Ok(json_response(
                StatusCode::CREATED,
                &success_status("", "pods", name, None),
            ))
        }
        (&Method::POST, Some(name), Some(Subresource::Eviction)) => {
            let eviction = body::decode(headers, &body)?.value;
            let delete_body = eviction.get("deleteOptions").cloned().unwrap_or(Value::Null);
            let mut options = DeleteOptions::parse(&delete_body, &query)?;
            options.dry_run |= query.dry_run()?;
            store.delete(def, ns, name, &options).await?;
            Ok(json_response(
                StatusCode::CREATED,
                &success_status("", "pods", name, None),
            ))
        }
        (&Method::PUT, Some(name), sub @ (None | Some(Subresource::Status) | Some(Subresource::Finalize))) => {
            let mut warnings = Vec::new();
            let object = decode_object(def, headers, &body, FieldValidation::from_query(&query)?, &mut warnings)?;
            let manager = FieldManager::for_update(&query, headers, sub);
            let updated = store
                .update_as(def, ns, name, sub, query.dry_run()?, Some(&manager), |_| {
                    Ok(object.clone())
                })
                .await?;
            Ok(warned(StatusCode::OK, &one(updated)?, &warnings))
        }
        (&Method::PUT, Some(name), Some(Subresource::Scale)) => {
            let scale = body::decode(headers, &body)?.value;
            let manager = FieldManager::for_update(&query, headers, Some(Subresource::Scale));
            let updated =
                update_scale(&store, def, ns, name, query.dry_run()?, &manager, |_| Ok(scale.clone())).await?;
            Ok(json_response(StatusCode::OK, &one(updated)?))
        }
        (&Method::PATCH, Some(name), sub @ (None | Some(Subresource::Status) | Some(Subresource::Scale))) => {
            let content_type = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if crate::managed::is_apply(content_type) {
                let (code, object, warnings) =
                    crate::managed::serve_apply(&store, def, ns, name, sub, &query, &body, content_type).await?;
                return Ok(warned(code, &one(object)?, &warnings));
            }
            let kind = PatchType::from_content_type(content_type)?;
            let dry_run = query.dry_run()?;
            if sub == Some(Subresource::Scale) {
                let scale_meta = api::patch::patch_meta_for_kind("autoscaling", "v1", "Scale");
                let manager = FieldManager::for_update(&query, headers, sub);
                let updated = update_scale(&store, def, ns, name, dry_run, &manager, |current| {
                    patch::apply(kind, current, &body, &scale_meta)
                })
                .await?;
                return Ok(json_response(StatusCode::OK, &one(updated)?));
            }
            let validation = FieldValidation::from_query(&query)?;
            let duplicates = body::duplicate_keys(&body);
            let meta = api::patch::patch_meta(def);
            let mut warnings = Vec::new();
            let manager = FieldManager::for_update(&query, headers, sub);
            let updated = store
                .update_as(def, ns, name, sub, dry_run, Some(&manager), |current| {
                    warnings.clear();
                    let patched = patch::apply(kind, current, &body, &meta)?;
                    validation.check(def, &patched, &duplicates, &mut warnings)?;
                    Ok(patched)
                })
                .await?;
            Ok(warned(StatusCode::OK, &one(updated)?, &warnings))
        }
        (&Method::DELETE, Some(name), None) => {
            let body_value = if body.iter().all(u8::is_ascii_whitespace) {
                Value::Null
            } else {
                body::decode(headers, &body)?.value
            };
            let options = DeleteOptions::parse(&body_value, &query)?;
            let deleted = store.delete(def, ns, name, &options).await?;
            if !deleted.removed || returns_deleted_object(def) {
                return Ok(json_response(StatusCode::OK, &one(deleted.object)?));
            }
            let uid = deleted.object["metadata"]["uid"].as_str();
            Ok(json_response(
                StatusCode::OK,
                &success_status(def.group, def.plural, name, uid),
            ))
        }
        (&Method::DELETE, None, None) if def.delete_collection => {
            let body_value = if body.iter().all(u8::is_ascii_whitespace) {
                Value::Null
            } else {
                body::decode(headers, &body)?.value
            };
            let options = DeleteOptions::parse(&body_value, &query)?;
            let list_options = ListOptions::from_query(def, &query)?;
            let listed = store.list(def, ns, &list_options).await?;
            let mut items = Vec::new();
            for object in &listed.served(def) {
                let name = object["metadata"]["name"].as_str().unwrap_or_default();
                let object_ns = object["metadata"]["namespace"].as_str();
                match store.delete(def, object_ns, name, &options).await {
                    Ok(deleted) => items.push(deleted.object),
                    Err(e) if e.code == 404 => {}
                    Err(e) => return Err(e),
                }
            }
            let revision = store.revisions.current().await?;
            let list_meta = json!({"resourceVersion": revision.to_string()});
            let list = match conversion {
                Conversion::PartialObjectMetadataList(version) => {
                    api::table::partial_object_metadata_list(version, &items, list_meta)
                }
                Conversion::PartialObjectMetadata(_) => return Err(a_list(def)),
                _ => {
                    json!({"kind": def.list_kind(), "apiVersion": def.api_version(), "metadata": list_meta, "items": items})
                }
            };
            Ok(json_response(StatusCode::OK, &list))
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}

/// The Go type upstream's NotAcceptable messages name: the internal type its storage returns
/// (`*core.Pod`, `*apps.DeploymentList`; events.k8s.io Events are core Events).
fn go_type(def: &ResourceDef, list: bool) -> String {
    let package = match def.group {
        "" | "events.k8s.io" => "core",
        group => group.split('.').next().unwrap_or(group),
    };
    format!("*{package}.{}{}", def.kind, if list { "List" } else { "" })
}

/// 406 for PartialObjectMetadata asked of a list.
fn a_list(def: &ResourceDef) -> ApiError {
    ApiError::new(
        406,
        "NotAcceptable",
        format!(
            "you requested PartialObjectMetadata, but the requested object is a list ({})",
            go_type(def, true)
        ),
    )
}

/// 406 for PartialObjectMetadataList asked of a single object.
fn not_a_list(def: &ResourceDef) -> ApiError {
    ApiError::new(
        406,
        "NotAcceptable",
        format!(
            "you requested PartialObjectMetadataList, but the requested object is not a list ({})",
            go_type(def, false)
        ),
    )
}

/// A single-object answer after the negotiated conversion: its metadata only for
/// PartialObjectMetadata, 406 for PartialObjectMetadataList; a Status is never converted.
fn convert_one(conversion: Conversion, def: &ResourceDef, value: Value) -> ApiResult<Value> {
    if value["kind"] == "Status" {
        return Ok(value);
    }
    match conversion {
        Conversion::PartialObjectMetadata(version) => Ok(api::table::partial_object_metadata(version, &value)),
        Conversion::PartialObjectMetadataList(_) => Err(not_a_list(def)),
        Conversion::None | Conversion::Table(_) => Ok(value),
    }
}

/// Resources whose DELETE answers with the deleted object (upstream's ReturnDeletedObject);
/// the others answer with a Success Status.
fn returns_deleted_object(def: &ResourceDef) -> bool {
    def.group.is_empty()
        && matches!(
            def.plural,
            "pods" | "services" | "namespaces" | "nodes" | "persistentvolumes" | "persistentvolumeclaims"
        )
}

/// The autoscaling/v1 Scale view of a scalable object.
pub fn scale_of(def: &ResourceDef, object: &Value) -> Value {
    let meta = &object["metadata"];
    let selector = object["spec"]
        .get("selector")
        .and_then(|s| {
            serde_json::from_value::<k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>(s.clone()).ok()
        })
        .and_then(|s| api::selector::LabelSelector::from_label_selector(&s).ok())
        .map(|s| s.to_string())
        .unwrap_or_default();
    let mut metadata = json!({
        "name": meta["name"],
        "uid": meta["uid"],
        "resourceVersion": meta["resourceVersion"],
        "creationTimestamp": meta["creationTimestamp"],
    });
    if def.namespaced {
        metadata["namespace"] = meta["namespace"].clone();
    }
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": metadata,
        "spec": {"replicas": object["spec"]["replicas"].as_i64().unwrap_or(0)},
        "status": {"replicas": object["status"]["replicas"].as_i64().unwrap_or(0), "selector": selector},
    })
}

/// Writes a Scale (PUT or PATCH result) through to the parent's `spec.replicas`.
async fn update_scale(
    store: &Store,
    def: &ResourceDef,
    ns: Option<&str>,
    name: &str,
    dry_run: bool,
    manager: &FieldManager,
    produce: impl Fn(&Value) -> ApiResult<Value>,
) -> ApiResult<Value> {
    let updated = store
        .update_as(def, ns, name, None, dry_run, Some(manager), |parent| {
            let current_scale = scale_of(def, parent);
            let scale = produce(&current_scale)?;
            if let Some(kind) = scale["kind"].as_str().filter(|k| !k.is_empty() && *k != "Scale") {
                return Err(ApiError::bad_request(format!("expected a Scale, got {kind}")));
            }
            let parent_rv = parent["metadata"]["resourceVersion"].as_str().unwrap_or_default();
            if let Some(rv) = scale["metadata"]["resourceVersion"]
                .as_str()
                .filter(|rv| !rv.is_empty())
                && rv != parent_rv
            {
                return Err(ApiError::modified(def, name));
            }
            let replicas = match &scale["spec"]["replicas"] {
                Value::Null => 0,
                v => v
                    .as_i64()
                    .ok_or_else(|| ApiError::bad_request("spec.replicas must be an integer"))?,
            };
            let mut new = parent.clone();
            new["spec"]["replicas"] = Value::from(replicas);
            Ok(new)
        })
        .await?;
    Ok(scale_of(def, &updated))
}
