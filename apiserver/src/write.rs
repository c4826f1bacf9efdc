//! Writes: create, update (main resource, status, finalize), patch-driven updates, delete and
//! deletecollection, with upstream's metadata rules, optimistic concurrency, graceful and
//! finalizer-based deletion, and namespace lifecycle. Every write is one compare-and-swap on
//! storage; a lost race is retried from a fresh read unless the client pinned a
//! resourceVersion.

use api::registry::Subresource;
use api::{AdmitError, Operation, ResourceDef};
use bytes::Bytes;
use serde_json::{Map, Value, json};
use storage::StorageError;

use crate::cache::CachedObject;
use crate::error::{ApiError, ApiResult};
use crate::managed::FieldManager;
use crate::services::prepare_service_update;
use crate::store::Store;

/// How many times a write retries after losing a compare-and-swap race.
const MAX_RETRIES: usize = 16;
/// Characters upstream uses for generateName suffixes (no vowels, no look-alikes).
const NAME_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

fn now() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn meta_mut(object: &mut Value) -> &mut Map<String, Value> {
    if !object.get("metadata").is_some_and(Value::is_object) {
        object["metadata"] = json!({});
    }
    match object.get_mut("metadata") {
        Some(Value::Object(meta)) => meta,
        // Just made sure it is an object.
        _ => unreachable!("metadata is an object"),
    }
}

fn meta_str<'a>(object: &'a Value, field: &str) -> Option<&'a str> {
    object
        .get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
}

/// Whether two objects differ in anything but metadata and status (what bumps generation).
fn spec_changed(a: &Value, b: &Value) -> bool {
    let strip = |v: &Value| -> Map<String, Value> {
        v.as_object()
            .map(|o| {
                o.iter()
                    .filter(|(k, _)| !matches!(k.as_str(), "metadata" | "status" | "kind" | "apiVersion"))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default()
    };
    strip(a) != strip(b)
}

/// Objects equal but for resourceVersion.
fn same_object(a: &Value, b: &Value) -> bool {
    let mut a = a.clone();
    let mut b = b.clone();
    meta_mut(&mut a).remove("resourceVersion");
    meta_mut(&mut b).remove("resourceVersion");
    a == b
}

/// Checks the body's kind and apiVersion against the endpoint and fills them in.
pub fn check_type(def: &ResourceDef, object: &mut Value) -> ApiResult<()> {
    let Some(map) = object.as_object_mut() else {
        return Err(ApiError::bad_request(format!(
            "{} in version {:?} cannot be handled as a {}: the body must be a JSON object",
            def.kind, def.version, def.kind
        )));
    };
    let api_version = def.api_version();
    if let Some(v) = map.get("apiVersion").and_then(Value::as_str).filter(|v| !v.is_empty())
        && v != api_version
    {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({v}) does not match the expected API version ({api_version})"
        )));
    }
    if let Some(k) = map.get("kind").and_then(Value::as_str).filter(|k| !k.is_empty())
        && k != def.kind
    {
        return Err(ApiError::bad_request(format!(
            "{} in version {:?} cannot be handled as a {}: the kind in the data ({k}) does not match the expected kind",
            def.kind, def.version, def.kind
        )));
    }
    map.insert("apiVersion".into(), Value::from(api_version));
    map.insert("kind".into(), Value::from(def.kind));
    Ok(())
}

fn admit(def: &ResourceDef, object: Value, old: Option<&Value>, op: Operation, name: &str) -> ApiResult<Value> {
    def.strategy.admit(def, object, old, op).map_err(|e| match e {
        AdmitError::Decode(message) => ApiError::bad_request(message),
        AdmitError::Invalid(errors) => ApiError::invalid(def, name, &errors),
    })
}

fn to_storage(def: &ResourceDef, mut object: Value) -> Bytes {
    meta_mut(&mut object).remove("resourceVersion");
    if let Some(conversion) = def.conversion {
        object = (conversion.to_storage)(object);
    }
    Bytes::from(serde_json::to_vec(&object).unwrap_or_default())
}

/// What a read-modify-write decided.
enum Mutation {
    Put(Value),
    Unchanged(Value),
    Delete(Value),
}

