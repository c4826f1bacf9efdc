//! From a Kubernetes container to what the runtime runs: the command line (ENTRYPOINT/CMD vs
//! command/args with `$(VAR)` expansion), the user (securityContext or the image's), cgroup
//! resources from requests and limits, capabilities and the other securityContext switches.

use std::collections::BTreeMap;
use std::path::Path;

use k8s_openapi::api::core::v1::{Container, PodSpec};

use api::validation::quantity::Quantity;

use super::env::expand;

/// The command line upstream's kubelet runs (`kuberuntime.makeCommand` + the runtime's
/// merge with the image config).
pub fn command_line(container: &Container, entrypoint: &[String], cmd: &[String], env: &[String]) -> Vec<String> {
    let defined: BTreeMap<String, String> = env
        .iter()
        .filter_map(|e| e.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
        .collect();
    let command: Vec<String> = container
        .command
        .iter()
        .flatten()
        .map(|c| expand(c, &defined))
        .collect();
    let args: Vec<String> = container.args.iter().flatten().map(|a| expand(a, &defined)).collect();
    match (command.is_empty(), args.is_empty()) {
        (false, _) => command.into_iter().chain(args).collect(),
        (true, false) => entrypoint.iter().cloned().chain(args).collect(),
        (true, true) => entrypoint.iter().chain(cmd.iter()).cloned().collect(),
    }
}

/// Why a container's user cannot be determined (CreateContainerConfigError).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UserError {
    #[error("unable to find user {0}: no matching entries in passwd file")]
    UnknownUser(String),
    #[error("unable to find group {0}: no matching entries in group file")]
    UnknownGroup(String),
    #[error("container has runAsNonRoot and image will run as root (pod: \"{0}\", container: {1})")]
    RunAsRoot(String, String),
}

/// uid, gid and supplemental groups: the container's securityContext over the pod's, then the
/// image's `USER` (names resolved in the rootfs's /etc/passwd and /etc/group).
pub fn user(
    pod_spec: &PodSpec,
    container: &Container,
    image_user: &str,
    rootfs: &Path,
    pod_name: &str,
) -> Result<(u32, u32, Vec<u32>), UserError> {
    let pod_ctx = pod_spec.security_context.clone().unwrap_or_default();
    let ctx = container.security_context.clone().unwrap_or_default();
    let run_as_user = ctx.run_as_user.or(pod_ctx.run_as_user);
    let run_as_group = ctx.run_as_group.or(pod_ctx.run_as_group);
    let (image_uid_text, image_gid_text) = image_user.split_once(':').unwrap_or((image_user, ""));
    let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).unwrap_or_default();
    let group_file = std::fs::read_to_string(rootfs.join("etc/group")).unwrap_or_default();
    let (uid, default_gid) = match run_as_user {
        Some(uid) => (uid as u32, lookup_gid_of_uid(&passwd, uid as u32).unwrap_or(0)),
        None if image_uid_text.is_empty() => (0, 0),
        None => match image_uid_text.parse::<u32>() {
            Ok(uid) => (uid, lookup_gid_of_uid(&passwd, uid).unwrap_or(0)),
            Err(_) => lookup_user(&passwd, image_uid_text)
                .ok_or_else(|| UserError::UnknownUser(image_uid_text.to_string()))?,
        },
    };
    let gid = match run_as_group {
        Some(gid) => gid as u32,
        None if image_gid_text.is_empty() => default_gid,
        None => match image_gid_text.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => lookup_group(&group_file, image_gid_text)
                .ok_or_else(|| UserError::UnknownGroup(image_gid_text.to_string()))?,
        },
    };
    if ctx.run_as_non_root.or(pod_ctx.run_as_non_root) == Some(true) && uid == 0 {
        return Err(UserError::RunAsRoot(pod_name.to_string(), container.name.clone()));
    }
    let mut groups: Vec<u32> = pod_ctx
        .supplemental_groups
        .iter()
        .flatten()
        .map(|g| *g as u32)
        .collect();
    if let Some(fs_group) = pod_ctx.fs_group {
        groups.push(fs_group as u32);
    }
    groups.sort_unstable();
    groups.dedup();
    Ok((uid, gid, groups))
}

fn lookup_user(passwd: &str, name: &str) -> Option<(u32, u32)> {
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.len() >= 4 && fields[0] == name).then(|| Some((fields[2].parse().ok()?, fields[3].parse().ok()?)))?
    })
}

fn lookup_gid_of_uid(passwd: &str, uid: u32) -> Option<u32> {
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.len() >= 4 && fields[2].parse() == Ok(uid)).then(|| fields[3].parse().ok())?
    })
}

fn lookup_group(group: &str, name: &str) -> Option<u32> {
    group.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.len() >= 3 && fields[0] == name).then(|| fields[2].parse().ok())?
    })
}

fn milli(
    resources: Option<&BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>,
    name: &str,
) -> Option<i128> {
    resources?
        .get(name)
        .and_then(|q| Quantity::parse(&q.0))
        .and_then(|q| q.milli_value())
}

