//! The systemd units in `manifests/systemd/` (what runs kaji on real machines) are also how
//! `kaji up` starts its components: each command line is the unit's `ExecStart=`, expanded as
//! systemd expands it from the unit's environment file's defaults and the values this cluster
//! needs. So the multi-machine files are exercised by every `kaji up`.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail};

/// A component's unit and its environment file, as shipped in `manifests/systemd/`.
pub struct Unit {
    pub name: &'static str,
    service: &'static str,
    env: &'static str,
}

macro_rules! unit {
    ($name:literal) => {
        Unit {
            name: $name,
            service: include_str!(concat!("../../manifests/systemd/", $name, ".service")),
            env: include_str!(concat!("../../manifests/systemd/", $name, ".env")),
        }
    };
}

pub const APISERVER: Unit = unit!("kube-apiserver");
pub const SCHEDULER: Unit = unit!("kube-scheduler");
pub const CONTROLLER_MANAGER: Unit = unit!("kube-controller-manager");
pub const KUBELET: Unit = unit!("kubelet");
pub const PROXY: Unit = unit!("kube-proxy");

impl Unit {
    /// The unit's environment file's settings (`KEY=value` lines; later ones win).
    pub fn defaults(&self) -> BTreeMap<String, String> {
        parse_env(self.env)
    }

    /// The command line `ExecStart=` runs with the defaults overridden by `values`: the
    /// executable's file name and its arguments.
    pub fn command(&self, values: &[(&str, &str)]) -> Result<(String, Vec<String>)> {
        let mut env = self.defaults();
        for (key, value) in values {
            env.insert((*key).to_string(), (*value).to_string());
        }
        let exec = self
            .service
            .lines()
            .find_map(|line| line.trim().strip_prefix("ExecStart="))
            .with_context(|| format!("{}.service has no ExecStart=", self.name))?;
        let words = expand(exec, &env).with_context(|| format!("{}.service", self.name))?;
        let (program, args) = words
            .split_first()
            .with_context(|| format!("{}.service: ExecStart= is empty", self.name))?;
        let file_name = Path::new(program)
            .file_name()
            .with_context(|| format!("{}.service: no executable in ExecStart=", self.name))?
            .to_string_lossy()
            .into_owned();
        Ok((file_name, args.to_vec()))
    }
}

/// `KEY=value` lines of an environment file; comments and blank lines skipped, optional
/// double quotes around the value removed.
fn parse_env(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| {
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value);
            (key.trim().to_string(), value.to_string())
        })
        .collect()
}

/// Splits a command line into words and expands variables as systemd does: a word that is
/// exactly `$NAME` becomes the value's whitespace-separated words (none when empty); `${NAME}`
/// is replaced inside its word. A variable the environment doesn't define is an error here
/// (systemd would expand it to nothing), so a mistake in a unit is caught by `kaji up`.
fn expand(line: &str, env: &BTreeMap<String, String>) -> Result<Vec<String>> {
    let lookup = |name: &str| {
        env.get(name)
            .with_context(|| format!("ExecStart= uses ${name}, which its environment file doesn't define"))
    };
    let mut words = Vec::new();
    for word in line.split_whitespace() {
        if word.contains('"') || word.contains('\'') {
            bail!("quoted words in ExecStart= are not supported: {word}");
        }
        if let Some(name) = word.strip_prefix('$').filter(|n| !n.starts_with('{')) {
            words.extend(lookup(name)?.split_whitespace().map(str::to_string));
            continue;
        }
        let mut expanded = String::new();
        let mut rest = word;
        while let Some(start) = rest.find("${") {
            expanded.push_str(&rest[..start]);
            let end = rest[start..]
                .find('}')
                .with_context(|| format!("unclosed ${{ in {word}"))?;
            expanded.push_str(lookup(&rest[start + 2..start + end])?);
            rest = &rest[start + end + 1..];
        }
        expanded.push_str(rest);
        words.push(expanded);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unit_expands_with_its_own_defaults() {
        for unit in [APISERVER, SCHEDULER, CONTROLLER_MANAGER, KUBELET, PROXY] {
            let (program, args) = unit.command(&[]).expect(unit.name);
            assert_eq!(program, unit.name);
            assert!(args.iter().all(|a| !a.contains('$')), "{}: {args:?}", unit.name);
        }
    }

    #[test]
    fn whole_word_variables_split_and_braced_ones_substitute() {
        let (program, args) = KUBELET
            .command(&[("NODE_NAME", "n1"), ("EXTRA_ARGS", "--insecure-registry r:5000  --v 2")])
            .expect("kubelet");
        assert_eq!(program, "kubelet");
        let at = args.iter().position(|a| a == "--node-name").expect("--node-name");
        assert_eq!(args[at + 1], "n1");
        assert_eq!(args[args.len() - 4..], ["--insecure-registry", "r:5000", "--v", "2"]);
        let (_, args) = KUBELET.command(&[("EXTRA_ARGS", "")]).expect("kubelet");
        assert_eq!(
            args.last().map(String::as_str),
            Some("10.96.0.10"),
            "empty $EXTRA_ARGS adds nothing"
        );
    }

    #[test]
    fn undefined_variables_and_quotes_are_refused() {
        let env = parse_env("A=1\n# comment\nB=\"two words\"\n");
        assert_eq!(env["B"], "two words");
        assert_eq!(
            expand("x --a=${A}/y $B", &env).expect("expands"),
            ["x", "--a=1/y", "two", "words"]
        );
        assert!(expand("x ${C}", &env).is_err());
        assert!(expand("x $C", &env).is_err());
        assert!(expand("x ${A", &env).is_err());
        assert!(expand("x \"a b\"", &env).is_err());
    }
}
