//! The Pod `kubectl run` builds, field for field as upstream's `run-pod/v1` generator
//! (`BasicPod` in `generate/versioned/run.go`), and the checks of its input: image
//! references, environment variables, labels, annotations, ports.

use std::sync::LazyLock;

use serde_json::{Map, Value, json};

/// What the generator is given (upstream's params, taken from the flags).
#[derive(Debug, Clone, Default)]
pub struct PodParams {
    pub name: String,
    pub image: String,
    /// `--labels` (`k=v,k2=v2`); empty: `run=NAME`.
    pub labels: String,
    pub annotations: Vec<String>,
    pub env: Vec<String>,
    /// `--port`; empty: no port.
    pub port: String,
    pub stdin: bool,
    pub leave_stdin_open: bool,
    pub tty: bool,
    /// `--restart` as given; empty: `Always`.
    pub restart: String,
    /// Whether the extra arguments are the command rather than its arguments.
    pub command: bool,
    pub args: Vec<String>,
    pub image_pull_policy: String,
    pub privileged: bool,
}

/// The Pod, in upstream's field order for the typed JSON printer; errors worded as
/// upstream's generator words them.
pub fn pod(params: &PodParams) -> Result<Value, String> {
    let (annotations, labels, env) = check(params)?;
    let mut container = Map::new();
    container.insert("name".into(), params.name.clone().into());
    container.insert("image".into(), params.image.clone().into());
    if !params.args.is_empty() {
        let key = if params.command { "command" } else { "args" };
        container.insert(key.into(), json!(params.args));
    }
    if !params.port.is_empty() {
        let port = parse_port(&params.port)?;
        container.insert("ports".into(), json!([{"containerPort": port}]));
    }
    if !env.is_empty() {
        container.insert("env".into(), Value::Array(env));
    }
    container.insert("resources".into(), json!({}));
    if !params.image_pull_policy.is_empty() {
        container.insert("imagePullPolicy".into(), params.image_pull_policy.clone().into());
    }
    if params.privileged {
        container.insert("securityContext".into(), json!({"privileged": true}));
    }
    if params.stdin {
        container.insert("stdin".into(), true.into());
        if !params.leave_stdin_open {
            container.insert("stdinOnce".into(), true.into());
        }
    }
    if params.tty {
        container.insert("tty".into(), true.into());
    }
    let mut metadata = Map::new();
    metadata.insert("name".into(), params.name.clone().into());
    metadata.insert("labels".into(), Value::Object(labels));
    if !annotations.is_empty() {
        metadata.insert("annotations".into(), Value::Object(annotations));
    }
    let restart = if params.restart.is_empty() {
        "Always"
    } else {
        &params.restart
    };
    Ok(json!({
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": metadata,
        "spec": {
            "containers": [container],
            "restartPolicy": restart,
            "dnsPolicy": "ClusterFirst",
        },
        "status": {},
    }))
}

/// The annotations, labels and environment variables of a pod.
pub type Checked = (Map<String, Value>, Map<String, Value>, Vec<Value>);

/// The annotations, labels and environment, checked in upstream's order (before its other
/// checks of the flags: `pod` is called after those).
pub fn check(params: &PodParams) -> Result<Checked, String> {
    let annotations = parse_annotations(&params.annotations)?;
    let labels = if params.labels.is_empty() {
        let mut labels = Map::new();
        labels.insert("run".into(), params.name.clone().into());
        labels
    } else {
        parse_labels(&params.labels)?
    };
    let env = parse_env(&params.env)?;
    Ok((annotations, labels, env))
}

/// Upstream's `parseEnvs`: `NAME=value`, NAME a valid environment variable name.
fn parse_env(items: &[String]) -> Result<Vec<Value>, String> {
    items
        .iter()
        .map(|item| {
            let Some((name, value)) = item.split_once('=') else {
                return Err(format!("invalid env: {item}"));
            };
            if !is_env_var_name(name) {
                return Err(format!("invalid env: {item}"));
            }
            Ok(json!({"name": name, "value": value}))
        })
        .collect()
}

/// `validation.IsEnvVarName`: printable ASCII other than `=`, not empty.
fn is_env_var_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| (b' '..=b'~').contains(&b) && b != b'=')
}

/// Upstream's `generate.ParseLabels`: `k=v` pairs separated by commas, exactly one `=` each.
pub fn parse_labels(spec: &str) -> Result<Map<String, Value>, String> {
    if spec.is_empty() {
        return Err("no label spec passed".into());
    }
    let mut labels = Map::new();
    for item in spec.split(',') {
        let parts: Vec<&str> = item.split('=').collect();
        if parts.len() != 2 {
            return Err(format!("unexpected label spec: {item}"));
        }
        if parts[0].is_empty() {
            return Err("unexpected empty label key".into());
        }
        labels.insert(parts[0].to_string(), parts[1].into());
    }
    Ok(labels)
}

/// Upstream's `ParsePairs` of `--annotations`: `k=v` (the value may hold `=`).
fn parse_annotations(items: &[String]) -> Result<Map<String, Value>, String> {
    let mut annotations = Map::new();
    let mut invalid = Vec::new();
    for item in items {
        match item.split_once('=') {
            Some((key, value)) if !key.is_empty() => {
                annotations.insert(key.to_string(), value.into());
            }
            _ => invalid.push(item.as_str()),
        }
    }
    if !invalid.is_empty() {
        return Err(format!("invalid annotations format: {}", invalid.join(", ")));
    }
    Ok(annotations)
}

