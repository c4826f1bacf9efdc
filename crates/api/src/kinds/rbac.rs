//! rbac.authorization.k8s.io/v1 kinds: upstream's `pkg/apis/rbac/v1/defaults.go` (API groups
//! of role refs and subjects) and `pkg/apis/rbac/validation` (rules, role refs, subjects).

use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject};

use crate::field::{FieldError, child, go_string_slice, index};
use crate::selector::LabelSelector;
use crate::strategy::{Operation, Typed};
use crate::validation::common::{invalid_each, validate_label_selector};
use crate::validation::names::{is_dns1123_subdomain, is_valid_path_segment_name};

const GROUP: &str = "rbac.authorization.k8s.io";

pub(crate) static ROLE: Typed<Role> = Typed::new(crate::strategy::no_defaults, validate_role);
pub(crate) static ROLE_BINDING: Typed<RoleBinding> = Typed::new(default_role_binding, validate_role_binding);
pub(crate) static CLUSTER_ROLE: Typed<ClusterRole> = Typed::new(crate::strategy::no_defaults, validate_cluster_role);
pub(crate) static CLUSTER_ROLE_BINDING: Typed<ClusterRoleBinding> =
    Typed::new(default_cluster_role_binding, validate_cluster_role_binding);

fn default_ref_and_subjects(role_ref: &mut RoleRef, subjects: Option<&mut Vec<Subject>>) {
    if role_ref.api_group.as_deref().is_none_or(str::is_empty) {
        role_ref.api_group = Some(GROUP.into());
    }
    for s in subjects.into_iter().flatten() {
        if s.api_group.as_deref().is_none_or(str::is_empty) && matches!(s.kind.as_str(), "User" | "Group") {
            s.api_group = Some(GROUP.into());
        }
    }
}

fn default_role_binding(rb: &mut RoleBinding) {
    default_ref_and_subjects(&mut rb.role_ref, rb.subjects.as_mut());
}

fn default_cluster_role_binding(rb: &mut ClusterRoleBinding) {
    default_ref_and_subjects(&mut rb.role_ref, rb.subjects.as_mut());
}

/// upstream's `ValidatePolicyRule`.
fn validate_rule(rule: &PolicyRule, namespaced: bool, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if rule.verbs.is_empty() {
        errs.push(FieldError::required(
            child(path, "verbs"),
            "verbs must contain at least one value",
        ));
    }
    let urls = rule.non_resource_urls.as_deref().unwrap_or_default();
    let nonempty = |v: &Option<Vec<String>>| v.as_ref().is_some_and(|v| !v.is_empty());
    if !urls.is_empty() {
        let rendered = go_string_slice(urls);
        if namespaced {
            errs.push(FieldError::invalid_rendered(
                child(path, "nonResourceURLs"),
                rendered.clone(),
                "namespaced rules cannot apply to non-resource URLs",
            ));
        }
        if nonempty(&rule.api_groups) || nonempty(&rule.resources) || nonempty(&rule.resource_names) {
            errs.push(FieldError::invalid_rendered(
                child(path, "nonResourceURLs"),
                rendered,
                "rules cannot apply to both regular resources and non-resource URLs",
            ));
        }
        return errs;
    }
    if !nonempty(&rule.api_groups) {
        errs.push(FieldError::required(
            child(path, "apiGroups"),
            "resource rules must supply at least one api group",
        ));
    }
    if !nonempty(&rule.resources) {
        errs.push(FieldError::required(
            child(path, "resources"),
            "resource rules must supply at least one resource",
        ));
    }
    errs
}

fn validate_rules(rules: Option<&Vec<PolicyRule>>, namespaced: bool) -> Vec<FieldError> {
    rules
        .into_iter()
        .flatten()
        .enumerate()
        .flat_map(|(i, r)| validate_rule(r, namespaced, &index("rules", i)))
        .collect()
}

fn validate_role(role: &Role, _old: Option<&Role>, _op: Operation) -> Vec<FieldError> {
    validate_rules(role.rules.as_ref(), true)
}