/// The outcome of a DELETE.
pub struct Deleted {
    pub object: Value,
    /// The object is gone (rather than marked for deletion).
    pub removed: bool,
}

/// Options of a DELETE (metav1.DeleteOptions).
#[derive(Clone, Debug, Default)]
pub struct DeleteOptions {
    pub grace_period_seconds: Option<i64>,
    pub propagation_policy: Option<String>,
    pub precondition_uid: Option<String>,
    pub precondition_rv: Option<String>,
    pub dry_run: bool,
}

impl DeleteOptions {
    /// From a JSON DeleteOptions body (may be empty) and the query string.
    pub fn parse(body: &Value, query: &crate::request::Query) -> ApiResult<Self> {
        let mut options = Self::default();
        if let Some(obj) = body.as_object() {
            options.grace_period_seconds = obj.get("gracePeriodSeconds").and_then(Value::as_i64);
            options.propagation_policy = obj.get("propagationPolicy").and_then(Value::as_str).map(str::to_string);
            if obj.get("orphanDependents").and_then(Value::as_bool) == Some(true)
                && options.propagation_policy.is_none()
            {
                options.propagation_policy = Some("Orphan".into());
            }
            options.precondition_uid = body["preconditions"]["uid"].as_str().map(str::to_string);
            options.precondition_rv = body["preconditions"]["resourceVersion"].as_str().map(str::to_string);
            let dry: Vec<String> = obj
                .get("dryRun")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
                .unwrap_or_default();
            options.dry_run = crate::request::dry_run_values(&dry)?;
        }
        if let Some(grace) = query.int("gracePeriodSeconds")? {
            options.grace_period_seconds = Some(grace);
        }
        if let Some(policy) = query.get("propagationPolicy") {
            options.propagation_policy = Some(policy.to_string());
        }
        options.dry_run |= query.dry_run()?;
        if let Some(policy) = &options.propagation_policy
            && !matches!(policy.as_str(), "Orphan" | "Background" | "Foreground")
        {
            return Err(ApiError::bad_request(format!(
                "propagationPolicy: Unsupported value: {policy:?}: supported values: \"Background\", \"Foreground\", \"Orphan\""
            )));
        }
        if options.grace_period_seconds.is_some_and(|g| g < 0) {
            options.grace_period_seconds = Some(0);
        }
        Ok(options)
    }
}

impl Store {
    /// Checks that `namespace` exists and is not terminating (upstream's NamespaceLifecycle).
    async fn check_namespace(&self, namespace: &str) -> ApiResult<()> {
        let ns_def = api::registry::find("", "v1", "namespaces").expect("namespaces are registered");
        let key = ns_def.storage_key(None, namespace);
        let cached = self.cache(ns_def).get(&key).0.map(|o| o.value.clone());
        let object = match cached {
            Some(object) => object,
            // The cache may lag a namespace created a moment ago: ask storage.
            None => match self.storage.get(&key).await? {
                Some(kv) => CachedObject::from_kv(&kv).map(|o| o.value).unwrap_or_default(),
                None => return Err(ApiError::not_found(ns_def, namespace)),
            },
        };
        if object["metadata"].get("deletionTimestamp").is_some() || object["status"]["phase"] == "Terminating" {
            let mut err = ApiError::forbidden(format!(
                "unable to create new content in namespace {namespace} because it is being terminated"
            ));
            err.details = Some(Box::new((String::new(), "namespaces".into(), namespace.to_string())));
            err.causes.push(crate::error::Cause {
                reason: "NamespaceTerminating".into(),
                message: format!("namespace {namespace} is being terminated"),
                field: Some("metadata.namespace".into()),
            });
            return Err(err);
        }
        Ok(())
    }

    /// POST: creates an object. Returns it as stored.
    pub async fn create(
        &self,
        def: &ResourceDef,
        namespace: Option<&str>,
        object: Value,
        dry_run: bool,
    ) -> ApiResult<Value> {
        self.create_as(def, namespace, object, dry_run, None).await
    }