/// cgroup settings from requests and limits, as upstream converts them: cpu.shares =
/// request millicores × 1024 / 1000 (minimum 2), CFS quota = limit millicores × period / 1000,
/// memory limit in bytes.
pub fn resources(container: &Container) -> runtime::Resources {
    let reqs = container.resources.as_ref().and_then(|r| r.requests.as_ref());
    let limits = container.resources.as_ref().and_then(|r| r.limits.as_ref());
    let cpu_request = milli(reqs, "cpu").or_else(|| milli(limits, "cpu"));
    let cpu_limit = milli(limits, "cpu");
    let memory_limit = milli(limits, "memory").map(|m| (m / 1000) as i64);
    const PERIOD: u64 = 100_000;
    runtime::Resources {
        cpu_shares: Some(cpu_request.map_or(2, |m| ((m * 1024 / 1000) as u64).max(2))),
        cpu_quota: cpu_limit.map(|m| ((m * PERIOD as i128 / 1000) as i64).max(1000)),
        cpu_period: cpu_limit.map(|_| PERIOD),
        memory_limit,
    }
}

/// The image pull policy, defaulted like upstream: Always for `:latest` or no tag, else
/// IfNotPresent.
pub fn pull_policy(container: &Container) -> String {
    if let Some(policy) = container.image_pull_policy.as_deref().filter(|p| !p.is_empty()) {
        return policy.to_string();
    }
    let image = container.image.as_deref().unwrap_or_default();
    if image.contains('@') {
        return "IfNotPresent".to_string();
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        Some((_, tag)) if tag != "latest" => "IfNotPresent".to_string(),
        _ => "Always".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodSecurityContext, ResourceRequirements, SecurityContext};
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity as Q;

    fn c() -> Container {
        Container {
            name: "app".into(),
            ..Default::default()
        }
    }

    #[test]
    fn command_lines() {
        let ep = vec!["/entry".to_string()];
        let cmd = vec!["serve".to_string()];
        let env = vec!["PORT=8080".to_string()];
        assert_eq!(command_line(&c(), &ep, &cmd, &env), ["/entry", "serve"]);
        let args_only = Container {
            args: Some(vec!["--port=$(PORT)".into()]),
            ..c()
        };
        assert_eq!(command_line(&args_only, &ep, &cmd, &env), ["/entry", "--port=8080"]);
        let both = Container {
            command: Some(vec!["sh".into(), "-c".into()]),
            args: Some(vec!["echo $(PORT)".into()]),
            ..c()
        };
        assert_eq!(command_line(&both, &ep, &cmd, &env), ["sh", "-c", "echo 8080"]);
        let command_only = Container {
            command: Some(vec!["true".into()]),
            ..c()
        };
        assert_eq!(command_line(&command_only, &ep, &cmd, &env), ["true"]);
    }

    #[test]
    fn users() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\nwww:x:33:34::/var/www:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("etc/group"), "root:x:0:\nstaff:x:50:\n").unwrap();
        let spec = PodSpec::default();
        assert_eq!(user(&spec, &c(), "", dir.path(), "p").unwrap(), (0, 0, vec![]));
        assert_eq!(user(&spec, &c(), "www", dir.path(), "p").unwrap(), (33, 34, vec![]));
        assert_eq!(
            user(&spec, &c(), "1000:staff", dir.path(), "p").unwrap(),
            (1000, 50, vec![])
        );
        assert!(matches!(
            user(&spec, &c(), "nobody", dir.path(), "p"),
            Err(UserError::UnknownUser(_))
        ));
        let with_ctx = PodSpec {
            security_context: Some(PodSecurityContext {
                run_as_user: Some(2000),
                run_as_group: Some(3000),
                supplemental_groups: Some(vec![4000]),
                fs_group: Some(5000),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            user(&with_ctx, &c(), "www", dir.path(), "p").unwrap(),
            (2000, 3000, vec![4000, 5000])
        );
        let non_root = Container {
            security_context: Some(SecurityContext {
                run_as_non_root: Some(true),
                ..Default::default()
            }),
            ..c()
        };
        assert!(matches!(
            user(&spec, &non_root, "", dir.path(), "p"),
            Err(UserError::RunAsRoot(..))
        ));
    }

    #[test]
    fn cgroup_resources() {
        let container = Container {
            resources: Some(ResourceRequirements {
                requests: Some(BTreeMap::from([("cpu".into(), Q("250m".into()))])),
                limits: Some(BTreeMap::from([
                    ("cpu".into(), Q("500m".into())),
                    ("memory".into(), Q("64Mi".into())),
                ])),
                ..Default::default()
            }),
            ..c()
        };
        let r = resources(&container);
        assert_eq!(r.cpu_shares, Some(256));
        assert_eq!(r.cpu_quota, Some(50_000));
        assert_eq!(r.cpu_period, Some(100_000));
        assert_eq!(r.memory_limit, Some(64 * 1024 * 1024));
        assert_eq!(resources(&c()).cpu_shares, Some(2));
        assert_eq!(resources(&c()).memory_limit, None);
    }

    #[test]
    fn pull_policies() {
        let with = |image: &str| Container {
            image: Some(image.into()),
            ..c()
        };
        assert_eq!(pull_policy(&with("busybox")), "Always");
        assert_eq!(pull_policy(&with("busybox:latest")), "Always");
        assert_eq!(pull_policy(&with("busybox:1.36")), "IfNotPresent");
        assert_eq!(pull_policy(&with("127.0.0.1:5000/busybox")), "Always");
        assert_eq!(pull_policy(&with("127.0.0.1:5000/busybox:1")), "IfNotPresent");
        assert_eq!(pull_policy(&with("busybox@sha256:abc")), "IfNotPresent");
    }
}
