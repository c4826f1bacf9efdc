//! Leases, endpoint slices, ingresses, network policies, RBAC bindings, custom resource
//! definitions, and the apiserver's default convertor (`Name`, `Created At`) for kinds without
//! a printer (roles, cluster roles, limit ranges).

use jiff::Timestamp;
use serde_json::Value;

use super::descriptions as d;
use super::format::{age, first_of, format_label_selector, rfc3339};
use super::value::{Read, strings};
use super::{AGE, Column, NAME, Printer, col, wide};

const fn printer(columns: &'static [Column], cells: fn(&Value, Timestamp) -> Vec<Value>) -> Printer {
    Printer {
        columns,
        cells,
        null_rows_when_empty: false,
    }
}

/// `Created At`: an RFC 3339 date, which kubectl prints as given.
const CREATED_AT: Column = col("Created At", "date", d::CREATION);

fn created_at(o: &Value) -> Value {
    rfc3339(o.time_at(&["metadata", "creationTimestamp"])).into()
}

// ---- default convertor ----

pub(crate) static DEFAULT: Printer = Printer {
    columns: &[NAME, CREATED_AT],
    cells: |o, _| vec![o.name().into(), created_at(o)],
    null_rows_when_empty: true,
};

// ---- custom resource definitions ----

pub(crate) static CRD: Printer = Printer {
    columns: &[
        NAME,
        col("Scope", "string", "Cluster/Namespaced"),
        col("Versions", "string", "Served versions"),
        CREATED_AT,
        wide("Group", "string", "API group"),
        wide("Kind", "string", "CustomResource kind"),
        wide("ShortNames", "string", "Short names"),
        wide("Established", "boolean", "Established status"),
    ],
    cells: crd_cells,
    null_rows_when_empty: true,
};

fn crd_cells(o: &Value, _now: Timestamp) -> Vec<Value> {
    let mut versions: Vec<String> = o
        .list_at(&["spec", "versions"])
        .iter()
        .filter(|v| v.bool_at(&["served"]))
        .map(|v| {
            let name = v.str_at(&["name"]);
            if v.bool_at(&["storage"]) {
                format!("{name}(storage)")
            } else {
                name.to_string()
            }
        })
        .collect();
    versions.sort();
    let established = o
        .list_at(&["status", "conditions"])
        .iter()
        .any(|c| c.str_at(&["type"]) == "Established" && c.str_at(&["status"]) == "True");
    vec![
        o.name().into(),
        o.str_at(&["spec", "scope"]).into(),
        versions.join(",").into(),
        created_at(o),
        o.str_at(&["spec", "group"]).into(),
        o.str_at(&["spec", "names", "kind"]).into(),
        strings(o.list_at(&["spec", "names", "shortNames"])).join(",").into(),
        established.into(),
    ]
}

// ---- leases ----

pub(crate) static LEASE: Printer = printer(&[NAME, col("Holder", "string", d::LEASE_HOLDER), AGE], |o, now| {
    vec![
        o.name().into(),
        o.str_at(&["spec", "holderIdentity"]).into(),
        age(o, now),
    ]
});

// ---- endpoint slices ----

pub(crate) static ENDPOINT_SLICE: Printer = printer(
    &[
        NAME,
        col("AddressType", "string", d::ES_ADDRESS_TYPE),
        col("Ports", "string", d::ES_PORTS),
        col("Endpoints", "string", d::ES_ENDPOINTS),
        AGE,
    ],
    |o, now| {
        let ports: Vec<String> = o
            .list_at(&["ports"])
            .iter()
            .map(|p| match (p.opt_int(&["port"]), p.opt_str(&["name"])) {
                (Some(port), _) => port.to_string(),
                (None, Some(name)) => name.to_string(),
                (None, None) => "*".to_string(),
            })
            .collect();
        let addresses: Vec<String> = o
            .list_at(&["endpoints"])
            .iter()
            .flat_map(|e| strings(e.list_at(&["addresses"])))
            .map(str::to_string)
            .collect();
        vec![
            o.name().into(),
            o.str_at(&["addressType"]).into(),
            first_of(&ports, 3, "<unset>").into(),
            first_of(&addresses, 3, "<unset>").into(),
            age(o, now),
        ]
    },
);

// ---- ingresses ----

