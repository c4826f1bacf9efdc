//! Starting one container attempt: the image (per pull policy, with pull secrets and
//! back-off), its environment, root filesystem, user, mounts and cgroup settings, then the
//! runtime. Failures come back as the waiting reason and message upstream shows.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use k8s_openapi::api::core::v1::{Container, PersistentVolume, PersistentVolumeClaim, Pod};
use kube::api::Api;

use super::container::{command_line, pull_policy, resources, user};
use super::context::Context;
use super::env::{EnvSources, environment};
use super::files;
use super::volumes::{self, PreparedVolume, VolumeSources};

/// A container could not be started: the waiting reason and message for its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartFailure {
    pub reason: String,
    pub message: String,
    /// Whether to back off before the next try (image pulls and start errors do).
    pub backoff: bool,
}

impl StartFailure {
    fn new(reason: &str, message: impl Into<String>, backoff: bool) -> StartFailure {
        StartFailure {
            reason: reason.to_string(),
            message: message.into(),
            backoff,
        }
    }
}

/// Metadata the kubelet keeps beside each attempt (the runtime does not know images).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct AttemptMeta {
    pub image: String,
    pub image_id: String,
}

/// `<pod dir>/containers/<name>/<attempt>`.
pub fn attempt_dir(pod_dir: &Path, name: &str, attempt: u32) -> PathBuf {
    pod_dir.join("containers").join(name).join(attempt.to_string())
}

/// The runtime id of an attempt: `<pod uid>_<container>_<attempt>`.
pub fn container_id(uid: &str, name: &str, attempt: u32) -> String {
    format!("{uid}_{name}_{attempt}")
}

/// Parses a runtime id back into (pod uid, container name, attempt).
pub fn parse_container_id(id: &str) -> Option<(&str, &str, u32)> {
    let (rest, attempt) = id.rsplit_once('_')?;
    let (uid, name) = rest.split_once('_')?;
    Some((uid, name, attempt.parse().ok()?))
}

/// Fetches the ConfigMaps, Secrets, PVCs and PVs the pod refers to, and the Services for
/// service-link variables. Missing objects are simply absent (the consumers decide whether
/// that is an error).
pub async fn fetch_sources(ctx: &Context, pod: &Pod) -> (EnvSources, VolumeSources) {
    let namespace = pod.metadata.namespace.clone().unwrap_or_else(|| "default".to_string());
    let spec = pod.spec.clone().unwrap_or_default();
    let mut config_map_names = std::collections::BTreeSet::new();
    let mut secret_names = std::collections::BTreeSet::new();
    let mut claim_names = std::collections::BTreeSet::new();
    for c in spec.containers.iter().chain(spec.init_containers.iter().flatten()) {
        for from in c.env_from.iter().flatten() {
            config_map_names.extend(from.config_map_ref.as_ref().map(|r| r.name.clone()));
            secret_names.extend(from.secret_ref.as_ref().map(|r| r.name.clone()));
        }
        for var in c.env.iter().flatten() {
            if let Some(from) = &var.value_from {
                config_map_names.extend(from.config_map_key_ref.as_ref().map(|r| r.name.clone()));
                secret_names.extend(from.secret_key_ref.as_ref().map(|r| r.name.clone()));
            }
        }
    }
    for v in spec.volumes.iter().flatten() {
        config_map_names.extend(v.config_map.as_ref().map(|c| c.name.clone()));
        secret_names.extend(v.secret.as_ref().and_then(|s| s.secret_name.clone()));
        claim_names.extend(v.persistent_volume_claim.as_ref().map(|c| c.claim_name.clone()));
        for source in v.projected.iter().flat_map(|p| p.sources.iter().flatten()) {
            config_map_names.extend(source.config_map.as_ref().map(|c| c.name.clone()));
            secret_names.extend(source.secret.as_ref().map(|s| s.name.clone()));
        }
    }
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), &namespace);
    let pvs: Api<PersistentVolume> = Api::all(ctx.client.clone());
    let mut env = EnvSources {
        node_allocatable_milli_cpu: ctx.allocatable_milli_cpu,
        node_allocatable_memory: ctx.allocatable_memory,
        ..Default::default()
    };
    let mut vols = VolumeSources::default();
    for name in config_map_names {
        if let Some(cm) = ctx.sources.config_map(&namespace, &name).await {
            env.config_maps.insert(name.clone(), cm.clone());
            vols.config_maps.insert(name, cm);
        }
    }
    for name in secret_names {
        if let Some(secret) = ctx.sources.secret(&namespace, &name).await {
            env.secrets.insert(name.clone(), secret.clone());
            vols.secrets.insert(name, secret);
        }
    }
    for name in claim_names {
        if let Ok(Some(claim)) = claims.get_opt(&name).await {
            if let Some(pv_name) = claim.spec.as_ref().and_then(|s| s.volume_name.clone())
                && let Ok(Some(pv)) = pvs.get_opt(&pv_name).await
            {
                vols.volumes.insert(pv_name, pv);
            }
            vols.claims.insert(name, claim);
        }
    }
    // Without service links only the `kubernetes` service's variables are set.
    if spec.enable_service_links != Some(false) {
        env.services.extend(ctx.sources.services(&namespace).await);
    }
    if (namespace != "default" || spec.enable_service_links == Some(false))
        && let Some(kubernetes) = ctx.sources.service("default", "kubernetes").await
    {
        env.services.push(kubernetes);
    }
    (env, vols)
}

