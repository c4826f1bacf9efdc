//! `paths` of one group-version document: the REST operations of every resource in the
//! registry, shaped as upstream's (operation ids, `x-kubernetes-action`,
//! `x-kubernetes-group-version-kind`, query parameters, request and response bodies).
//!
//! kubectl reads two things from here: whether the PATCH operation of a kind declares the
//! `fieldValidation` query parameter (then it validates server-side, `--validate=strict`), and
//! whether it accepts `application/strategic-merge-patch+json` (then client-side apply
//! computes a strategic merge patch from `components.schemas`).

use serde_json::{Map, Value, json};

use super::kinds::{self, KindSchema};
use super::schemas::{self, API_RESOURCE_LIST, DELETE_OPTIONS, PATCH, STATUS};
use crate::registry::{ResourceDef, Subresource};

/// The media types of PATCH request bodies.
pub const PATCH_TYPES: &[&str] = &[
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
];

const RESPONSE_TYPES: &[&str] = &["application/json", "application/yaml"];

/// `apps` → `Apps`, `rbac.authorization.k8s.io` → `RbacAuthorization`, core → `Core`.
fn group_camel(group: &str) -> String {
    if group.is_empty() {
        return "Core".to_string();
    }
    group.trim_end_matches(".k8s.io").split('.').map(capitalize).collect()
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The operation tag: `core_v1`, `apps_v1`, `rbacAuthorization_v1`.
fn tag(group: &str, version: &str) -> String {
    let camel = group_camel(group);
    let mut chars = camel.chars();
    let lower: String = match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    };
    format!("{lower}_{version}")
}

/// `/api/v1` or `/apis/<group>/<version>`.
pub(crate) fn prefix(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    }
}

fn param(name: &str, location: &str, ty: &str, description: &str) -> Value {
    let mut p = json!({
        "name": name,
        "in": location,
        "description": description,
        "schema": { "type": ty, "uniqueItems": true },
    });
    if location == "path" {
        p["required"] = Value::Bool(true);
    }
    p
}

fn query(name: &str) -> Value {
    let (ty, description) = match name {
        "allowWatchBookmarks" => (
            "boolean",
            "allowWatchBookmarks requests watch events with type \"BOOKMARK\".",
        ),
        "continue" => (
            "string",
            "The continue option should be set when retrieving more results from the server.",
        ),
        "dryRun" => (
            "string",
            "When present, indicates that modifications should not be persisted. Valid values are: - All: all dry run stages will be processed",
        ),
        "fieldManager" => (
            "string",
            "fieldManager is a name associated with the actor or entity that is making these changes.",
        ),
        "fieldSelector" => (
            "string",
            "A selector to restrict the list of returned objects by their fields. Defaults to everything.",
        ),
        "fieldValidation" => (
            "string",
            "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore - Warn - Strict",
        ),
        "force" => (
            "boolean",
            "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other people. Force flag must be unset for non-apply patch requests.",
        ),
        "gracePeriodSeconds" => (
            "integer",
            "The duration in seconds before the object should be deleted.",
        ),
        "ignoreStoreReadErrorWithClusterBreakingPotential" => (
            "boolean",
            "if set to true, it will trigger an unsafe deletion of the resource in case the normal deletion flow fails with a corrupt object error.",
        ),
        "labelSelector" => (
            "string",
            "A selector to restrict the list of returned objects by their labels. Defaults to everything.",
        ),
        "limit" => (
            "integer",
            "limit is a maximum number of responses to return for a list call.",
        ),
        "orphanDependents" => (
            "boolean",
            "Deprecated: please use the PropagationPolicy, this field will be deprecated in 1.7.",
        ),
        "pretty" => ("string", "If 'true', then the output is pretty printed."),
        "propagationPolicy" => (
            "string",
            "Whether and how garbage collection will be performed. Acceptable values are: 'Orphan', 'Background', 'Foreground'.",
        ),
        "resourceVersion" => (
            "string",
            "resourceVersion sets a constraint on what resource versions a request may be served from.",
        ),
        "resourceVersionMatch" => (
            "string",
            "resourceVersionMatch determines how resourceVersion is applied to list calls.",
        ),
        "sendInitialEvents" => (
            "boolean",
            "`sendInitialEvents=true` may be set together with `watch=true`. In that case, the watch stream will begin with synthetic events to produce the current state of objects in the collection.",
        ),
        "timeoutSeconds" => ("integer", "Timeout for the list/watch call."),
        "watch" => (
            "boolean",
            "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications.",
        ),
        _ => ("string", ""),
    };
    param(name, "query", ty, description)
}

