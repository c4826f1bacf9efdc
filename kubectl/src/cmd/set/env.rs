//! `kubectl set env`: `KEY=VALUE` / `KEY-` (as arguments or `-e`), `--from=configmap/x`
//! or `secret/x` (keys become `valueFrom` references, `--prefix`, `--keys`), `--list`
//! (`--resolve` reads the referenced ConfigMaps and Secrets), `-c` container globs and the
//! `--overwrite=false` rule, over containers and init containers.

use base64::Engine;
use serde_json::{Value, json};

use super::{SetFlags, no_pod_template, objects, pod_spec_path, send_change};
use crate::cmd::Context;
use crate::cmd::apply::DryRun;
use crate::cmd::select::{self, Info, Printer, SelectFlags};
use crate::error::Error;
use crate::request;

/// Update environment variables on a pod template.
#[derive(clap::Args, Debug, Clone)]
pub struct EnvArgs {
    /// TYPE NAME... | TYPE/NAME..., then KEY=VALUE or KEY- pairs.
    pub args: Vec<String>,
    /// Specify a key-value pair for an environment variable to set into each container.
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// The names of containers in the selected pod templates to change (a glob).
    #[arg(short = 'c', long, default_value = "*")]
    pub containers: String,
    /// If true, display the environment and any changes in the standard format.
    #[arg(long)]
    pub list: bool,
    /// If true, show secret or configmap references when listing variables.
    #[arg(long)]
    pub resolve: bool,
    /// The name of a resource from which to inject environment variables.
    #[arg(long)]
    pub from: Option<String>,
    /// Prefix to append to variable names.
    #[arg(long)]
    pub prefix: Option<String>,
    /// Comma-separated list of keys to import from specified resource.
    #[arg(long, value_delimiter = ',')]
    pub keys: Vec<String>,
    /// If true, allow environment to be overwritten.
    #[arg(long, default_value = "true", num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub overwrite: bool,
    #[command(flatten)]
    pub flags: SetFlags,
}

/// Runs `kubectl set env`.
pub async fn run(ctx: &mut Context, args: &EnvArgs) -> Result<(), Error> {
    let dry_run = DryRun::parse(&args.flags.dry_run)?;
    let mut printer = Printer::new(args.flags.output.as_deref(), dry_run)?;
    let (resources, pairs) = split_environment(&args.args)?;
    if args.list && args.flags.output.is_some() {
        return Err(Error::Usage("--list and --output may not be specified together".into()));
    }
    if !args.keys.is_empty() && args.from.is_none() {
        return Err(Error::Usage(
            "when specifying --keys, a configmap or secret must be provided with --from".into(),
        ));
    }
    let mut given = args.env.clone();
    given.extend(pairs);
    let (mut env, remove) = parse_env(&given)?;
    if let Some(from) = &args.from {
        env.extend(env_from(ctx, from, &args.keys, &args.flags.select).await?);
    }
    if let Some(prefix) = &args.prefix {
        for var in &mut env {
            var["name"] = json!(format!("{prefix}{}", var["name"].as_str().unwrap_or_default()));
        }
    }
    let selection = objects(ctx, &resources, &args.flags).await?;
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
        let spec = modified.pointer_mut(path).cloned().unwrap_or(Value::Null);
        let mut spec = spec;
        let mut matched = 0;
        let mut failure = None;
        for list in ["containers", "initContainers"] {
            for container in spec.get_mut(list).and_then(Value::as_array_mut).into_iter().flatten() {
                let name = container["name"].as_str().unwrap_or_default().to_string();
                if !glob(&args.containers, &name) {
                    continue;
                }
                matched += 1;
                let existing = container["env"].as_array().cloned().unwrap_or_default();
                if !args.overwrite
                    && let Some(clash) = overwrite_clash(&existing, &env)
                {
                    failure = Some(clash);
                    continue;
                }
                let updated = update_env(&existing, &env, &remove);
                if args.list {
                    ctx.out(&format!("# {} {}, container {name}\n", info.resource.kind, info.name));
                    for var in &updated {
                        let line = list_line(ctx, var, args.resolve, &info).await;
                        ctx.out(&line);
                    }
                }
                let map = container.as_object_mut().expect("containers are objects");
                if updated.is_empty() {
                    map.remove("env");
                } else {
                    map.insert("env".into(), Value::Array(updated));
                }
            }
        }
        if matched == 0 {
            ctx.err(&format!(
                "Warning: {}/{} does not have any containers matching \"{}\"\n",
                info.resource.kind, info.name, args.containers
            ));
        }
        if let Some(message) = failure {
            errors.push(Error::Message(format!(
                "{}/{} {message}",
                info.resource.plural, info.name
            )));
            continue;
        }
        if args.list {
            continue;
        }
        if let Some(target) = modified.pointer_mut(path) {
            *target = spec;
        }
        if let Err(error) = send_change(ctx, &info, &modified, &args.flags, &mut printer, "env").await {
            errors.push(error);
        }
    }
    crate::cmd::objects::finish(errors)
}