    /// [`Store::create`] recording `manager` in the object's managedFields.
    pub async fn create_as(
        &self,
        def: &ResourceDef,
        namespace: Option<&str>,
        mut object: Value,
        dry_run: bool,
        manager: Option<&FieldManager>,
    ) -> ApiResult<Value> {
        check_type(def, &mut object)?;
        let supplied = object["metadata"].get("managedFields").cloned();
        if def.namespaced {
            let ns = namespace.unwrap_or_default();
            match meta_str(&object, "namespace") {
                Some(given) if !given.is_empty() && given != ns => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
                _ => {
                    meta_mut(&mut object).insert("namespace".into(), Value::from(ns));
                }
            }
            self.check_namespace(ns).await?;
        } else {
            meta_mut(&mut object).remove("namespace");
        }
        let generate = meta_str(&object, "name").is_none_or(str::is_empty)
            && meta_str(&object, "generateName").is_some_and(|g| !g.is_empty());
        {
            let meta = meta_mut(&mut object);
            for field in [
                "uid",
                "resourceVersion",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "selfLink",
                "managedFields",
            ] {
                meta.remove(field);
            }
            meta.insert("uid".into(), Value::from(uuid::Uuid::new_v4().to_string()));
            meta.insert("creationTimestamp".into(), Value::from(now()));
            if def.tracks_generation {
                meta.insert("generation".into(), Value::from(1));
            } else {
                meta.remove("generation");
            }
        }
        if def.has_subresource(Subresource::Status)
            && !def.keep_status_on_create
            && let Some(map) = object.as_object_mut()
        {
            map.remove("status");
        }
        if def.plural == "namespaces" && def.group.is_empty() {
            object["spec"]["finalizers"] = json!(["kubernetes"]);
            object["status"] = json!({"phase": "Active"});
            label_namespace(&mut object);
        }
        if def.plural == "pods" && def.group.is_empty() {
            api::kinds::core::pod_defaults::admit_service_account(&mut object);
        }

        let mut attempts = 0;
        loop {
            attempts += 1;
            let mut candidate = object.clone();
            if generate {
                let prefix = meta_str(&candidate, "generateName").unwrap_or_default().to_string();
                let suffix: String = (0..5)
                    .map(|_| NAME_ALPHABET[rand::random_range(0..NAME_ALPHABET.len())] as char)
                    .collect();
                meta_mut(&mut candidate).insert("name".into(), Value::from(format!("{prefix}{suffix}")));
            }
            let name = meta_str(&candidate, "name").unwrap_or_default().to_string();
            let mut admitted = admit(def, candidate, None, Operation::Create, &name)?;
            if let Some(ns) = namespace.filter(|_| def.namespaced) {
                // Admission plugins in upstream's order: LimitRanger (defaults are validated
                // like the rest of the object), then ResourceQuota.
                if crate::limits::default(self, def, ns, &mut admitted) {
                    admitted = admit(def, admitted, None, Operation::Create, &name)?;
                }
                crate::limits::check(self, def, ns, &name, &admitted, None)?;
                crate::quota::charge(self, def, ns, &name, &admitted, None, dry_run).await?;
            }
            if let Some(manager) = manager {
                crate::managed::record(def, manager, None, &mut admitted, supplied.as_ref());
            }
            if dry_run {
                return Ok(admitted);
            }
            let key = def.storage_key(namespace, &name);
            let claimed = if is_service(def) {
                // Report a duplicate name as such, not as its addresses being taken.
                if self.storage.get(&key).await?.is_some() {
                    return Err(ApiError::already_exists(def, &name));
                }
                Some(self.allocators.claim_for(&mut admitted, None, &key).await?)
            } else {
                None
            };
            match self
                .storage
                .create_with_ttl(&key, to_storage(def, admitted.clone()), self.ttl(def))
                .await
            {
                Ok(kv) => {
                    meta_mut(&mut admitted).insert("resourceVersion".into(), Value::from(kv.mod_revision.to_string()));
                    return Ok(admitted);
                }
                Err(error) => {
                    if let Some(claimed) = &claimed {
                        self.allocators.release_held(claimed).await;
                    }
                    match error {
                        // Upstream retries generated names a few times before giving up.
                        StorageError::AlreadyExists(_) if generate && attempts < 8 => continue,
                        StorageError::AlreadyExists(_) => return Err(ApiError::already_exists(def, &name)),
                        other => return Err(other.into()),
                    }
                }
            }
        }
    }