fn queries(names: &[&str]) -> Vec<Value> {
    names.iter().map(|n| query(n)).collect()
}

const LIST_PARAMS: &[&str] = &[
    "allowWatchBookmarks",
    "continue",
    "fieldSelector",
    "labelSelector",
    "limit",
    "resourceVersion",
    "resourceVersionMatch",
    "sendInitialEvents",
    "timeoutSeconds",
    "watch",
];
const WRITE_PARAMS: &[&str] = &["dryRun", "fieldManager", "fieldValidation"];
const PATCH_PARAMS: &[&str] = &["dryRun", "fieldManager", "fieldValidation", "force"];
const DELETE_PARAMS: &[&str] = &[
    "dryRun",
    "gracePeriodSeconds",
    "ignoreStoreReadErrorWithClusterBreakingPotential",
    "orphanDependents",
    "propagationPolicy",
];

fn content(types: &[&str], schema: &Value) -> Value {
    let map: Map<String, Value> = types
        .iter()
        .map(|t| (t.to_string(), json!({ "schema": schema })))
        .collect();
    Value::Object(map)
}

fn responses(codes: &[(&str, &str)], schema: &Value) -> Value {
    let mut map = Map::new();
    for (code, description) in codes {
        map.insert(
            code.to_string(),
            json!({ "description": description, "content": content(RESPONSE_TYPES, schema) }),
        );
    }
    map.insert("401".into(), json!({ "description": "Unauthorized" }));
    Value::Object(map)
}

/// What one operation is about.
struct Op<'a> {
    verb: &'a str,
    action: &'a str,
    description: String,
    operation_id: String,
    tag: &'a str,
    gvk: &'a KindSchema,
    params: Vec<Value>,
    body: Option<Value>,
    responses: Value,
}

impl Op<'_> {
    fn build(self) -> (String, Value) {
        let mut op = json!({
            "description": self.description,
            "operationId": self.operation_id,
            "tags": [self.tag],
            "responses": self.responses,
            "x-kubernetes-action": self.action,
            "x-kubernetes-group-version-kind": {
                "group": self.gvk.group,
                "version": self.gvk.version,
                "kind": self.gvk.kind,
            },
        });
        if !self.params.is_empty() {
            op["parameters"] = Value::Array(self.params);
        }
        if let Some(body) = self.body {
            op["requestBody"] = body;
        }
        (self.verb.to_string(), op)
    }
}

fn body(types: &[&str], schema: &Value) -> Value {
    json!({ "content": content(types, schema), "required": true })
}

fn insert(paths: &mut Map<String, Value>, path: String, path_params: Vec<Value>, ops: Vec<Op<'_>>) {
    let mut item = Map::new();
    for op in ops {
        let (verb, value) = op.build();
        item.insert(verb, value);
    }
    let mut params = path_params;
    params.push(query("pretty"));
    item.insert("parameters".into(), Value::Array(params));
    paths.insert(path, Value::Object(item));
}

/// The paths of every resource served in `group`/`version`.
pub(crate) fn paths(group: &str, version: &str, defs: &[&ResourceDef]) -> Map<String, Value> {
    let mut paths = Map::new();
    let prefix = prefix(group, version);
    let ids = format!("{}{}", group_camel(group), capitalize(version));
    let tag = tag(group, version);
    paths.insert(
        format!("{prefix}/"),
        json!({ "get": {
            "description": "get available resources",
            "operationId": format!("get{ids}APIResources"),
            "tags": [tag],
            "responses": responses(&[("200", "OK")], &schemas::reference(API_RESOURCE_LIST)),
        }}),
    );
    for def in defs {
        let Some(kind) = kinds::find(def.group, def.version, def.kind) else {
            continue;
        };
        resource_paths(&mut paths, &prefix, &ids, &tag, def, kind);
    }
    paths
}