/// Upstream's `SplitEnvironmentFromResources`: resources first, then `KEY=VALUE`, `KEY-`
/// or `-` (stdin).
fn split_environment(args: &[String]) -> Result<(Vec<String>, Vec<String>), Error> {
    let mut resources = Vec::new();
    let mut env = Vec::new();
    for arg in args {
        let is_env = arg.find('=').is_some_and(|at| at > 0) || arg.ends_with('-');
        if is_env {
            env.push(arg.clone());
        } else if env.is_empty() {
            resources.push(arg.clone());
        } else {
            return Err(Error::Usage(format!(
                "all resources must be specified before environment changes: {arg}"
            )));
        }
    }
    Ok((resources, env))
}

/// `KEY=VALUE` (a valid variable name) and `KEY-`, as upstream's `ParseEnv`.
fn parse_env(given: &[String]) -> Result<(Vec<Value>, Vec<String>), Error> {
    let mut env = Vec::new();
    let mut remove = Vec::new();
    let mut stdin_used = false;
    for item in given {
        if item == "-" {
            if stdin_used {
                return Err(Error::Usage("-  can only be specified once".into()));
            }
            stdin_used = true;
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)?;
            env.extend(read_env(&text));
        } else if let Some((name, value)) = item.split_once('=') {
            let problems = api::validation::names::is_env_var_name(name);
            if !problems.is_empty() {
                return Err(Error::Usage(format!(
                    "\"{name}\" is not a valid key name: {}",
                    problems.join(";")
                )));
            }
            env.push(json!({"name": name, "value": value}));
        } else if let Some(name) = item.strip_suffix('-') {
            remove.push(name.to_string());
        } else {
            return Err(Error::Usage(format!("unknown environment variable: {item}")));
        }
    }
    if env.iter().any(|e| remove.iter().any(|r| e["name"] == r.as_str())) {
        return Err(Error::Usage(
            "can not both modify and remove the same environment variable in the same command".into(),
        ));
    }
    Ok((env, remove))
}

/// `-`: `KEY=VALUE` lines from stdin (`#` starts a comment; other lines are ignored).
fn read_env(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|line| {
            let line = line.split('#').next().unwrap_or_default();
            let (name, value) = line.split_once('=')?;
            Some(json!({"name": name, "value": value}))
        })
        .collect()
}