    /// The read-modify-write loop every update goes through. `decide` sees the current object
    /// (served form, resourceVersion set) and returns what to do; it is re-run after a lost race.
    /// With `admission` (updates of the main resource) a replacement passes the validating
    /// admission plugins (LimitRanger, ResourceQuota) before it is written.
    async fn read_modify_write(
        &self,
        def: &ResourceDef,
        namespace: Option<&str>,
        name: &str,
        dry_run: bool,
        admission: bool,
        mut decide: impl FnMut(Value) -> ApiResult<Mutation>,
    ) -> ApiResult<(Value, bool)> {
        let key = def.storage_key(namespace, name);
        for _ in 0..MAX_RETRIES {
            let kv = self
                .storage
                .get(&key)
                .await?
                .ok_or_else(|| ApiError::not_found(def, name))?;
            let current = CachedObject::from_kv(&kv).ok_or_else(|| ApiError::internal("stored object is corrupt"))?;
            let current = Store::served(def, &current);
            match decide(current.clone())? {
                Mutation::Unchanged(object) => return Ok((object, false)),
                Mutation::Delete(object) => {
                    if dry_run {
                        return Ok((object, true));
                    }
                    match self.storage.delete(&key, Some(kv.mod_revision)).await {
                        Ok(_) => {
                            self.after_removal(def, &current).await;
                            return Ok((object, true));
                        }
                        Err(StorageError::Conflict { .. }) => continue,
                        Err(StorageError::NotFound(_)) => return Err(ApiError::not_found(def, name)),
                        Err(other) => return Err(other.into()),
                    }
                }
                Mutation::Put(mut object) => {
                    if admission && let Some(ns) = namespace.filter(|_| def.namespaced) {
                        crate::limits::check(self, def, ns, name, &object, Some(&current))?;
                        crate::quota::charge(self, def, ns, name, &object, Some(&current), dry_run).await?;
                    }
                    if dry_run {
                        return Ok((object, false));
                    }
                    let claimed = if is_service(def) {
                        Some(self.allocators.claim_for(&mut object, Some(&current), &key).await?)
                    } else {
                        None
                    };
                    match self
                        .storage
                        .update_with_ttl(&key, kv.mod_revision, to_storage(def, object.clone()), self.ttl(def))
                        .await
                    {
                        Ok(new_kv) => {
                            if is_service(def) {
                                self.allocators.release_dropped(&current, &object).await;
                            }
                            meta_mut(&mut object)
                                .insert("resourceVersion".into(), Value::from(new_kv.mod_revision.to_string()));
                            return Ok((object, false));
                        }
                        Err(error) => {
                            if let Some(claimed) = &claimed {
                                self.allocators.release_held(claimed).await;
                            }
                            match error {
                                StorageError::Conflict { .. } => continue,
                                other => return Err(other.into()),
                            }
                        }
                    }
                }
            }
        }
        Err(ApiError::new(
            409,
            "Conflict",
            format!(
                "too many conflicting writes to {} {name:?}; try again",
                def.qualified_resource()
            ),
        ))
    }

    /// Releases what a removed object held.
    async fn after_removal(&self, def: &ResourceDef, object: &Value) {
        if is_service(def) {
            self.allocators.release_held(&crate::services::Held::of(object)).await;
        }
    }

    /// PUT (and the update half of PATCH): replaces the object, or its status / finalizers
    /// when `sub` says so. Returns the stored object.
    pub async fn update(
        &self,
        def: &ResourceDef,
        namespace: Option<&str>,
        name: &str,
        sub: Option<Subresource>,
        dry_run: bool,
        produce: impl FnMut(&Value) -> ApiResult<Value>,
    ) -> ApiResult<Value> {
        self.update_as(def, namespace, name, sub, dry_run, None, produce).await
    }

    /// [`Store::update`] recording `manager` in the object's managedFields.
    #[allow(clippy::too_many_arguments)]
    pub async fn update_as(
        &self,
        def: &ResourceDef,
        namespace: Option<&str>,
        name: &str,
        sub: Option<Subresource>,
        dry_run: bool,
        manager: Option<&FieldManager>,
        mut produce: impl FnMut(&Value) -> ApiResult<Value>,
    ) -> ApiResult<Value> {
        let (object, _) = self
            .read_modify_write(def, namespace, name, dry_run, sub.is_none(), |current| {
                let mut body = produce(&current)?;
                check_type(def, &mut body)?;
                prepare_update(def, namespace, name, sub, body, &current, manager)
            })
            .await?;
        Ok(object)
    }