fn resource_paths(
    paths: &mut Map<String, Value>,
    prefix: &str,
    ids: &str,
    tag: &str,
    def: &ResourceDef,
    kind: &KindSchema,
) {
    let object = schemas::reference(&(kind.name)());
    let list = schemas::reference(&schemas::list_name(kind));
    let status = schemas::reference(STATUS);
    let k = def.kind;
    let (scope, base, scope_params) = if def.namespaced {
        let namespace = param(
            "namespace",
            "path",
            "string",
            "object name and auth scope, such as for teams and projects",
        );
        (
            "Namespaced",
            format!("{prefix}/namespaces/{{namespace}}/{}", def.plural),
            vec![namespace],
        )
    } else {
        ("", format!("{prefix}/{}", def.plural), Vec::new())
    };
    let name_param = |what: &str| param("name", "path", "string", &format!("name of the {what}"));
    let op = |verb, action, id: String, description: String, params, body, responses| Op {
        verb,
        action,
        description,
        operation_id: id,
        tag,
        gvk: kind,
        params,
        body,
        responses,
    };

    // The collection.
    let mut ops = vec![
        op(
            "get",
            "list",
            format!("list{ids}{scope}{k}"),
            format!("list or watch objects of kind {k}"),
            queries(LIST_PARAMS),
            None,
            responses(&[("200", "OK")], &list),
        ),
        op(
            "post",
            "post",
            format!("create{ids}{scope}{k}"),
            format!("create a {k}"),
            queries(WRITE_PARAMS),
            Some(body(&["*/*"], &object)),
            responses(&[("200", "OK"), ("201", "Created"), ("202", "Accepted")], &object),
        ),
    ];
    if def.delete_collection {
        let mut params = queries(LIST_PARAMS);
        params.extend(queries(DELETE_PARAMS));
        ops.push(op(
            "delete",
            "deletecollection",
            format!("delete{ids}Collection{scope}{k}"),
            format!("delete collection of {k}"),
            params,
            Some(body(&["*/*"], &schemas::reference(DELETE_OPTIONS))),
            responses(&[("200", "OK")], &status),
        ));
    }
    insert(paths, base.clone(), scope_params.clone(), ops);

    // The collection across namespaces.
    if def.namespaced {
        let all = op(
            "get",
            "list",
            format!("list{ids}{k}ForAllNamespaces"),
            format!("list or watch objects of kind {k}"),
            queries(LIST_PARAMS),
            None,
            responses(&[("200", "OK")], &list),
        );
        insert(paths, format!("{prefix}/{}", def.plural), Vec::new(), vec![all]);
    }

    // One object.
    let mut item_params = vec![name_param(k)];
    item_params.extend(scope_params.iter().cloned());
    let deleted = if def.graceful_delete { &object } else { &status };
    let ops = vec![
        op(
            "get",
            "get",
            format!("read{ids}{scope}{k}"),
            format!("read the specified {k}"),
            Vec::new(),
            None,
            responses(&[("200", "OK")], &object),
        ),
        op(
            "put",
            "put",
            format!("replace{ids}{scope}{k}"),
            format!("replace the specified {k}"),
            queries(WRITE_PARAMS),
            Some(body(&["*/*"], &object)),
            responses(&[("200", "OK"), ("201", "Created")], &object),
        ),
        op(
            "delete",
            "delete",
            format!("delete{ids}{scope}{k}"),
            format!("delete a {k}"),
            queries(DELETE_PARAMS),
            Some(body(&["*/*"], &schemas::reference(DELETE_OPTIONS))),
            responses(&[("200", "OK"), ("202", "Accepted")], deleted),
        ),
        op(
            "patch",
            "patch",
            format!("patch{ids}{scope}{k}"),
            format!("partially update the specified {k}"),
            queries(PATCH_PARAMS),
            Some(body(PATCH_TYPES, &schemas::reference(PATCH))),
            responses(&[("200", "OK"), ("201", "Created")], &object),
        ),
    ];
    let item = format!("{base}/{{name}}");
    insert(paths, item.clone(), item_params.clone(), ops);

    // Subresources.
    for sub in def.subresources {
        let (suffix, target) = match sub {
            Subresource::Status => ("Status", kind),
            Subresource::Scale => match kinds::find("autoscaling", "v1", "Scale") {
                Some(scale) => ("Scale", scale),
                None => continue,
            },
            Subresource::Binding => match kinds::find("", "v1", "Binding") {
                Some(binding) => ("Binding", binding),
                None => continue,
            },
            Subresource::Eviction => match kinds::find("policy", "v1", "Eviction") {
                Some(eviction) => ("Eviction", eviction),
                None => continue,
            },
            Subresource::Finalize => ("Finalize", kind),
            // The log is plain text streamed from the kubelet and exec an upgraded stream,
            // not objects: no schema'd operation (kubectl does not look them up).
            Subresource::Log | Subresource::Exec | Subresource::PortForward | Subresource::Attach => continue,
        };
        let target_ref = schemas::reference(&(target.name)());
        let sub_op = |verb, action, id: String, description: String, params, body, responses| Op {
            verb,
            action,
            description,
            operation_id: id,
            tag,
            gvk: target,
            params,
            body,
            responses,
        };
        let what = format!("{} of the specified {k}", sub.name());
        let ops = match sub {
            Subresource::Status | Subresource::Scale => vec![
                sub_op(
                    "get",
                    "get",
                    format!("read{ids}{scope}{k}{suffix}"),
                    format!("read {what}"),
                    Vec::new(),
                    None,
                    responses(&[("200", "OK")], &target_ref),
                ),
                sub_op(
                    "put",
                    "put",
                    format!("replace{ids}{scope}{k}{suffix}"),
                    format!("replace {what}"),
                    queries(WRITE_PARAMS),
                    Some(body(&["*/*"], &target_ref)),
                    responses(&[("200", "OK"), ("201", "Created")], &target_ref),
                ),
                sub_op(
                    "patch",
                    "patch",
                    format!("patch{ids}{scope}{k}{suffix}"),
                    format!("partially update {what}"),
                    queries(PATCH_PARAMS),
                    Some(body(PATCH_TYPES, &schemas::reference(PATCH))),
                    responses(&[("200", "OK"), ("201", "Created")], &target_ref),
                ),
            ],
            Subresource::Binding | Subresource::Eviction => vec![sub_op(
                "post",
                "post",
                format!("create{ids}{scope}{k}{suffix}"),
                format!("create {} of a {k}", sub.name()),
                queries(WRITE_PARAMS),
                Some(body(&["*/*"], &target_ref)),
                responses(&[("200", "OK"), ("201", "Created"), ("202", "Accepted")], &target_ref),
            )],
            Subresource::Finalize => vec![sub_op(
                "put",
                "put",
                format!("replace{ids}{scope}{k}{suffix}"),
                format!("replace {what}"),
                queries(WRITE_PARAMS),
                Some(body(&["*/*"], &target_ref)),
                responses(&[("200", "OK"), ("201", "Created")], &target_ref),
            )],
            Subresource::Log | Subresource::Exec | Subresource::PortForward | Subresource::Attach => continue,
        };
        let sub_params = if matches!(sub, Subresource::Binding | Subresource::Eviction) {
            let mut p = vec![name_param(target.kind)];
            p.extend(scope_params.iter().cloned());
            p
        } else {
            item_params.clone()
        };
        insert(paths, format!("{item}/{}", sub.name()), sub_params, ops);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(group_camel(""), "Core");
        assert_eq!(group_camel("rbac.authorization.k8s.io"), "RbacAuthorization");
        assert_eq!(group_camel("apps"), "Apps");
        assert_eq!(tag("rbac.authorization.k8s.io", "v1"), "rbacAuthorization_v1");
        assert_eq!(tag("", "v1"), "core_v1");
        assert_eq!(prefix("", "v1"), "/api/v1");
        assert_eq!(prefix("apps", "v1"), "/apis/apps/v1");
    }
}