pub(crate) static INGRESS: Printer = printer(
    &[
        NAME,
        col(
            "Class",
            "string",
            "The name of the IngressClass resource that should be used for additional configuration",
        ),
        col(
            "Hosts",
            "string",
            "Hosts that incoming requests are matched against before the ingress rule",
        ),
        col(
            "Address",
            "string",
            "Address is a list containing ingress points for the load-balancer",
        ),
        col("Ports", "string", "Ports of TLS configurations that open"),
        AGE,
    ],
    |o, now| {
        let class = o.opt_str(&["spec", "ingressClassName"]).unwrap_or("<none>");
        let mut address: Vec<&str> = o
            .list_at(&["status", "loadBalancer", "ingress"])
            .iter()
            .filter_map(|i| {
                [i.str_at(&["ip"]), i.str_at(&["hostname"])]
                    .into_iter()
                    .find(|s| !s.is_empty())
            })
            .collect();
        address.sort_unstable();
        address.dedup();
        let ports = if o.list_at(&["spec", "tls"]).is_empty() {
            "80"
        } else {
            "80, 443"
        };
        vec![
            o.name().into(),
            class.into(),
            ingress_hosts(o.list_at(&["spec", "rules"])).into(),
            address.join(",").into(),
            ports.into(),
            age(o, now),
        ]
    },
);

/// `formatHosts`: the first three hosts; the count beyond counts every rule, hosted or not.
fn ingress_hosts(rules: &[Value]) -> String {
    let mut list: Vec<&str> = Vec::new();
    let mut more = false;
    for rule in rules {
        if list.len() == 3 {
            more = true;
        }
        let host = rule.str_at(&["host"]);
        if !more && !host.is_empty() {
            list.push(host);
        }
    }
    if list.is_empty() {
        return "*".to_string();
    }
    let shown = list.join(",");
    if more {
        format!("{shown} + {} more...", rules.len().saturating_sub(3))
    } else {
        shown
    }
}

// ---- network policies ----

pub(crate) static NETWORK_POLICY: Printer = printer(
    &[NAME, col("Pod-Selector", "string", d::NP_POD_SELECTOR), AGE],
    |o, now| {
        // The pod selector is a struct, not a pointer: unset reads as the empty selector.
        let selector = format_label_selector(o.at(&["spec", "podSelector"]));
        vec![o.name().into(), selector.into(), age(o, now)]
    },
);

// ---- RBAC bindings ----

pub(crate) static ROLE_BINDING: Printer = printer(
    &[
        NAME,
        col("Role", "string", d::RB_ROLE_REF),
        AGE,
        wide("Users", "string", "Users in the roleBinding"),
        wide("Groups", "string", "Groups in the roleBinding"),
        wide("ServiceAccounts", "string", "ServiceAccounts in the roleBinding"),
    ],
    binding_cells,
);

/// The cluster role binding columns differ from the role binding ones only in descriptions.
pub(crate) static CLUSTER_ROLE_BINDING: Printer = printer(
    &[
        NAME,
        col("Role", "string", d::CRB_ROLE_REF),
        AGE,
        wide("Users", "string", "Users in the clusterRoleBinding"),
        wide("Groups", "string", "Groups in the clusterRoleBinding"),
        wide("ServiceAccounts", "string", "ServiceAccounts in the clusterRoleBinding"),
    ],
    binding_cells,
);

/// `rbac.SubjectsStrings`: users, groups and `namespace/name` service accounts, `, `-joined.
fn binding_cells(o: &Value, now: Timestamp) -> Vec<Value> {
    let (mut users, mut groups, mut accounts) = (Vec::new(), Vec::new(), Vec::new());
    for s in o.list_at(&["subjects"]) {
        let name = s.str_at(&["name"]);
        match s.str_at(&["kind"]) {
            "User" => users.push(name.to_string()),
            "Group" => groups.push(name.to_string()),
            "ServiceAccount" => accounts.push(format!("{}/{name}", s.str_at(&["namespace"]))),
            _ => {}
        }
    }
    let role = format!("{}/{}", o.str_at(&["roleRef", "kind"]), o.str_at(&["roleRef", "name"]));
    vec![
        o.name().into(),
        role.into(),
        age(o, now),
        users.join(", ").into(),
        groups.join(", ").into(),
        accounts.join(", ").into(),
    ]
}