    /// DELETE of one object, graceful or finalizer-pending where the kind and object say so.
    pub async fn delete(
        &self,
        def: &ResourceDef,
        namespace: Option<&str>,
        name: &str,
        options: &DeleteOptions,
    ) -> ApiResult<Deleted> {
        if def.plural == "namespaces"
            && def.group.is_empty()
            && matches!(name, "default" | "kube-system" | "kube-public")
        {
            let mut err = ApiError::forbidden(format!(
                "namespaces {name:?} is forbidden: this namespace may not be deleted"
            ));
            err.details = Some(Box::new((String::new(), "namespaces".into(), name.to_string())));
            return Err(err);
        }
        let (object, removed) = self
            .read_modify_write(def, namespace, name, options.dry_run, false, |current| {
                decide_delete(def, name, current, options)
            })
            .await?;
        Ok(Deleted { object, removed })
    }

    /// pods/binding: assigns a pod to a node.
    pub async fn bind(&self, namespace: &str, name: &str, binding: &Value, dry_run: bool) -> ApiResult<()> {
        let def = api::registry::find("", "v1", "pods").expect("pods are registered");
        let node = binding["target"]["name"].as_str().unwrap_or_default().to_string();
        if node.is_empty() {
            return Err(ApiError::invalid(
                def,
                name,
                &[api::FieldError::required("target.name", "")],
            ));
        }
        if let Some(kind) = binding["target"]["kind"]
            .as_str()
            .filter(|k| !k.is_empty() && *k != "Node")
        {
            return Err(ApiError::invalid(
                def,
                name,
                &[api::FieldError::not_supported("target.kind", kind, &["Node"])],
            ));
        }
        let annotations = binding["metadata"]["annotations"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        self.read_modify_write(def, Some(namespace), name, dry_run, false, |mut pod| {
            if pod["metadata"].get("deletionTimestamp").is_some() {
                return Err(ApiError::conflict(
                    def,
                    name,
                    &format!("pod {name} is being deleted, cannot be assigned to a host"),
                ));
            }
            if let Some(existing) = pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) {
                return Err(ApiError::conflict(
                    def,
                    name,
                    &format!("pod {name} is already assigned to node {existing:?}"),
                ));
            }
            pod["spec"]["nodeName"] = Value::from(node.clone());
            if !annotations.is_empty() {
                let meta = meta_mut(&mut pod);
                let target = meta.entry("annotations").or_insert_with(|| json!({}));
                for (k, v) in &annotations {
                    target[k] = v.clone();
                }
            }
            let condition =
                json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now()});
            let conditions = pod["status"]["conditions"].as_array().cloned().unwrap_or_default();
            let mut conditions: Vec<Value> = conditions.into_iter().filter(|c| c["type"] != "PodScheduled").collect();
            conditions.push(condition);
            pod["status"]["conditions"] = Value::Array(conditions);
            Ok(Mutation::Put(pod))
        })
        .await
        .map(drop)
    }
}

/// Upstream labels every namespace with its name (`kubernetes.io/metadata.name`), so
/// namespace selectors can pick namespaces by name; the label cannot be changed.
fn label_namespace(namespace: &mut Value) {
    let name = meta_str(namespace, "name").unwrap_or_default().to_string();
    let meta = meta_mut(namespace);
    let labels = meta.entry("labels").or_insert_with(|| json!({}));
    if !labels.is_object() {
        *labels = json!({});
    }
    labels["kubernetes.io/metadata.name"] = Value::from(name);
}

fn is_service(def: &ResourceDef) -> bool {
    def.group.is_empty() && def.plural == "services"
}

