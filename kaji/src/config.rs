//! `kaji up --config cluster.yaml`: a cluster described in a file (kind's `--config` idea),
//! and the plan `kaji up` follows once the file and the command line are merged. Flags win
//! over the file: `--name`, `--etcd-members`, `--apiservers` replace its values, registries
//! given both ways are all used, and `--nodes N` must agree with a file that lists its nodes.
//!
//! ```yaml
//! apiVersion: kaji.dev/v1alpha1
//! kind: Cluster
//! name: dev
//! nodes:
//! - labels: {disk: ssd}
//! - taints: [{key: dedicated, value: db, effect: NoSchedule}]
//! insecureRegistries: ["10.250.0.1:5000"]
//! registryMirrors: {docker.io: "10.250.0.1:5000"}
//! etcd: {members: 3}
//! apiservers: 2
//! extraArgs:
//!   kube-controller-manager: {node-monitor-grace-period: 10s}
//! ```
//!
//! Every field is checked before anything is made; a mistake is one line naming the field.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use crate::UpArgs;
use crate::units::{APISERVER, CONTROLLER_MANAGER, KUBELET, PROXY, SCHEDULER, Unit};

pub const API_VERSION: &str = "kaji.dev/v1alpha1";

/// The file, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ClusterFile {
    api_version: Option<String>,
    kind: Option<String>,
    name: Option<String>,
    nodes: Option<Vec<NodeFile>>,
    #[serde(default)]
    insecure_registries: Vec<String>,
    #[serde(default)]
    registry_mirrors: BTreeMap<String, String>,
    etcd: Option<EtcdFile>,
    apiservers: Option<u8>,
    #[serde(default)]
    extra_args: BTreeMap<String, BTreeMap<String, serde_json::Value>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeFile {
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    taints: Vec<TaintFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TaintFile {
    key: String,
    #[serde(default)]
    value: Option<String>,
    effect: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct EtcdFile {
    members: Option<u8>,
}

/// What `kaji up` makes: the file and the flags merged and checked.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    pub name: String,
    /// Given (by `--nodes` or the file): an existing cluster must have as many.
    pub nodes_given: bool,
    pub nodes: Vec<NodePlan>,
    pub kubeconfig: Option<PathBuf>,
    pub insecure_registries: Vec<String>,
    /// `FROM=TO` pairs for the kubelets' `--registry-mirror`.
    pub registry_mirrors: Vec<String>,
    /// `None`: the apiserver's embedded store.
    pub etcd_members: Option<u8>,
    pub apiservers: u8,
    /// Extra command-line words per component (`kube-apiserver`, `kubelet`, ...).
    pub extra_args: BTreeMap<String, Vec<String>>,
}

/// One node's registration settings.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodePlan {
    /// `--node-labels`: `k=v,k2=v2`.
    pub labels: String,
    /// `--register-with-taints`: `key=value:Effect,...`.
    pub taints: String,
}

impl Plan {
    /// Merges `args` over the file `--config` names (if any) and checks the result.
    pub fn from_args(args: &UpArgs) -> Result<Plan> {
        let file = match &args.config {
            Some(path) => read(path)?,
            None => ClusterFile::default(),
        };
        merge(file, args)
    }

    /// The extra words for `unit`, joined as its `$EXTRA_ARGS` takes them.
    pub fn extra(&self, unit: &Unit) -> String {
        self.extra_args
            .get(unit.name)
            .map(|words| words.join(" "))
            .unwrap_or_default()
    }
}

fn read(path: &Path) -> Result<ClusterFile> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse(&text).with_context(|| format!("{}", path.display()))
}