/// Pull credentials from the pod's imagePullSecrets.
async fn pull_credentials(ctx: &Context, pod: &Pod) -> Vec<images::RegistryCredential> {
    let namespace = pod.metadata.namespace.clone().unwrap_or_else(|| "default".to_string());
    let mut out = Vec::new();
    for reference in pod.spec.iter().flat_map(|s| s.image_pull_secrets.iter().flatten()) {
        if let Some(secret) = ctx.sources.secret(&namespace, &reference.name).await {
            for key in [".dockerconfigjson", ".dockercfg"] {
                if let Some(data) = secret.data.as_ref().and_then(|d| d.get(key))
                    && let Ok(creds) = images::credentials_from_dockerconfigjson(&data.0)
                {
                    out.extend(creds);
                }
            }
        }
    }
    out
}

/// Makes the container's image present per its pull policy.
pub async fn ensure_image(ctx: &Context, pod: &Pod, container: &Container) -> Result<images::Image, StartFailure> {
    let image = container.image.clone().unwrap_or_default();
    let field = Some(format!("spec.containers{{{}}}", container.name));
    let policy = pull_policy(container);
    if policy != "Always"
        && let Some(found) = ctx.images.lookup(&image)
    {
        ctx.event(
            pod,
            false,
            "Pulled",
            format!("Container image \"{image}\" already present on machine"),
            field,
        );
        return Ok(found);
    }
    if policy == "Never" {
        let message = format!("Container image \"{image}\" is not present with pull policy of Never");
        ctx.event(pod, true, "ErrImageNeverPull", message.clone(), field);
        return Err(StartFailure::new("ErrImageNeverPull", message, true));
    }
    ctx.event(
        pod,
        false,
        "Pulling",
        format!("Pulling image \"{image}\""),
        field.clone(),
    );
    let started = Instant::now();
    let credentials = pull_credentials(ctx, pod).await;
    match ctx.images.pull(&image, &credentials).await {
        Ok(pulled) => {
            let took = started.elapsed().as_secs_f64();
            ctx.event(
                pod,
                false,
                "Pulled",
                format!(
                    "Successfully pulled image \"{image}\" in {took:.3}s ({took:.3}s including waiting). Image size: {} bytes.",
                    pulled.size
                ),
                field,
            );
            Ok(pulled)
        }
        Err(error) => {
            ctx.event(pod, true, "Failed", error.to_string(), field.clone());
            ctx.event(pod, true, "Failed", format!("Error: {}", error.reason()), field);
            Err(StartFailure::new(error.reason(), error.to_string(), true))
        }
    }
}

/// Everything needed to start one attempt.
pub struct StartRequest<'a> {
    pub pod: &'a Pod,
    pub container: &'a Container,
    pub attempt: u32,
    pub image: &'a images::Image,
    pub env_sources: &'a EnvSources,
    pub volumes: &'a BTreeMap<String, PreparedVolume>,
}