/// Builds the object an update stores from the client's body and the current object.
fn prepare_update(
    def: &ResourceDef,
    namespace: Option<&str>,
    name: &str,
    sub: Option<Subresource>,
    mut body: Value,
    current: &Value,
    manager: Option<&FieldManager>,
) -> ApiResult<Mutation> {
    let applying = manager.is_some_and(|m| m.operation == api::managed::Operation::Apply);
    let supplied = body["metadata"]
        .get("managedFields")
        .cloned()
        .filter(|_| sub.is_none() || applying);
    match meta_str(&body, "name") {
        Some(given) if !given.is_empty() && given != name => {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({given}) does not match the name on the URL ({name})"
            )));
        }
        _ => {
            meta_mut(&mut body).insert("name".into(), Value::from(name));
        }
    }
    if def.namespaced {
        let ns = namespace.unwrap_or_default();
        match meta_str(&body, "namespace") {
            Some(given) if !given.is_empty() && given != ns => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            _ => {
                meta_mut(&mut body).insert("namespace".into(), Value::from(ns));
            }
        }
    }
    let current_rv = meta_str(current, "resourceVersion").unwrap_or_default();
    if let Some(rv) = meta_str(&body, "resourceVersion").filter(|rv| !rv.is_empty())
        && rv != current_rv
    {
        return Err(ApiError::modified(def, name));
    }
    let current_uid = meta_str(current, "uid").unwrap_or_default();
    if let Some(uid) = meta_str(&body, "uid").filter(|u| !u.is_empty())
        && uid != current_uid
    {
        return Err(ApiError::conflict(
            def,
            name,
            &format!("Precondition failed: UID in precondition: {uid}, UID in object meta: {current_uid}"),
        ));
    }
    let mut new = match sub {
        // A status write changes status only; a finalize write changes spec.finalizers only.
        Some(Subresource::Status) => {
            let mut new = current.clone();
            match body.get("status") {
                Some(status) => new["status"] = status.clone(),
                None => {
                    if let Some(map) = new.as_object_mut() {
                        map.remove("status");
                    }
                }
            }
            new
        }
        Some(Subresource::Finalize) => {
            let mut new = current.clone();
            new["spec"]["finalizers"] = body["spec"].get("finalizers").cloned().unwrap_or(json!([]));
            new
        }
        _ => {
            let mut new = body;
            // Fields the server owns.
            let current_meta = current.get("metadata").cloned().unwrap_or_default();
            let meta = meta_mut(&mut new);
            for field in [
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
                "managedFields",
            ] {
                match current_meta.get(field) {
                    Some(v) => meta.insert(field.into(), v.clone()),
                    None => meta.remove(field),
                };
            }
            meta.remove("selfLink");
            if def.has_subresource(Subresource::Status) {
                match current.get("status") {
                    Some(status) => new["status"] = status.clone(),
                    None => {
                        if let Some(map) = new.as_object_mut() {
                            map.remove("status");
                        }
                    }
                }
            }
            if is_service(def) {
                prepare_service_update(&mut new, current);
            }
            if def.plural == "namespaces" && def.group.is_empty() {
                label_namespace(&mut new);
                // spec.finalizers changes only through the finalize subresource.
                new["spec"]["finalizers"] = current["spec"].get("finalizers").cloned().unwrap_or(json!([]));
            }
            new
        }
    };
    meta_mut(&mut new).insert("resourceVersion".into(), Value::from(current_rv));
    if def.tracks_generation && spec_changed(&new, current) {
        let generation = current["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
        meta_mut(&mut new).insert("generation".into(), Value::from(generation));
    }
    let op = if sub == Some(Subresource::Status) {
        Operation::UpdateStatus
    } else {
        Operation::Update
    };
    let mut admitted = admit(def, new, Some(current), op, name)?;
    meta_mut(&mut admitted).insert("resourceVersion".into(), Value::from(current_rv));
    if let Some(manager) = manager {
        crate::managed::record(def, manager, Some(current), &mut admitted, supplied.as_ref());
    }
    if same_object(&admitted, current) {
        return Ok(Mutation::Unchanged(current.clone()));
    }
    // The last finalizer of an object being deleted is gone: the object goes.
    let deleting = admitted["metadata"].get("deletionTimestamp").is_some();
    let no_finalizers = admitted["metadata"]["finalizers"].as_array().is_none_or(Vec::is_empty);
    let no_grace = admitted["metadata"]["deletionGracePeriodSeconds"].as_i64().unwrap_or(0) == 0;
    // A namespace also waits for its spec.finalizers (the namespace controller clears
    // `kubernetes` through /finalize once the content is gone).
    let is_namespace = def.plural == "namespaces" && def.group.is_empty();
    let no_spec_finalizers = admitted["spec"]["finalizers"].as_array().is_none_or(Vec::is_empty);
    if deleting && no_finalizers && no_grace && (!is_namespace || no_spec_finalizers) {
        return Ok(Mutation::Delete(admitted));
    }
    Ok(Mutation::Put(admitted))
}