fn parse(text: &str) -> Result<ClusterFile> {
    let file: ClusterFile = serde_saphyr::from_str(text).map_err(|e| anyhow::anyhow!("{e}"))?;
    match file.api_version.as_deref() {
        Some(API_VERSION) => {}
        Some(other) => bail!("apiVersion {other:?} is not supported: use {API_VERSION}"),
        None => bail!("apiVersion is missing: use {API_VERSION}"),
    }
    match file.kind.as_deref() {
        Some("Cluster") => {}
        Some(other) => bail!("kind {other:?} is not supported: use Cluster"),
        None => bail!("kind is missing: use Cluster"),
    }
    Ok(file)
}

fn merge(file: ClusterFile, args: &UpArgs) -> Result<Plan> {
    let name = args.name.clone().or(file.name).unwrap_or_else(|| "kaji".to_string());
    let nodes_given = args.nodes.is_some() || file.nodes.is_some();
    let nodes = match (file.nodes, args.nodes) {
        (Some(listed), Some(n)) if listed.len() != usize::from(n) => {
            bail!("--nodes {n} disagrees with the {} nodes the config lists", listed.len())
        }
        (Some(listed), _) => {
            if listed.is_empty() {
                bail!("nodes: list at least one node (or leave nodes out for one)");
            }
            listed
                .iter()
                .enumerate()
                .map(|(i, node)| node_plan(i, node))
                .collect::<Result<Vec<_>>>()?
        }
        (None, n) => vec![NodePlan::default(); usize::from(n.unwrap_or(1))],
    };
    if !(1..=50).contains(&nodes.len()) {
        bail!("--nodes must be between 1 and 50");
    }
    let mut insecure_registries = file.insecure_registries;
    for registry in &args.insecure_registries {
        if !insecure_registries.contains(registry) {
            insecure_registries.push(registry.clone());
        }
    }
    for registry in &insecure_registries {
        check_word("insecureRegistries", registry)?;
    }
    let mut registry_mirrors = Vec::new();
    for (from, to) in &file.registry_mirrors {
        check_word("registryMirrors", from)?;
        check_word("registryMirrors", to)?;
        registry_mirrors.push(format!("{from}={to}"));
    }
    let file_members = file.etcd.map(|etcd| etcd.members.unwrap_or(1));
    let etcd_members = args.etcd_members.or(file_members).or(args.etcd.then_some(1));
    let apiservers = args.apiservers.or(file.apiservers).unwrap_or(1);
    let mut extra_args = BTreeMap::new();
    for (component, flags) in file.extra_args {
        let unit = [&APISERVER, &SCHEDULER, &CONTROLLER_MANAGER, &KUBELET, &PROXY]
            .into_iter()
            .find(|unit| unit.name == component)
            .with_context(|| {
                format!(
                    "extraArgs: unknown component {component:?}: use kube-apiserver, kube-scheduler, kube-controller-manager, kubelet or kube-proxy"
                )
            })?;
        extra_args.insert(component.clone(), extra_words(unit, &flags)?);
    }
    Ok(Plan {
        name,
        nodes_given,
        nodes,
        kubeconfig: args.kubeconfig.clone(),
        insecure_registries,
        registry_mirrors,
        etcd_members,
        apiservers,
        extra_args,
    })
}

fn node_plan(index: usize, node: &NodeFile) -> Result<NodePlan> {
    let field = format!("nodes[{index}]");
    let mut labels = Vec::new();
    for (key, value) in &node.labels {
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c)) {
            bail!("{field}.labels: invalid label key {key:?}");
        }
        if !value.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
            bail!("{field}.labels: invalid value {value:?} for {key}");
        }
        labels.push(format!("{key}={value}"));
    }
    let mut taints = Vec::new();
    for taint in &node.taints {
        if !matches!(taint.effect.as_str(), "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
            bail!(
                "{field}.taints: effect {:?} must be NoSchedule, PreferNoSchedule or NoExecute",
                taint.effect
            );
        }
        let valid = |s: &str| s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c));
        if taint.key.is_empty() || !valid(&taint.key) || !taint.value.as_deref().is_none_or(valid) {
            bail!("{field}.taints: invalid taint key or value {:?}", taint.key);
        }
        taints.push(match &taint.value {
            Some(value) => format!("{}={value}:{}", taint.key, taint.effect),
            None => format!("{}:{}", taint.key, taint.effect),
        });
    }
    Ok(NodePlan {
        labels: labels.join(","),
        taints: taints.join(","),
    })
}

