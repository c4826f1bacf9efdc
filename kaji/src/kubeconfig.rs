//! Merging the cluster's admin credentials into the user's kubeconfig as context `kaji-NAME`
//! (and taking them out again on `kaji down`), keeping every other entry as it was.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use kube::config::{Kubeconfig, NamedCluster, NamedContext};

/// `--kubeconfig`, or `~/.kube/config`.
pub fn default_path() -> Result<PathBuf> {
    let home = std::env::var_os("HOME").context("HOME is not set")?;
    Ok(PathBuf::from(home).join(".kube").join("config"))
}

/// Puts the admin kubeconfig `admin` into `target` as `kaji-NAME` (cluster, user and context)
/// and makes it the current context.
pub fn merge(target: &Path, admin: &Path, name: &str) -> Result<()> {
    let context = format!("kaji-{name}");
    let admin = Kubeconfig::read_from(admin).with_context(|| format!("reading {}", admin.display()))?;
    let mut config = if target.exists() {
        Kubeconfig::read_from(target).with_context(|| format!("reading {}", target.display()))?
    } else {
        Kubeconfig::default()
    };
    remove_entries(&mut config, &context);
    config
        .clusters
        .extend(admin.clusters.into_iter().take(1).map(|c| NamedCluster {
            name: context.clone(),
            ..c
        }));
    config
        .auth_infos
        .extend(admin.auth_infos.into_iter().take(1).map(|mut a| {
            a.name = context.clone();
            a
        }));
    config.contexts.push(NamedContext {
        name: context.clone(),
        context: Some(kube::config::Context {
            cluster: context.clone(),
            user: Some(context.clone()),
            ..Default::default()
        }),
        other: Default::default(),
    });
    config.current_context = Some(context);
    write(target, &config)
}

/// Takes `kaji-NAME` out of `target` (when the file exists).
pub fn remove(target: &Path, name: &str) -> Result<()> {
    if !target.exists() {
        return Ok(());
    }
    let context = format!("kaji-{name}");
    let mut config = Kubeconfig::read_from(target)?;
    remove_entries(&mut config, &context);
    if config.current_context.as_deref() == Some(context.as_str()) {
        config.current_context = None;
    }
    write(target, &config)
}

fn remove_entries(config: &mut Kubeconfig, name: &str) {
    config.clusters.retain(|c| c.name != name);
    config.auth_infos.retain(|a| a.name != name);
    config.contexts.retain(|c| c.name != name);
}

pub fn write(target: &Path, config: &Kubeconfig) -> Result<()> {
    let mut config = config.clone();
    config.api_version.get_or_insert_with(|| "v1".to_string());
    config.kind.get_or_insert_with(|| "Config".to_string());
    let text = serde_saphyr::to_string(&config).context("writing the kubeconfig as YAML")?;
    if let Some(dir) = target.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = target.with_extension("kaji-tmp");
    std::fs::write(&tmp, text)?;
    std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    std::fs::rename(&tmp, target)?;
    Ok(())
}
