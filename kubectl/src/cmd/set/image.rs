//! `kubectl set image TYPE/NAME CONTAINER=IMAGE...` (`*` for every container), over
//! containers and init containers.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{SetFlags, no_pod_template, objects, pod_spec_path, send_change};
use crate::cmd::Context;
use crate::cmd::apply::DryRun;
use crate::cmd::select::{self, Printer};
use crate::error::Error;

/// Update existing container image(s) of resources.
#[derive(clap::Args, Debug, Clone)]
pub struct ImageArgs {
    /// TYPE NAME... | TYPE/NAME..., then CONTAINER=IMAGE pairs.
    pub args: Vec<String>,
    #[command(flatten)]
    pub flags: SetFlags,
}

/// Runs `kubectl set image`.
pub async fn run(ctx: &mut Context, args: &ImageArgs) -> Result<(), Error> {
    let dry_run = DryRun::parse(&args.flags.dry_run)?;
    let mut printer = Printer::new(args.flags.output.as_deref(), dry_run)?;
    let (resources, pairs) = select::split_pairs(&args.args, "container image")?;
    let mut images = BTreeMap::new();
    let mut invalid = Vec::new();
    for pair in &pairs {
        match pair.split_once('=') {
            Some((name, image)) if !name.is_empty() => {
                images.insert(name.to_string(), image.to_string());
            }
            _ => invalid.push(pair.as_str()),
        }
    }
    if !invalid.is_empty() {
        return Err(Error::Usage(format!(
            "invalid container image format: {}",
            invalid.join(", ")
        )));
    }
    // Upstream resolves the objects before it checks the pairs.
    let selection = objects(ctx, &resources, &args.flags).await?;
    if images.is_empty() {
        return Err(Error::Usage("at least one image update is required".into()));
    }
    if images.len() > 1 && images.contains_key("*") {
        return Err(Error::Usage(
            "all containers are already specified by *, but saw more than one container_name=container_image pairs"
                .into(),
        ));
    }
    let mut errors = Vec::new();
    for item in selection.items {
        let info = match item {
            Ok(info) => info,
            Err(error) => {
                errors.push(error);
                continue;
            }
        };
        let Some(path) = pod_spec_path(&info.resource.kind) else {
            errors.push(no_pod_template(&info));
            continue;
        };
        let mut modified = info.object.clone();
        if let Some(spec) = modified.pointer_mut(path) {
            for (name, image) in &images {
                let mut found = false;
                for list in ["containers", "initContainers"] {
                    for container in spec.get_mut(list).and_then(Value::as_array_mut).into_iter().flatten() {
                        if name == "*" || container["name"].as_str() == Some(name) {
                            container["image"] = Value::String(image.clone());
                            found = true;
                        }
                    }
                }
                if !found {
                    errors.push(Error::Message(format!("unable to find container named \"{name}\"")));
                }
            }
        }
        if let Err(error) = send_change(ctx, &info, &modified, &args.flags, &mut printer, "image").await {
            errors.push(error);
        }
    }
    crate::cmd::objects::finish(errors)
}