/// Decides what a DELETE does to `current`.
fn decide_delete(def: &ResourceDef, name: &str, mut current: Value, options: &DeleteOptions) -> ApiResult<Mutation> {
    let uid = meta_str(&current, "uid").unwrap_or_default().to_string();
    let rv = meta_str(&current, "resourceVersion").unwrap_or_default().to_string();
    if let Some(want) = &options.precondition_uid
        && *want != uid
    {
        return Err(ApiError::conflict(
            def,
            name,
            &format!("Precondition failed: UID in precondition: {want}, UID in object meta: {uid}"),
        ));
    }
    if let Some(want) = &options.precondition_rv
        && *want != rv
    {
        return Err(ApiError::conflict(
            def,
            name,
            &format!("Precondition failed: ResourceVersion in precondition: {want}, ResourceVersion in meta: {rv}"),
        ));
    }
    let original = current.clone();
    let already_deleting = current["metadata"].get("deletionTimestamp").is_some();
    // Propagation policies that need the garbage collector are finalizers it removes.
    let mut finalizers: Vec<Value> = current["metadata"]["finalizers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut add = |f: &str| {
        if !finalizers.iter().any(|x| x == f) {
            finalizers.push(Value::from(f));
        }
    };
    match options.propagation_policy.as_deref() {
        Some("Orphan") => add("orphan"),
        Some("Foreground") => add("foregroundDeletion"),
        _ => {}
    }
    if !finalizers.is_empty() {
        meta_mut(&mut current).insert("finalizers".into(), Value::Array(finalizers.clone()));
    }
    let is_namespace = def.plural == "namespaces" && def.group.is_empty();
    let spec_finalizers = is_namespace && current["spec"]["finalizers"].as_array().is_some_and(|f| !f.is_empty());

    if def.graceful_delete {
        let scheduled = current["spec"]["nodeName"].as_str().is_some_and(|n| !n.is_empty());
        let terminal = matches!(current["status"]["phase"].as_str(), Some("Succeeded") | Some("Failed"));
        let default_grace = current["spec"]["terminationGracePeriodSeconds"].as_i64().unwrap_or(30);
        let grace = if !scheduled || terminal {
            0
        } else {
            options.grace_period_seconds.unwrap_or(default_grace).max(0)
        };
        let existing = current["metadata"]["deletionGracePeriodSeconds"].as_i64();
        if grace > 0 && existing.is_none_or(|e| grace < e) {
            let deadline = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(grace);
            let meta = meta_mut(&mut current);
            meta.insert(
                "deletionTimestamp".into(),
                Value::from(deadline.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()),
            );
            meta.insert("deletionGracePeriodSeconds".into(), Value::from(grace));
            return Ok(Mutation::Put(current));
        }
        if grace > 0 {
            // Already terminating with a grace period no longer than this one.
            return Ok(Mutation::Unchanged(original));
        }
        if !finalizers.is_empty() {
            let meta = meta_mut(&mut current);
            meta.entry("deletionTimestamp").or_insert_with(|| Value::from(now()));
            meta.insert("deletionGracePeriodSeconds".into(), Value::from(0));
            return Ok(if same_object(&current, &original) {
                Mutation::Unchanged(original)
            } else {
                Mutation::Put(current)
            });
        }
        return Ok(Mutation::Delete(current));
    }
    if !finalizers.is_empty() || spec_finalizers {
        if !already_deleting {
            let meta = meta_mut(&mut current);
            meta.insert("deletionTimestamp".into(), Value::from(now()));
            meta.insert("deletionGracePeriodSeconds".into(), Value::from(0));
        }
        if is_namespace {
            current["status"]["phase"] = Value::from("Terminating");
        }
        return Ok(if same_object(&current, &original) {
            Mutation::Unchanged(original)
        } else {
            Mutation::Put(current)
        });
    }
    Ok(Mutation::Delete(current))
}