fn validate_cluster_role(role: &ClusterRole, _old: Option<&ClusterRole>, _op: Operation) -> Vec<FieldError> {
    let mut errs = validate_rules(role.rules.as_ref(), false);
    if let Some(rule) = &role.aggregation_rule {
        let selectors = rule.cluster_role_selectors.as_deref().unwrap_or_default();
        let path = "aggregationRule.clusterRoleSelectors";
        if selectors.is_empty() {
            errs.push(FieldError::required(
                path,
                "at least one clusterRoleSelector required if aggregationRule is non-nil",
            ));
        }
        for (i, sel) in selectors.iter().enumerate() {
            let spath = index(path, i);
            errs.extend(validate_label_selector(sel, &spath));
            if LabelSelector::from_label_selector(sel).is_err() {
                errs.push(FieldError::invalid(
                    spath,
                    serde_json::to_value(sel).unwrap_or_default(),
                    "invalid label selector.",
                ));
            }
        }
    }
    errs
}

/// upstream's `RoleRef` as Go prints it in "cannot change roleRef".
fn go_role_ref(r: &RoleRef) -> String {
    format!(
        "rbac.RoleRef{{APIGroup:{:?}, Kind:{:?}, Name:{:?}}}",
        r.api_group.as_deref().unwrap_or_default(),
        r.kind,
        r.name
    )
}

fn validate_binding(
    role_ref: &RoleRef,
    subjects: Option<&Vec<Subject>>,
    old_ref: Option<&RoleRef>,
    kinds: &[&str],
    namespaced: bool,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let group = role_ref.api_group.as_deref().unwrap_or_default();
    if group != GROUP {
        errs.push(FieldError::not_supported("roleRef.apiGroup", group, &[GROUP]));
    }
    if !kinds.contains(&role_ref.kind.as_str()) {
        errs.push(FieldError::not_supported("roleRef.kind", role_ref.kind.as_str(), kinds));
    }
    if role_ref.name.is_empty() {
        errs.push(FieldError::required("roleRef.name", ""));
    } else {
        errs.extend(invalid_each(
            "roleRef.name",
            &role_ref.name,
            is_valid_path_segment_name(&role_ref.name),
        ));
    }
    for (i, s) in subjects.into_iter().flatten().enumerate() {
        errs.extend(validate_subject(s, namespaced, &index("subjects", i)));
    }
    if let Some(old) = old_ref
        && old != role_ref
    {
        errs.push(FieldError::invalid_rendered(
            "roleRef",
            go_role_ref(role_ref),
            "cannot change roleRef",
        ));
    }
    errs
}

/// upstream's `ValidateRoleBindingSubject`.
fn validate_subject(s: &Subject, namespaced: bool, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if s.name.is_empty() {
        errs.push(FieldError::required(child(path, "name"), ""));
    }
    let group = s.api_group.as_deref().unwrap_or_default();
    match s.kind.as_str() {
        "ServiceAccount" => {
            if !s.name.is_empty() {
                errs.extend(invalid_each(
                    &child(path, "name"),
                    &s.name,
                    is_dns1123_subdomain(&s.name),
                ));
            }
            if !group.is_empty() {
                errs.push(FieldError::not_supported(child(path, "apiGroup"), group, &[""]));
            }
            if !namespaced && s.namespace.as_deref().unwrap_or_default().is_empty() {
                errs.push(FieldError::required(child(path, "namespace"), ""));
            }
        }
        "User" | "Group" => {
            if group != GROUP {
                errs.push(FieldError::not_supported(child(path, "apiGroup"), group, &[GROUP]));
            }
        }
        other => errs.push(FieldError::not_supported(
            child(path, "kind"),
            other,
            &["ServiceAccount", "User", "Group"],
        )),
    }
    errs
}

fn validate_role_binding(rb: &RoleBinding, old: Option<&RoleBinding>, _op: Operation) -> Vec<FieldError> {
    validate_binding(
        &rb.role_ref,
        rb.subjects.as_ref(),
        old.map(|o| &o.role_ref),
        &["Role", "ClusterRole"],
        true,
    )
}

