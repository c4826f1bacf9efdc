//! `kubectl config`: view (merged, secrets redacted unless `--raw`), contexts, and
//! `use-context` / `set-context` edits written back to the file that holds them. Files are
//! handled as plain YAML trees so fields this client does not know survive an edit.

use std::path::PathBuf;

use serde_json::{Map, Value, json};

use crate::cmd::Context;
use crate::error::Error;
use crate::printer::table::TabWriter;
use crate::printer::yaml;

/// Modify kubeconfig files.
#[derive(clap::Args, Debug, Clone)]
pub struct ConfigArgs {
    #[command(subcommand)]
    pub command: ConfigCommand,
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum ConfigCommand {
    /// Display merged kubeconfig settings or a specified kubeconfig file.
    View {
        /// Remove all information not used by current-context from the output.
        #[arg(long)]
        minify: bool,
        /// Display raw byte data and sensitive data.
        #[arg(long)]
        raw: bool,
        /// `yaml` (default) or `json`.
        #[arg(short = 'o', long)]
        output: Option<String>,
    },
    /// Describe one or many contexts.
    GetContexts {
        /// Contexts to show.
        names: Vec<String>,
        /// `name` prints names only.
        #[arg(short = 'o', long)]
        output: Option<String>,
        /// Don't print headers.
        #[arg(long)]
        no_headers: bool,
    },
    /// Display the current-context.
    CurrentContext,
    /// Set the current-context in a kubeconfig file.
    UseContext { name: String },
    /// Set a context entry in kubeconfig (`--namespace`, `--cluster` and `--user` set its
    /// fields).
    SetContext {
        /// The context to modify (or `--current`).
        name: Option<String>,
        /// Modify the current context.
        #[arg(long)]
        current: bool,
    },
    /// Display clusters defined in the kubeconfig.
    GetClusters,
    /// Display users defined in the kubeconfig.
    GetUsers,
}

/// The kubeconfig files in precedence order.
fn files(ctx: &Context) -> Vec<PathBuf> {
    if let Some(path) = &ctx.flags.kubeconfig {
        return vec![path.clone()];
    }
    if let Some(list) = std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()) {
        return std::env::split_paths(&list)
            .filter(|p| !p.as_os_str().is_empty())
            .collect();
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
    vec![home.join(".kube").join("config")]
}

fn read(path: &PathBuf) -> Result<Value, Error> {
    match std::fs::read_to_string(path) {
        Ok(text) if text.trim().is_empty() => Ok(json!({})),
        Ok(text) => serde_saphyr::from_str::<Value>(&text)
            .map_err(|e| Error::Message(format!("error loading config file \"{}\": {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(json!({})),
        Err(e) => Err(Error::Message(format!(
            "error loading config file \"{}\": {e}",
            path.display()
        ))),
    }
}

/// Merges files as upstream does: the first file to set a value or define a name wins.
fn merged(paths: &[PathBuf]) -> Result<Value, Error> {
    let mut out = json!({"apiVersion": "v1", "kind": "Config", "clusters": [], "contexts": [], "users": [], "current-context": ""});
    for path in paths {
        let file = read(path)?;
        if out.get("preferences").is_none() && file["preferences"].as_object().is_some_and(|p| !p.is_empty()) {
            out["preferences"] = file["preferences"].clone();
        }
        if out["current-context"] == ""
            && let Some(current) = file["current-context"].as_str()
        {
            out["current-context"] = current.into();
        }
        for section in ["clusters", "contexts", "users"] {
            for entry in file[section].as_array().cloned().unwrap_or_default() {
                let list = out[section].as_array_mut().expect("initialised as a list");
                if !list.iter().any(|e| e["name"] == entry["name"]) {
                    list.push(entry);
                }
            }
        }
    }
    Ok(out)
}

fn named<'a>(config: &'a Value, section: &str, name: &str) -> Option<&'a Value> {
    config[section].as_array()?.iter().find(|e| e["name"] == name)
}

/// Runs `kubectl config ...`.
pub fn run(ctx: &mut Context, args: &ConfigArgs) -> Result<(), Error> {
    let paths = files(ctx);
    match &args.command {
        ConfigCommand::View { minify, raw, output } => {
            let mut config = merged(&paths)?;
            if let Some(context) = &ctx.flags.context {
                config["current-context"] = context.clone().into();
            }
            if *minify {
                config = minified(&config)?;
            }
            if !raw {
                redact(&mut config);
            }
            match output.as_deref() {
                None | Some("yaml") => ctx.out(&yaml::to_yaml(&config)),
                Some("json") => ctx.out(&struct_ordered_json(&config)),
                Some(other) => {
                    return Err(Error::Usage(format!(
                        "unable to match a printer suitable for the output format \"{other}\""
                    )));
                }
            }
        }
        ConfigCommand::CurrentContext => {
            let config = merged(&paths)?;
            match config["current-context"].as_str().filter(|c| !c.is_empty()) {
                Some(current) => ctx.out(&format!("{current}\n")),
                None => return Err(Error::Message("current-context is not set".into())),
            }
        }
        ConfigCommand::GetContexts {
            names,
            output,
            no_headers,
        } => {
            let config = merged(&paths)?;
            let current = config["current-context"].as_str().unwrap_or_default().to_string();
            let contexts = config["contexts"].as_array().cloned().unwrap_or_default();
            for name in names {
                if named(&config, "contexts", name).is_none() {
                    return Err(Error::Message(format!("context {name} not found")));
                }
            }
            let chosen: Vec<&Value> = contexts
                .iter()
                .filter(|c| names.is_empty() || names.iter().any(|n| c["name"] == n.as_str()))
                .collect();
            if output.as_deref() == Some("name") {
                let text: String = chosen
                    .iter()
                    .map(|c| format!("{}\n", c["name"].as_str().unwrap_or_default()))
                    .collect();
                ctx.out(&text);
                return Ok(());
            }
            let mut lines = Vec::new();
            if !no_headers {
                lines.push(
                    ["CURRENT", "NAME", "CLUSTER", "AUTHINFO", "NAMESPACE"]
                        .map(String::from)
                        .into(),
                );
            }
            let mut sorted = chosen;
            sorted.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
            for c in sorted {
                let name = c["name"].as_str().unwrap_or_default();
                let field = |f: &str| c["context"][f].as_str().unwrap_or_default().to_string();
                lines.push(vec![
                    if name == current { "*".into() } else { String::new() },
                    name.to_string(),
                    field("cluster"),
                    field("user"),
                    field("namespace"),
                ]);
            }
            ctx.out(&TabWriter::default().format(&lines));
        }
        ConfigCommand::UseContext { name } => {
            let config = merged(&paths)?;
            if named(&config, "contexts", name).is_none() {
                return Err(Error::Message(format!("no context exists with the name: \"{name}\"")));
            }
            // Written to the first file that sets current-context, else the first file.
            let target = paths
                .iter()
                .find(|p| read(p).is_ok_and(|f| f["current-context"].is_string()))
                .unwrap_or(&paths[0])
                .clone();
            let mut file = read(&target)?;
            file["current-context"] = name.clone().into();
            write(&target, &file)?;
            ctx.out(&format!("Switched to context \"{name}\".\n"));
        }
        ConfigCommand::SetContext { name, current } => {
            // The global --namespace, --cluster and --user flags name the context's fields here.
            let (namespace, cluster, user) = (&ctx.flags.namespace, &ctx.flags.cluster, &ctx.flags.user);
            let config = merged(&paths)?;
            let name = match (name, current) {
                (Some(_), true) => {
                    return Err(Error::Usage(
                        "you cannot specify both a context name and --current".into(),
                    ));
                }
                (Some(name), false) => name.clone(),
                (None, true) => config["current-context"]
                    .as_str()
                    .filter(|c| !c.is_empty())
                    .ok_or_else(|| Error::Message("no current context is set".into()))?
                    .to_string(),
                (None, false) => {
                    return Err(Error::Usage(
                        "you must specify a non-empty context name or --current".into(),
                    ));
                }
            };
            let exists = named(&config, "contexts", &name).is_some();
            // Edited where the context is defined, else added to the first file.
            let target = paths
                .iter()
                .find(|p| read(p).is_ok_and(|f| named(&f, "contexts", &name).is_some()))
                .unwrap_or(&paths[0])
                .clone();
            let mut file = read(&target)?;
            if !file["contexts"].is_array() {
                file["contexts"] = json!([]);
            }
            let contexts = file["contexts"].as_array_mut().expect("made a list above");
            let index = match contexts.iter().position(|c| c["name"] == name.as_str()) {
                Some(index) => index,
                None => {
                    contexts.push(json!({"name": name, "context": {}}));
                    contexts.len() - 1
                }
            };
            let entry = &mut contexts[index]["context"];
            if !entry.is_object() {
                *entry = Value::Object(Map::new());
            }
            for (key, value) in [("namespace", namespace), ("cluster", cluster), ("user", user)] {
                if let Some(value) = value {
                    entry[key] = value.clone().into();
                }
            }
            let target = target.clone();
            write(&target, &file)?;
            let verb = if exists { "modified" } else { "created" };
            ctx.out(&format!("Context \"{name}\" {verb}.\n"));
        }
        ConfigCommand::GetClusters | ConfigCommand::GetUsers => {
            let config = merged(&paths)?;
            let (section, header) = match &args.command {
                ConfigCommand::GetClusters => ("clusters", "NAME"),
                _ => ("users", "NAME"),
            };
            let mut text = format!("{header}\n");
            for entry in config[section].as_array().cloned().unwrap_or_default() {
                text.push_str(&format!("{}\n", entry["name"].as_str().unwrap_or_default()));
            }
            ctx.out(&text);
        }
    }
    Ok(())
}

/// `config view -o json` prints the kubeconfig in Go's struct field order (not sorted), as
/// upstream's encoder does; unknown keys follow, sorted.
fn struct_ordered_json(config: &Value) -> String {
    const ROOT: &[&str] = &[
        "kind",
        "apiVersion",
        "preferences",
        "clusters",
        "users",
        "contexts",
        "current-context",
        "extensions",
    ];
    const CLUSTER: &[&str] = &[
        "server",
        "tls-server-name",
        "insecure-skip-tls-verify",
        "certificate-authority",
        "certificate-authority-data",
        "proxy-url",
        "disable-compression",
        "extensions",
    ];
    const USER: &[&str] = &[
        "client-certificate",
        "client-certificate-data",
        "client-key",
        "client-key-data",
        "token",
        "tokenFile",
        "as",
        "as-uid",
        "as-groups",
        "as-user-extra",
        "username",
        "password",
        "auth-provider",
        "exec",
        "extensions",
    ];
    const CONTEXT: &[&str] = &["cluster", "user", "namespace", "extensions"];
    fn order(value: &Value, keys: &[&str], nested: &dyn Fn(&str, &Value) -> Ordered) -> Ordered {
        let Some(map) = value.as_object() else {
            return Ordered::Plain(value.clone());
        };
        let mut names: Vec<&String> = map.keys().collect();
        names.sort_by_key(|k| (keys.iter().position(|n| n == k).unwrap_or(usize::MAX), k.to_string()));
        Ordered::Map(
            names
                .into_iter()
                .map(|k| (k.clone(), nested(k, &map[k.as_str()])))
                .collect(),
        )
    }
    let named_list = |value: &Value, inner: &'static str, keys: &'static [&'static str]| -> Ordered {
        let items = value.as_array().cloned().unwrap_or_default();
        Ordered::List(
            items
                .iter()
                .map(|item| {
                    order(item, &["name", inner], &|k, v| {
                        if k == inner {
                            order(v, keys, &|_, v| Ordered::Plain(v.clone()))
                        } else {
                            Ordered::Plain(v.clone())
                        }
                    })
                })
                .collect(),
        )
    };
    let root = order(config, ROOT, &|k, v| match k {
        "clusters" => named_list(v, "cluster", CLUSTER),
        "users" => named_list(v, "user", USER),
        "contexts" => named_list(v, "context", CONTEXT),
        _ => Ordered::Plain(v.clone()),
    });
    let mut buffer = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut serializer = serde_json::Serializer::with_formatter(&mut buffer, formatter);
    serde::Serialize::serialize(&root, &mut serializer).expect("serializing JSON values cannot fail");
    String::from_utf8(buffer).expect("serde_json writes UTF-8") + "\n"
}

/// A JSON value whose maps keep a chosen key order.
enum Ordered {
    Map(Vec<(String, Ordered)>),
    List(Vec<Ordered>),
    Plain(Value),
}

impl serde::Serialize for Ordered {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self {
            Ordered::Map(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (key, value) in entries {
                    map.serialize_entry(key, value)?;
                }
                map.end()
            }
            Ordered::List(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Ordered::Plain(value) => value.serialize(serializer),
        }
    }
}

/// Only the current context and its cluster and user.
fn minified(config: &Value) -> Result<Value, Error> {
    let current = config["current-context"].as_str().unwrap_or_default();
    let context = named(config, "contexts", current)
        .ok_or_else(|| Error::Message("current-context must exist in order to minify".to_string()))?;
    let cluster = context["context"]["cluster"].as_str().unwrap_or_default();
    let user = context["context"]["user"].as_str().unwrap_or_default();
    let mut out = config.clone();
    out["contexts"] = json!([context]);
    out["clusters"] = json!(named(config, "clusters", cluster).into_iter().collect::<Vec<_>>());
    out["users"] = json!(named(config, "users", user).into_iter().collect::<Vec<_>>());
    Ok(out)
}

/// Replaces embedded certificates and keys by `DATA+OMITTED` and tokens by `REDACTED`.
fn redact(config: &mut Value) {
    for (section, inner) in [("clusters", "cluster"), ("users", "user")] {
        if let Some(entries) = config[section].as_array_mut() {
            for entry in entries {
                if let Some(map) = entry[inner].as_object_mut() {
                    for (key, value) in map.iter_mut() {
                        if key.ends_with("-data") {
                            *value = "DATA+OMITTED".into();
                        } else if key == "token" || key == "password" {
                            *value = "REDACTED".into();
                        }
                    }
                }
            }
        }
    }
}

fn write(path: &PathBuf, config: &Value) -> Result<(), Error> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    // Write a sibling and rename, so a failure never leaves half a kubeconfig.
    use std::os::unix::fs::OpenOptionsExt;
    let temporary = path.with_extension("kubectl-tmp");
    // Credentials live in here: owner-only, like upstream's 0600.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temporary)?;
    std::io::Write::write_all(&mut file, yaml::to_yaml(config).as_bytes())?;
    drop(file);
    std::fs::rename(&temporary, path)?;
    Ok(())
}