/// The variables `--from` brings: one per key of the ConfigMap or Secret (only `--keys`
/// when given), named from the key (upper case, other characters `_`), referencing it.
async fn env_from(ctx: &mut Context, from: &str, keys: &[String], flags: &SelectFlags) -> Result<Vec<Value>, Error> {
    let from_flags = SelectFlags {
        selector: flags.selector.clone(),
        all: flags.all,
        ..Default::default()
    };
    let selection = select::select(ctx, &[from.to_string()], &from_flags).await?;
    let mut env = Vec::new();
    for item in selection.items {
        let info = item?;
        let reference = match info.resource.kind.as_str() {
            "ConfigMap" => "configMapKeyRef",
            "Secret" => "secretKeyRef",
            _ => return Err(Error::Usage("unsupported resource specified in --from".into())),
        };
        let data = info.object["data"].as_object().cloned().unwrap_or_default();
        for key in data.keys() {
            if !keys.is_empty() && !keys.contains(key) {
                continue;
            }
            let name: String = key
                .to_uppercase()
                .chars()
                .map(|c| {
                    if c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            if &name != key {
                ctx.err(&format!("Warning: key {key} transferred to {name}\n"));
            }
            env.push(json!({"name": name, "valueFrom": {reference: {"key": key, "name": info.name}}}));
        }
    }
    Ok(env)
}

/// Upstream's `updateEnv`: existing variables keep their place (replaced by a new value of
/// the same name, dropped when removed), new ones are appended.
fn update_env(existing: &[Value], env: &[Value], remove: &[String]) -> Vec<Value> {
    let mut covered: Vec<String> = remove.to_vec();
    let mut out = Vec::new();
    for var in existing {
        let name = var["name"].as_str().unwrap_or_default().to_string();
        if covered.contains(&name) {
            continue;
        }
        match env.iter().find(|e| e["name"] == name.as_str()) {
            Some(newer) => {
                covered.push(name);
                out.push(newer.clone());
            }
            None => out.push(var.clone()),
        }
    }
    for var in env {
        let name = var["name"].as_str().unwrap_or_default().to_string();
        if !covered.contains(&name) {
            covered.push(name);
            out.push(var.clone());
        }
    }
    out
}

fn overwrite_clash(existing: &[Value], env: &[Value]) -> Option<String> {
    env.iter().find_map(|var| {
        let current = existing.iter().find(|e| e["name"] == var["name"])?;
        let value = current["value"].as_str().unwrap_or_default();
        (value != var["value"].as_str().unwrap_or_default()).then(|| {
            format!(
                "'{}' already has a value ({value}), and --overwrite is false",
                var["name"].as_str().unwrap_or_default()
            )
        })
    })
}

/// One `--list` line: `NAME=VALUE`, or `# NAME from <reference>` (resolved to a value
/// with `--resolve` where the reference can be read).
async fn list_line(ctx: &mut Context, var: &Value, resolve: bool, info: &Info) -> String {
    let name = var["name"].as_str().unwrap_or_default();
    let Some(from) = var.get("valueFrom") else {
        return format!("{name}={}\n", var["value"].as_str().unwrap_or_default());
    };
    if resolve && let Some(value) = resolve_reference(ctx, from, info).await {
        return format!("{name}={value}\n");
    }
    let describe = if let Some(r) = from.get("configMapKeyRef") {
        format!(
            "configmap {}, key {}",
            r["name"].as_str().unwrap_or_default(),
            r["key"].as_str().unwrap_or_default()
        )
    } else if let Some(r) = from.get("secretKeyRef") {
        format!(
            "secret {}, key {}",
            r["name"].as_str().unwrap_or_default(),
            r["key"].as_str().unwrap_or_default()
        )
    } else if let Some(r) = from.get("fieldRef") {
        format!("field path {}", r["fieldPath"].as_str().unwrap_or_default())
    } else if let Some(r) = from.get("resourceFieldRef") {
        let container = r["containerName"].as_str().filter(|c| !c.is_empty());
        format!(
            "resource field {}{}",
            container.map(|c| format!("{c}/")).unwrap_or_default(),
            r["resource"].as_str().unwrap_or_default()
        )
    } else {
        "invalid valueFrom".to_string()
    };
    format!("# {name} from {describe}\n")
}

async fn resolve_reference(ctx: &mut Context, from: &Value, info: &Info) -> Option<String> {
    let (plural, reference) = if let Some(r) = from.get("configMapKeyRef") {
        ("configmaps", r)
    } else {
        ("secrets", from.get("secretKeyRef")?)
    };
    let namespace = info.namespace.as_deref()?;
    let url = format!(
        "/api/v1/namespaces/{namespace}/{plural}/{}",
        reference["name"].as_str()?
    );
    let client = ctx.client().await.ok()?;
    let object = request::get(&client, &url, "application/json").await.ok()?;
    let value = object["data"][reference["key"].as_str()?].as_str()?;
    if plural == "secrets" {
        let bytes = base64::engine::general_purpose::STANDARD.decode(value).ok()?;
        return String::from_utf8(bytes).ok();
    }
    Some(value.to_string())
}

/// Go's `path.Match` for the container patterns kubectl takes (`*`, `?`, literals).
fn glob(pattern: &str, name: &str) -> bool {
    fn matches(p: &[char], n: &[char]) -> bool {
        match p.split_first() {
            None => n.is_empty(),
            Some(('*', rest)) => (0..=n.len()).any(|i| matches(rest, &n[i..])),
            Some(('?', rest)) => !n.is_empty() && matches(rest, &n[1..]),
            Some((c, rest)) => n.first() == Some(c) && matches(rest, &n[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    matches(&p, &n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(env: &[Value]) -> Vec<&str> {
        env.iter().map(|e| e["name"].as_str().unwrap()).collect()
    }

    #[test]
    fn updates_keep_order_replace_and_append() {
        let existing = vec![json!({"name": "A", "value": "1"}), json!({"name": "B", "value": "2"})];
        let (env, remove) = parse_env(&["B=3".into(), "C=4".into(), "A-".into()]).unwrap();
        let updated = update_env(&existing, &env, &remove);
        assert_eq!(names(&updated), ["B", "C"]);
        assert_eq!(updated[0]["value"], "3");
        assert!(parse_env(&["1X=1".into()]).is_err());
        assert!(parse_env(&["A=1".into(), "A-".into()]).is_err());
        assert_eq!(names(&read_env("X=1 # one\n# comment\nignored\nY=a=b\n")), ["X", "Y"]);
        assert_eq!(
            overwrite_clash(&existing, &env).unwrap(),
            "'B' already has a value (2), and --overwrite is false"
        );
    }

    #[test]
    fn container_globs() {
        assert!(glob("*", "nginx"));
        assert!(glob("ng*", "nginx"));
        assert!(glob("ngin?", "nginx"));
        assert!(!glob("busy*", "nginx"));
    }
}