fn validate_cluster_role_binding(
    rb: &ClusterRoleBinding,
    old: Option<&ClusterRoleBinding>,
    _op: Operation,
) -> Vec<FieldError> {
    validate_binding(
        &rb.role_ref,
        rb.subjects.as_ref(),
        old.map(|o| &o.role_ref),
        &["ClusterRole"],
        false,
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::kinds::testutil::{admit, assert_matches, check_invalid, create_ok, def, merge};
    use crate::strategy::Operation;

    #[test]
    fn roles() {
        let d = def(super::GROUP, "v1", "roles");
        let base = json!({"metadata": {"name": "reader", "namespace": "default"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]});
        create_ok(d, base.clone());
        check_invalid(
            d,
            &base,
            &[
                (
                    json!({"rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": []}]}),
                    &["rules[0].verbs: Required value: verbs must contain at least one value"],
                ),
                (
                    json!({"rules": [{"verbs": ["get"]}]}),
                    &[
                        "rules[0].apiGroups: Required value: resource rules must supply at least one api group",
                        "rules[0].resources: Required value: resource rules must supply at least one resource",
                    ],
                ),
                (
                    json!({"rules": [{"verbs": ["get"], "nonResourceURLs": ["/healthz"]}]}),
                    &[
                        "rules[0].nonResourceURLs: Invalid value: []string{\"/healthz\"}: namespaced rules cannot apply to non-resource URLs",
                    ],
                ),
            ],
        );
        let cr = def(super::GROUP, "v1", "clusterroles");
        create_ok(
            cr,
            json!({"metadata": {"name": "system:health"}, "rules": [{"verbs": ["get"], "nonResourceURLs": ["/healthz"]}]}),
        );
        check_invalid(
            cr,
            &json!({"metadata": {"name": "agg"}}),
            &[(
                json!({"aggregationRule": {"clusterRoleSelectors": []}}),
                &["aggregationRule.clusterRoleSelectors: Required value: at least one clusterRoleSelector required"],
            )],
        );
    }

    #[test]
    fn bindings() {
        let d = def(super::GROUP, "v1", "rolebindings");
        let base = json!({"metadata": {"name": "read", "namespace": "default"},
            "roleRef": {"kind": "Role", "name": "reader"},
            "subjects": [{"kind": "User", "name": "jane"}, {"kind": "ServiceAccount", "name": "default", "namespace": "default"}]});
        let rb = create_ok(d, base.clone());
        assert_eq!(rb["roleRef"]["apiGroup"], "rbac.authorization.k8s.io");
        assert_eq!(rb["subjects"][0]["apiGroup"], "rbac.authorization.k8s.io");
        assert!(rb["subjects"][1].get("apiGroup").is_none());
        check_invalid(
            d,
            &base,
            &[
                (
                    json!({"roleRef": {"kind": "Pod"}}),
                    &["roleRef.kind: Unsupported value: \"Pod\": supported values: \"Role\", \"ClusterRole\""],
                ),
                (
                    json!({"roleRef": {"apiGroup": "apps"}}),
                    &["roleRef.apiGroup: Unsupported value: \"apps\": supported values: \"rbac.authorization.k8s.io\""],
                ),
                (
                    json!({"subjects": [{"kind": "Robot", "name": "r2"}]}),
                    &[
                        "subjects[0].kind: Unsupported value: \"Robot\": supported values: \"ServiceAccount\", \"User\", \"Group\"",
                    ],
                ),
                (
                    json!({"subjects": [{"kind": "User", "name": ""}]}),
                    &["subjects[0].name: Required value"],
                ),
            ],
        );
        let err = admit(
            d,
            merge(&rb, &json!({"roleRef": {"name": "writer"}})),
            Some(&rb),
            Operation::Update,
        )
        .err()
        .unwrap_or_default();
        assert_matches(
            &err,
            &[
                "roleRef: Invalid value: rbac.RoleRef{APIGroup:\"rbac.authorization.k8s.io\", Kind:\"Role\", Name:\"writer\"}: cannot change roleRef",
            ],
            &json!("ref"),
        );

        let crb = def(super::GROUP, "v1", "clusterrolebindings");
        check_invalid(
            crb,
            &json!({"metadata": {"name": "admins"}, "roleRef": {"kind": "ClusterRole", "name": "admin"}}),
            &[
                (
                    json!({"roleRef": {"kind": "Role"}}),
                    &["roleRef.kind: Unsupported value: \"Role\": supported values: \"ClusterRole\""],
                ),
                (
                    json!({"subjects": [{"kind": "ServiceAccount", "name": "sa"}]}),
                    &["subjects[0].namespace: Required value"],
                ),
            ],
        );
    }
}