/// Builds the runtime spec for an attempt and starts it.
pub async fn start_attempt(ctx: &Context, request: StartRequest<'_>) -> Result<String, StartFailure> {
    let StartRequest {
        pod,
        container,
        attempt,
        image,
        env_sources,
        volumes,
    } = request;
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let namespace = pod.metadata.namespace.clone().unwrap_or_else(|| "default".to_string());
    let pod_name = pod.metadata.name.clone().unwrap_or_default();
    let spec = pod.spec.clone().unwrap_or_default();
    let config_error = |message: String| StartFailure::new("CreateContainerConfigError", message, false);

    let env = environment(pod, container, &image.config.env, env_sources).map_err(|e| config_error(e.to_string()))?;
    let args = command_line(container, &image.config.entrypoint, &image.config.cmd, &env);
    if args.is_empty() {
        return Err(StartFailure::new("CreateContainerError", "no command specified", true));
    }
    let binds = volumes::container_mounts(container, volumes).map_err(|e| config_error(e.to_string()))?;

    let pod_dir = ctx.pod_dir(&uid);
    let dir = attempt_dir(&pod_dir, &container.name, attempt);
    let id = container_id(&uid, &container.name, attempt);
    let meta = AttemptMeta {
        image: container.image.clone().unwrap_or_default(),
        image_id: image.repo_digest.clone(),
    };
    let image_for_mount = image.clone();
    let dir_for_mount = dir.clone();
    let rootfs = tokio::task::spawn_blocking(move || -> Result<PathBuf, String> {
        std::fs::create_dir_all(&dir_for_mount).map_err(|e| e.to_string())?;
        let meta_json = serde_json::to_vec(&meta).map_err(|e| e.to_string())?;
        std::fs::write(dir_for_mount.join("meta.json"), meta_json).map_err(|e| e.to_string())?;
        images::mount_rootfs(&image_for_mount, &dir_for_mount).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| StartFailure::new("CreateContainerError", e.to_string(), true))?
    .map_err(|e| StartFailure::new("CreateContainerError", e, true))?;

    let (uid_num, gid, groups) =
        user(&spec, container, &image.config.user, &rootfs, &pod_name).map_err(|e| config_error(e.to_string()))?;

    let log_path = crate::logs::log_path(&ctx.logs_dir(), &namespace, &pod_name, &uid, &container.name, attempt);
    if let Some(parent) = log_path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| StartFailure::new("CreateContainerError", e.to_string(), true))?;
    }

    // /etc/hosts, /etc/hostname, /etc/resolv.conf and the termination log.
    let host_network = spec.host_network.unwrap_or(false);
    let etc = pod_dir.join("etc");
    let termination_log = dir.join("termination-log");
    std::fs::create_dir_all(&etc).map_err(|e| StartFailure::new("CreateContainerError", e.to_string(), true))?;
    let hostname = if host_network {
        nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default()
    } else {
        files::hostname(pod)
    };
    let pod_ip = if host_network {
        Some(ctx.node_ip.clone())
    } else {
        ctx.network.pod_ip(&uid).map(|ip| ip.to_string())
    };
    let writes = [
        (
            etc.join("hosts"),
            files::hosts_file(pod, pod_ip.as_deref(), &ctx.dns.cluster_domain),
        ),
        (etc.join("hostname"), format!("{hostname}\n")),
        (etc.join("resolv.conf"), files::resolv_conf(pod, &ctx.dns)),
        (termination_log.clone(), String::new()),
    ];
    for (path, contents) in &writes {
        std::fs::write(path, contents).map_err(|e| StartFailure::new("CreateContainerError", e.to_string(), true))?;
    }
    let bind = |source: PathBuf, destination: &str, read_only: bool| runtime::Mount {
        source,
        destination: PathBuf::from(destination),
        kind: runtime::MountKind::Bind,
        read_only,
    };
    let mut mounts = vec![
        bind(etc.join("hosts"), "/etc/hosts", false),
        bind(etc.join("hostname"), "/etc/hostname", false),
        bind(etc.join("resolv.conf"), "/etc/resolv.conf", false),
    ];
    let termination_path = container
        .termination_message_path
        .clone()
        .unwrap_or_else(|| "/dev/termination-log".to_string());
    mounts.push(bind(termination_log, &termination_path, false));
    mounts.extend(binds.into_iter().map(|b| bind(b.source, &b.destination, b.read_only)));

    let ctx_sec = container.security_context.clone().unwrap_or_default();
    let caps = ctx_sec.capabilities.clone().unwrap_or_default();
    let cwd = container
        .working_dir
        .clone()
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| image.config.working_dir.clone());
    let runtime_spec = runtime::ContainerSpec {
        id: id.clone(),
        sandbox_id: uid.clone(),
        rootfs,
        args,
        env,
        cwd,
        user: runtime::User {
            uid: uid_num,
            gid,
            additional_gids: groups,
        },
        mounts,
        resources: resources(container),
        capabilities: runtime::Capabilities {
            add: caps.add.unwrap_or_default(),
            drop: caps.drop.unwrap_or_default(),
        },
        privileged: ctx_sec.privileged.unwrap_or(false),
        no_new_privs: ctx_sec.allow_privilege_escalation == Some(false),
        read_only_rootfs: ctx_sec.read_only_root_filesystem.unwrap_or(false),
        log_path,
        stdin: container.stdin.unwrap_or(false),
        stdin_once: container.stdin_once.unwrap_or(false),
        tty: container.tty.unwrap_or(false),
    };
    let rt = ctx.runtime.clone();
    let result = tokio::task::spawn_blocking(move || rt.start_container(&runtime_spec))
        .await
        .map_err(|e| StartFailure::new("RunContainerError", e.to_string(), true))?;
    match result {
        Ok(_) => Ok(id),
        Err(error) => {
            let reason = if error.is_start_error() {
                "StartError"
            } else {
                "RunContainerError"
            };
            Err(StartFailure::new(reason, error.to_string(), true))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_ids_round_trip() {
        let id = container_id("0f4e-uid", "my-app", 3);
        assert_eq!(parse_container_id(&id), Some(("0f4e-uid", "my-app", 3)));
        assert_eq!(parse_container_id("junk"), None);
    }
}
