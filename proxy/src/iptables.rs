//! Executing rule changes: the [`Backend`] trait (real: `iptables-restore`/`iptables-save`
//! processes; fake: a recorder), and the pure text merge used by full syncs and `--cleanup`.

use std::fmt::Write as _;
use std::future::Future;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::rules::{BUILTIN_JUMPS, RuleSet, TableName, is_owned_chain};

/// Why running iptables failed.
#[derive(Debug, thiserror::Error)]
pub enum IptablesError {
    #[error("empty command for {0}")]
    EmptyCommand(&'static str),
    #[error("running {command}: {source}")]
    Spawn { command: String, source: std::io::Error },
    #[error("{command} failed ({status}): {stderr}")]
    Failed {
        command: String,
        status: std::process::ExitStatus,
        stderr: String,
    },
    #[error("{0}")]
    Fake(String),
}

/// How `iptables-restore` treats tables named in its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestoreMode {
    /// Flush each table named in the input first (the input carries the whole table).
    Flush,
    /// `--noflush`: leave everything not named in the input alone.
    NoFlush,
}

/// The side effect of the proxy: applying and reading iptables.
pub trait Backend: Send + Sync {
    /// Feeds `input` to `iptables-restore` in one transaction.
    fn restore(&self, input: String, mode: RestoreMode) -> impl Future<Output = Result<(), IptablesError>> + Send;
    /// Returns the `iptables-save` output of every table.
    fn save(&self) -> impl Future<Output = Result<String, IptablesError>> + Send;
}

/// Runs the iptables binaries. Each command is a program plus leading arguments, so tests can
/// prefix `ip netns exec NAME`.
#[derive(Clone, Debug)]
pub struct CommandBackend {
    pub restore: Vec<String>,
    pub save: Vec<String>,
}

impl CommandBackend {
    /// `iptables-restore` and `iptables-save` (or the given binaries) run directly.
    pub fn new(restore: &str, save: &str) -> Self {
        CommandBackend {
            restore: vec![restore.to_string()],
            save: vec![save.to_string()],
        }
    }

    /// Runs both binaries inside network namespace `netns` via `ip netns exec`.
    pub fn in_netns(netns: &str, restore: &str, save: &str) -> Self {
        let prefix = ["ip", "netns", "exec", netns].map(String::from);
        CommandBackend {
            restore: prefix.iter().cloned().chain([restore.to_string()]).collect(),
            save: prefix.iter().cloned().chain([save.to_string()]).collect(),
        }
    }
}

fn command(parts: &[String], what: &'static str) -> Result<Command, IptablesError> {
    let (program, args) = parts.split_first().ok_or(IptablesError::EmptyCommand(what))?;
    let mut command = Command::new(program);
    command.args(args).kill_on_drop(true);
    Ok(command)
}

impl Backend for CommandBackend {
    async fn restore(&self, input: String, mode: RestoreMode) -> Result<(), IptablesError> {
        let mut command = command(&self.restore, "iptables-restore")?;
        if mode == RestoreMode::NoFlush {
            command.arg("--noflush");
        }
        let name = self.restore.join(" ");
        let spawn_error = |source| IptablesError::Spawn {
            command: name.clone(),
            source,
        };
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(spawn_error)?;
        if let Some(mut stdin) = child.stdin.take() {
            // A write error means the process exited early; its status tells why.
            let _ = stdin.write_all(input.as_bytes()).await;
        }
        let output = child.wait_with_output().await.map_err(spawn_error)?;
        if !output.status.success() {
            return Err(IptablesError::Failed {
                command: name,
                status: output.status,
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
            });
        }
        Ok(())
    }

    async fn save(&self) -> Result<String, IptablesError> {
        let name = self.save.join(" ");
        let output = command(&self.save, "iptables-save")?
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|source| IptablesError::Spawn {
                command: name.clone(),
                source,
            })?;
        if !output.status.success() {
            return Err(IptablesError::Failed {
                command: name,
                status: output.status,
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
            });
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }
}

/// A recording fake: keeps every restore call and answers `save` with a fixed text.
#[derive(Clone, Debug, Default)]
pub struct FakeBackend {
    pub calls: Arc<Mutex<Vec<(RestoreMode, String)>>>,
    pub saved: Arc<Mutex<String>>,
    pub fail_next: Arc<Mutex<bool>>,
}

impl FakeBackend {
    /// The restore inputs so far.
    pub fn take_calls(&self) -> Vec<(RestoreMode, String)> {
        self.calls
            .lock()
            .map(|mut c| std::mem::take(&mut *c))
            .unwrap_or_default()
    }
}

impl Backend for FakeBackend {
    async fn restore(&self, input: String, mode: RestoreMode) -> Result<(), IptablesError> {
        if let Ok(mut fail) = self.fail_next.lock()
            && std::mem::take(&mut *fail)
        {
            return Err(IptablesError::Fake("injected failure".into()));
        }
        if let Ok(mut calls) = self.calls.lock() {
            calls.push((mode, input));
        }
        Ok(())
    }

    async fn save(&self) -> Result<String, IptablesError> {
        Ok(self.saved.lock().map(|s| s.clone()).unwrap_or_default())
    }
}

/// One table's section of `iptables-save` output, split into declarations and rules.
#[derive(Debug, Default)]
struct SavedTable {
    declarations: Vec<String>,
    rules: Vec<String>,
}