/// `--flag=value` words for `unit` from a map of flag names (without dashes) to values; a
/// flag kaji sets itself is refused (the component would see it twice).
fn extra_words(unit: &Unit, flags: &BTreeMap<String, serde_json::Value>) -> Result<Vec<String>> {
    let (_, base) = unit.command(&[])?;
    let mut words = Vec::new();
    for (flag, value) in flags {
        let field = format!("extraArgs.{}.{flag}", unit.name);
        if flag.starts_with('-') {
            bail!("{field}: write the flag's name without dashes");
        }
        if flag.is_empty() || !flag.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            bail!("{field}: invalid flag name");
        }
        let dashed = format!("--{flag}");
        if base
            .iter()
            .any(|word| word == &dashed || word.starts_with(&format!("{dashed}=")))
        {
            bail!("{field}: kaji sets {dashed} itself");
        }
        let value = match value {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Bool(b) => b.to_string(),
            _ => bail!("{field}: the value must be a string, a number or a boolean"),
        };
        check_word(&field, &value)?;
        words.push(format!("{dashed}={value}"));
    }
    Ok(words)
}

/// Values become words of a unit's `$EXTRA_ARGS`, which splits at whitespace.
fn check_word(field: &str, value: &str) -> Result<()> {
    if value.is_empty() || value.chars().any(|c| c.is_whitespace() || c == '"' || c == '\'') {
        bail!("{field}: {value:?} must be one word without quotes");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(flags: &[&str]) -> UpArgs {
        use clap::Parser;
        let cli = crate::Cli::parse_from([&["kaji", "up"], flags].concat());
        match cli.command {
            crate::Command::Up(args) => args,
            _ => unreachable!(),
        }
    }

    fn plan_of(yaml: &str, flags: &[&str]) -> Result<Plan> {
        merge(parse(yaml)?, &args(flags))
    }

    const FULL: &str = r#"
apiVersion: kaji.dev/v1alpha1
kind: Cluster
name: dev
nodes:
- labels: {disk: ssd, topology.kubernetes.io/zone: a}
- taints: [{key: dedicated, value: db, effect: NoSchedule}, {key: gpu, effect: NoExecute}]
- {}
insecureRegistries: ["10.250.0.1:5000"]
registryMirrors: {docker.io: "10.250.0.1:5000"}
etcd: {members: 3}
apiservers: 2
extraArgs:
  kube-controller-manager: {node-monitor-grace-period: 10s, concurrent-deployment-syncs: 2}
  kube-proxy: {proxy-mode: nftables}
"#;

    #[test]
    fn a_full_file_becomes_the_plan() {
        let plan = plan_of(FULL, &[]).expect("plan");
        assert_eq!(plan.name, "dev");
        assert_eq!(
            plan.nodes,
            [
                NodePlan {
                    labels: "disk=ssd,topology.kubernetes.io/zone=a".into(),
                    taints: String::new()
                },
                NodePlan {
                    labels: String::new(),
                    taints: "dedicated=db:NoSchedule,gpu:NoExecute".into()
                },
                NodePlan::default(),
            ]
        );
        assert_eq!(plan.insecure_registries, ["10.250.0.1:5000"]);
        assert_eq!(plan.registry_mirrors, ["docker.io=10.250.0.1:5000"]);
        assert_eq!((plan.etcd_members, plan.apiservers), (Some(3), 2));
        assert_eq!(
            plan.extra(&CONTROLLER_MANAGER),
            "--concurrent-deployment-syncs=2 --node-monitor-grace-period=10s"
        );
        assert_eq!(plan.extra(&PROXY), "--proxy-mode=nftables");
        assert_eq!(plan.extra(&KUBELET), "");
    }

    #[test]
    fn flags_win_over_the_file() {
        let plan = plan_of(
            FULL,
            &[
                "--name",
                "other",
                "--nodes",
                "3",
                "--etcd-members",
                "1",
                "--apiservers",
                "1",
                "--insecure-registry",
                "10.250.0.1:5001",
            ],
        )
        .expect("plan");
        assert_eq!(plan.name, "other");
        assert_eq!((plan.etcd_members, plan.apiservers), (Some(1), 1));
        assert_eq!(plan.insecure_registries, ["10.250.0.1:5000", "10.250.0.1:5001"]);
        let error = plan_of(FULL, &["--nodes", "2"]).expect_err("disagrees");
        assert_eq!(
            error.to_string(),
            "--nodes 2 disagrees with the 3 nodes the config lists"
        );
    }

    #[test]
    fn without_a_file_the_flags_are_the_plan() {
        let plan = merge(ClusterFile::default(), &args(&["--nodes", "2", "--etcd"])).expect("plan");
        assert_eq!(plan.name, "kaji");
        assert_eq!(plan.nodes.len(), 2);
        assert!(plan.nodes_given);
        assert_eq!((plan.etcd_members, plan.apiservers), (Some(1), 1));
        let plan = merge(ClusterFile::default(), &args(&[])).expect("plan");
        assert!(!plan.nodes_given);
        assert_eq!((plan.nodes.len(), plan.etcd_members), (1, None));
    }

    #[test]
    fn mistakes_are_named() {
        let header = "apiVersion: kaji.dev/v1alpha1\nkind: Cluster\n";
        for (body, expected) in [
            ("nodes: []\n", "nodes: list at least one node"),
            (
                "nodes:\n- taints: [{key: a, effect: Sometimes}]\n",
                "nodes[0].taints: effect",
            ),
            ("nodes:\n- labels: {\"a b\": c}\n", "nodes[0].labels: invalid label key"),
            ("extraArgs:\n  etcd: {a: b}\n", "extraArgs: unknown component \"etcd\""),
            (
                "extraArgs:\n  kubelet: {--v: 2}\n",
                "extraArgs.kubelet.--v: write the flag's name without dashes",
            ),
            (
                "extraArgs:\n  kubelet: {root-dir: /x}\n",
                "extraArgs.kubelet.root-dir: kaji sets --root-dir itself",
            ),
            (
                "extraArgs:\n  kube-apiserver: {event-ttl: 5m 3s}\n",
                "must be one word without quotes",
            ),
            (
                "extraArgs:\n  kube-proxy: {a: [1]}\n",
                "must be a string, a number or a boolean",
            ),
        ] {
            let error = plan_of(&format!("{header}{body}"), &[]).expect_err(body);
            assert!(error.to_string().contains(expected), "{body}: {error}");
        }
        for (text, expected) in [
            ("kind: Cluster\n", "apiVersion is missing"),
            (
                "apiVersion: kind.x-k8s.io/v1alpha4\nkind: Cluster\n",
                "is not supported",
            ),
            (
                "apiVersion: kaji.dev/v1alpha1\nkind: Pod\n",
                "kind \"Pod\" is not supported",
            ),
            ("apiVersion: kaji.dev/v1alpha1\nkind: Cluster\nworkers: 3\n", "workers"),
            ("apiVersion: kaji.dev/v1alpha1\nkind: Cluster\nnodes: 3\n", "nodes"),
        ] {
            let error = parse(text).map(|_| ()).expect_err(text);
            assert!(format!("{error:#}").contains(expected), "{text}: {error:#}");
        }
    }

    #[test]
    fn the_shipped_example_is_valid() {
        let text = include_str!("../../manifests/kaji/cluster.yaml");
        let plan = merge(parse(text).expect("parses"), &args(&[])).expect("plan");
        assert!(plan.nodes.len() > 1);
    }
}