/// `--port`: any number (Go's `Atoi`; the server checks the range), kept as Go's `int32`
/// conversion keeps it.
pub fn parse_port(port: &str) -> Result<i32, String> {
    let number: i64 = port.parse().map_err(|_| "--port must be a number".to_string())?;
    Ok(number as i32)
}

/// The `docker/distribution/reference` grammar of an image reference (`ReferenceRegexp`).
static REFERENCE: LazyLock<regex::Regex> = LazyLock::new(|| {
    let alphanumeric = "[a-z0-9]+";
    let separator = "(?:[._]|__|[-]*)";
    let component = format!("{alphanumeric}(?:{separator}{alphanumeric})*");
    let domain_component = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
    let domain = format!(r"{domain_component}(?:\.{domain_component})*(?::[0-9]+)?");
    let name = format!("(?:{domain}/)?{component}(?:/{component})*");
    let tag = r"[\w][\w.-]{0,127}";
    let digest = "[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}";
    regex::Regex::new(&format!("^(?:{name})(?::(?:{tag}))?(?:@(?:{digest}))?$")).expect("valid regex")
});

/// Whether `image` is a well-formed image reference.
pub fn valid_image(image: &str) -> bool {
    REFERENCE.is_match(image)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(name: &str, image: &str) -> PodParams {
        PodParams {
            name: name.into(),
            image: image.into(),
            ..Default::default()
        }
    }

    #[test]
    fn defaults_label_the_pod_with_its_name() {
        let pod = pod(&params("web", "nginx")).unwrap();
        assert_eq!(pod["metadata"], json!({"name": "web", "labels": {"run": "web"}}));
        assert_eq!(
            pod["spec"],
            json!({"containers": [{"name": "web", "image": "nginx", "resources": {}}],
                "restartPolicy": "Always", "dnsPolicy": "ClusterFirst"})
        );
        assert_eq!(pod["status"], json!({}));
    }

    #[test]
    fn flags_fill_the_container() {
        let mut p = params("job", "busybox");
        p.labels = "app=x,tier=db".into();
        p.annotations = vec!["note=a=b".into()];
        p.env = vec!["A=1".into(), "B=".into()];
        p.port = "8080".into();
        p.restart = "Never".into();
        p.args = vec!["sh".into(), "-c".into()];
        p.stdin = true;
        p.tty = true;
        p.privileged = true;
        p.image_pull_policy = "Never".into();
        let pod = pod(&p).unwrap();
        let container = &pod["spec"]["containers"][0];
        assert_eq!(container["args"], json!(["sh", "-c"]));
        assert!(container.get("command").is_none());
        assert_eq!(container["ports"], json!([{"containerPort": 8080}]));
        assert_eq!(
            container["env"],
            json!([{"name": "A", "value": "1"}, {"name": "B", "value": ""}])
        );
        assert_eq!(container["securityContext"], json!({"privileged": true}));
        assert_eq!(
            (container["stdin"].clone(), container["stdinOnce"].clone()),
            (json!(true), json!(true))
        );
        assert_eq!(container["tty"], true);
        assert_eq!(container["imagePullPolicy"], "Never");
        assert_eq!(pod["metadata"]["labels"], json!({"app": "x", "tier": "db"}));
        assert_eq!(pod["metadata"]["annotations"], json!({"note": "a=b"}));
        assert_eq!(pod["spec"]["restartPolicy"], "Never");
        p.command = true;
        p.leave_stdin_open = true;
        let pod = super::pod(&p).unwrap();
        assert_eq!(pod["spec"]["containers"][0]["command"], json!(["sh", "-c"]));
        assert!(pod["spec"]["containers"][0].get("stdinOnce").is_none());
    }

    #[test]
    fn bad_input_is_refused_in_upstream_words() {
        let with = |f: &dyn Fn(&mut PodParams)| {
            let mut p = params("x", "busybox");
            f(&mut p);
            pod(&p).unwrap_err()
        };
        assert_eq!(with(&|p| p.env = vec!["NOVALUE".into()]), "invalid env: NOVALUE");
        assert_eq!(with(&|p| p.env = vec!["=v".into()]), "invalid env: =v");
        assert_eq!(with(&|p| p.labels = "a=b=c".into()), "unexpected label spec: a=b=c");
        assert_eq!(with(&|p| p.labels = "=b".into()), "unexpected empty label key");
        assert_eq!(with(&|p| p.port = "http".into()), "--port must be a number");
        assert_eq!(
            with(&|p| p.annotations = vec!["a".into(), "=b".into()]),
            "invalid annotations format: a, =b"
        );
        let mut p = params("x", "busybox");
        p.port = "70000".into();
        assert_eq!(
            pod(&p).unwrap()["spec"]["containers"][0]["ports"][0]["containerPort"],
            70000
        );
    }

    #[test]
    fn image_references_follow_the_distribution_grammar() {
        for good in [
            "nginx",
            "nginx:1.27",
            "registry.io:5000/team/busybox:1.36",
            "localhost/a_b__c-d",
            "busybox@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            assert!(valid_image(good), "{good}");
        }
        for bad in ["Nginx", "nginx:", "a//b", ":tag", "-x", "nginx@sha256:12"] {
            assert!(!valid_image(bad), "{bad}");
        }
    }
}