/// Parses `iptables-save` output into the sections of the tables we write.
fn parse_saved(saved: &str) -> [Option<SavedTable>; 2] {
    let mut tables: [Option<SavedTable>; 2] = [None, None];
    let mut current: Option<usize> = None;
    for line in saved.lines() {
        let line = line.trim_end();
        if let Some(name) = line.strip_prefix('*') {
            current = TableName::ALL.iter().position(|t| t.as_str() == name);
            if let Some(index) = current {
                tables[index] = Some(SavedTable::default());
            }
            continue;
        }
        let Some(table) = current.and_then(|index| tables[index].as_mut()) else {
            continue;
        };
        if line.starts_with(':') {
            table.declarations.push(line.to_string());
        } else if line.starts_with("-A ") {
            table.rules.push(line.to_string());
        } else if line == "COMMIT" {
            current = None;
        }
    }
    tables
}

/// The chain a `:NAME POLICY [x:y]` or `-A NAME ...` line is about.
fn line_chain(line: &str) -> &str {
    let body = line
        .strip_prefix(':')
        .or_else(|| line.strip_prefix("-A "))
        .unwrap_or(line);
    body.split_whitespace().next().unwrap_or("")
}

/// Whether a rule jumps (`-j`/`-g`) into a chain we own.
fn jumps_to_owned(rule: &str) -> bool {
    let mut words = rule.split_whitespace();
    while let Some(word) = words.next() {
        if matches!(word, "-j" | "-g" | "--jump" | "--goto") && words.next().is_some_and(is_owned_chain) {
            return true;
        }
    }
    false
}

/// Builds flush-mode `iptables-restore` input for the nat and filter tables: everything in
/// `saved` that is not ours, plus `ours` (our chains and the jumps into them from built-in
/// chains, placed first as upstream inserts them). With `ours = None` this is `--cleanup`; a
/// table absent from `saved` is then left out entirely.
pub fn merge_full(saved: &str, ours: Option<&RuleSet>) -> String {
    let parsed = parse_saved(saved);
    let mut out = String::new();
    for (index, table) in TableName::ALL.into_iter().enumerate() {
        let existing = parsed[index].as_ref();
        if ours.is_none() && existing.is_none() {
            continue;
        }
        let _ = writeln!(out, "*{}", table.as_str());
        if let Some(existing) = existing {
            for line in &existing.declarations {
                if !is_owned_chain(line_chain(line)) {
                    let _ = writeln!(out, "{line}");
                }
            }
        }
        if let Some(ours) = ours {
            for chain in ours.table(table).keys() {
                let _ = writeln!(out, ":{chain} - [0:0]");
            }
            for (jump_table, chain, rule) in BUILTIN_JUMPS {
                if *jump_table == table {
                    let _ = writeln!(out, "-A {chain} {rule}");
                }
            }
        }
        if let Some(existing) = existing {
            for line in &existing.rules {
                if !is_owned_chain(line_chain(line)) && !jumps_to_owned(line) {
                    let _ = writeln!(out, "{line}");
                }
            }
        }
        if let Some(ours) = ours {
            for (chain, rules) in ours.table(table) {
                for rule in rules {
                    let _ = writeln!(out, "-A {chain} {rule}");
                }
            }
        }
        out.push_str("COMMIT\n");
    }
    out
}

/// Removes every chain and rule of ours, leaving the rest of nat and filter untouched.
pub async fn cleanup<B: Backend>(backend: &B) -> Result<(), IptablesError> {
    let saved = backend.save().await?;
    let input = merge_full(&saved, None);
    if input.is_empty() {
        return Ok(());
    }
    backend.restore(input, RestoreMode::Flush).await
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAVED: &str = "# Generated by iptables-save v1.8.9
*mangle
:PREROUTING ACCEPT [0:0]
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:DOCKER - [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-SVC-AAAA - [0:0]
-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES
-A PREROUTING -j DOCKER
-A DOCKER -d 1.2.3.4/32 -j RETURN
-A KUBE-SERVICES -j KUBE-SVC-AAAA
COMMIT
";

    #[test]
    fn cleanup_keeps_foreign_rules_and_skips_absent_tables() {
        let out = merge_full(SAVED, None);
        assert_eq!(
            out,
            "*nat\n:PREROUTING ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n:DOCKER - [0:0]\n-A PREROUTING -j DOCKER\n-A DOCKER -d 1.2.3.4/32 -j RETURN\nCOMMIT\n"
        );
    }

    #[test]
    fn full_merge_puts_our_jumps_first_and_our_chains_last() {
        let mut ours = RuleSet::default();
        ours.nat.insert("KUBE-SERVICES".into(), vec!["-j RETURN".into()]);
        let out = merge_full(SAVED, Some(&ours));
        let lines: Vec<&str> = out.lines().collect();
        let nat_start = lines.iter().position(|l| *l == "*nat").unwrap_or(0);
        let nat_end = lines.iter().position(|l| *l == "COMMIT").unwrap_or(0);
        assert_eq!(
            lines[nat_start..=nat_end].to_vec(),
            vec![
                "*nat",
                ":PREROUTING ACCEPT [0:0]",
                ":POSTROUTING ACCEPT [0:0]",
                ":DOCKER - [0:0]",
                ":KUBE-SERVICES - [0:0]",
                "-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES",
                "-A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES",
                "-A POSTROUTING -m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING",
                "-A PREROUTING -j DOCKER",
                "-A DOCKER -d 1.2.3.4/32 -j RETURN",
                "-A KUBE-SERVICES -j RETURN",
                "COMMIT",
            ]
        );
        assert!(out.contains("*filter\n-A INPUT -m conntrack"));
    }
}
