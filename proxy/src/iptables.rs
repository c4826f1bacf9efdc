//! Executing rule changes: the [`Backend`] trait (real: `iptables-restore`/`iptables-save`
//! processes; fake: a recorder), and the pure text merge used by full syncs and `--cleanup`.

use std::collections::BTreeMap;
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
/// prefix `nsenter --net=/run/netns/NAME`.
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

    /// Runs both binaries inside the named network namespace (`/run/netns/NAME`) via
    /// `nsenter --net`, which only joins it (`ip netns exec` also makes a mount namespace and
    /// remounts /sys, a few milliseconds per call that a kube-proxy running in its node's
    /// namespace does not pay).
    pub fn in_netns(netns: &str, restore: &str, save: &str) -> Self {
        let prefix = ["nsenter".to_string(), format!("--net=/run/netns/{netns}")];
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
            for chain in scrambled(ours.table(table).keys()) {
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

/// `names` in an order that looks random but is fixed (sorted by an FNV-1a hash).
///
/// The kernel keeps chains in creation order, and `iptables-nft-save` 1.8.9 sorts the chains it
/// fetches by name with an insertion sort that is O(n) per chain when they arrive sorted either
/// way: creating 30 000 chains in name order makes every later `iptables-save` take ~18 s of
/// CPU, against ~0.9 s when they were created in scrambled order (10 000 services, measured).
fn scrambled<'a>(names: impl Iterator<Item = &'a String>) -> Vec<&'a String> {
    let fnv = |name: &str| {
        name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
    };
    let mut names: Vec<&String> = names.collect();
    names.sort_by_cached_key(|name| (fnv(name), name.as_str()));
    names
}

/// Splits a rule into words as a shell would for iptables: `"..."` groups a word (with `\"`
/// and `\\` escapes), so `--comment "a b"` and `--comment ab` compare by their content.
fn words(rule: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut in_word = false;
    let mut quoted = false;
    let mut chars = rule.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                quoted = !quoted;
                in_word = true;
            }
            '\\' if quoted => {
                if let Some(next) = chars.next() {
                    current.push(next);
                }
            }
            c if c.is_whitespace() && !quoted => {
                if in_word {
                    out.push(std::mem::take(&mut current));
                    in_word = false;
                }
            }
            c => {
                current.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(current);
    }
    out
}

/// A rule in the form `iptables-save` prints it, as words, so that the text we restore and
/// the text read back compare equal when they mean the same rule. Covers what
/// [`crate::rules::compute`] writes: address/protocol matches move to the front in save order
/// (`-s -d -i -o -p`) with `/32` made explicit, `--probability` gets save's 11 decimals,
/// `MARK --or-mark`/`--xor-mark` become `--set-xmark`, and a bare `REJECT` gets its default
/// `--reject-with`. A form not covered only makes a chain look changed, so it is restored.
pub fn canonical_rule(rule: &str) -> Vec<String> {
    const IP_OPTIONS: [&[&str]; 5] = [
        &["-s", "--source", "--src"],
        &["-d", "--destination", "--dst"],
        &["-i", "--in-interface"],
        &["-o", "--out-interface"],
        &["-p", "--protocol"],
    ];
    let slot = |word: &str| IP_OPTIONS.iter().position(|names| names.contains(&word));
    let tokens = words(rule);
    let mut ip: [Vec<String>; 5] = Default::default();
    let mut rest: Vec<String> = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let negated = tokens[i] == "!" && tokens.get(i + 1).is_some_and(|w| slot(w).is_some());
        let at = if negated { i + 1 } else { i };
        if let (Some(index), Some(value)) = (slot(&tokens[at]), tokens.get(at + 1)) {
            let value = match index {
                0 | 1 if !value.contains('/') => format!("{value}/32"),
                4 => value.to_ascii_lowercase(),
                _ => value.clone(),
            };
            let flag = IP_OPTIONS[index][0].to_string();
            ip[index] = if negated {
                vec!["!".into(), flag, value]
            } else {
                vec![flag, value]
            };
            i = at + 2;
            continue;
        }
        rest.push(tokens[i].clone());
        i += 1;
    }
    let mut out: Vec<String> = ip.into_iter().flatten().collect();
    let mut i = 0;
    while i < rest.len() {
        let word = rest[i].as_str();
        let value = rest.get(i + 1);
        match (word, value) {
            ("--probability", Some(p)) => {
                // The kernel keeps round(p * 2^31); save prints that back with 11 decimals.
                out.push(word.into());
                let scaled = p.parse::<f64>().map(|p| (p * 2_147_483_648.0).round() as u64);
                out.push(scaled.map_or_else(|_| p.clone(), |q| format!("2^-31*{q}")));
                i += 2;
            }
            ("--or-mark", Some(mark)) => {
                out.push("--set-xmark".into());
                out.push(format!("{mark}/{mark}"));
                i += 2;
            }
            ("--xor-mark", Some(mark)) => {
                out.push("--set-xmark".into());
                out.push(format!("{mark}/0x0"));
                i += 2;
            }
            ("REJECT", _) if i > 0 && matches!(rest[i - 1].as_str(), "-j" | "--jump") => {
                out.push(word.into());
                if value.is_none_or(|v| v != "--reject-with") {
                    out.push("--reject-with".into());
                    out.push("icmp-port-unreachable".into());
                }
                i += 1;
            }
            _ => {
                out.push(word.into());
                i += 1;
            }
        }
    }
    sort_options(out)
}

/// Sorts the options inside each `-m MATCH` and `-j TARGET` block by name (`-m recent --name
/// X --rcheck` is saved as `-m recent --rcheck --name X`); a `!` stays with its option and
/// values with theirs. Blocks keep their order, which the kernel keeps too.
fn sort_options(words: Vec<String>) -> Vec<String> {
    fn flush(out: &mut Vec<String>, groups: &mut Vec<Vec<String>>) {
        let key = |group: &Vec<String>| group.iter().find(|w| w.starts_with("--")).cloned();
        groups.sort_by_key(key);
        out.extend(groups.drain(..).flatten());
    }
    let mut out = Vec::with_capacity(words.len());
    let mut groups: Vec<Vec<String>> = Vec::new();
    let mut in_block = false;
    let mut words = words.into_iter();
    while let Some(word) = words.next() {
        if matches!(word.as_str(), "-m" | "--match" | "-j" | "--jump" | "-g" | "--goto") {
            flush(&mut out, &mut groups);
            out.push(word);
            out.extend(words.next());
            in_block = true;
        } else if !in_block {
            out.push(word);
        } else if word.starts_with("--") && groups.last().is_some_and(|g| g.len() == 1 && g[0] == "!") {
            groups.last_mut().into_iter().for_each(|g| g.push(word.clone()));
        } else if word == "!" || word.starts_with("--") || groups.is_empty() {
            groups.push(vec![word]);
        } else {
            groups.last_mut().into_iter().for_each(|g| g.push(word.clone()));
        }
    }
    flush(&mut out, &mut groups);
    out
}

/// At most this many chains are repaired with `--noflush`; more drift than that restores the
/// tables whole (the `--noflush` cost grows with the square of the chains named).
pub const MAX_REPAIR_CHAINS: usize = 1000;

/// What a full resync has to do, decided from `iptables-save` output and the desired rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResyncPlan {
    /// Restore nat and filter whole, in flush mode, from this input: none of our chains exist
    /// yet (a fresh node), the drift is large, or a chain that is not ours jumps into ours in a
    /// way we did not write.
    Flush(String),
    /// Restore `input` with `--noflush`: it rewrites `chains` (changed or missing chains of
    /// ours, and stray ones, which it deletes) and re-inserts missing jumps from built-in chains.
    Repair {
        input: String,
        chains: Vec<(TableName, String)>,
    },
    /// The tables already hold exactly the desired rules.
    InSync,
}

/// Compares what `iptables-save` shows with `desired`, chain by chain, and plans the smallest
/// restore that makes them equal (see [`ResyncPlan`]).
pub fn plan_resync(saved: &str, desired: &RuleSet) -> ResyncPlan {
    let parsed = parse_saved(saved);
    let flush = || ResyncPlan::Flush(merge_full(saved, Some(desired)));
    let ours_present = parsed
        .iter()
        .flatten()
        .any(|t| t.declarations.iter().any(|l| is_owned_chain(line_chain(l))));
    if !ours_present {
        return flush();
    }
    let mut input = String::new();
    let mut chains = Vec::new();
    for (index, table) in TableName::ALL.into_iter().enumerate() {
        let empty = SavedTable::default();
        let existing = parsed[index].as_ref().unwrap_or(&empty);
        let mut actual: BTreeMap<&str, Vec<Vec<String>>> = BTreeMap::new();
        for line in &existing.declarations {
            let chain = line_chain(line);
            if is_owned_chain(chain) {
                actual.entry(chain).or_default();
            }
        }
        let expected: Vec<(&str, Vec<String>)> = BUILTIN_JUMPS
            .iter()
            .filter(|(t, _, _)| *t == table)
            .map(|(_, chain, rule)| (*chain, canonical_rule(rule)))
            .collect();
        let mut found = vec![false; expected.len()];
        for line in &existing.rules {
            let chain = line_chain(line);
            let body = line
                .strip_prefix("-A ")
                .and_then(|l| l.strip_prefix(chain))
                .unwrap_or("")
                .trim_start();
            if is_owned_chain(chain) {
                actual.entry(chain).or_default().push(canonical_rule(body));
            } else if jumps_to_owned(line) {
                let rule = canonical_rule(body);
                let Some(at) = expected
                    .iter()
                    .enumerate()
                    .position(|(i, (c, r))| *c == chain && *r == rule && !found[i])
                else {
                    return flush(); // a jump we did not write, or a duplicate
                };
                found[at] = true;
            }
        }
        let wanted = desired.table(table);
        let changed: Vec<&String> = wanted
            .iter()
            .filter(|(chain, rules)| {
                actual.get(chain.as_str()).is_none_or(|have| {
                    have.len() != rules.len() || have.iter().zip(rules.iter()).any(|(h, r)| *h != canonical_rule(r))
                })
            })
            .map(|(chain, _)| chain)
            .collect();
        let stray: Vec<&str> = actual.keys().copied().filter(|c| !wanted.contains_key(*c)).collect();
        let missing: Vec<usize> = (0..expected.len()).filter(|i| !found[*i]).collect();
        if changed.is_empty() && stray.is_empty() && missing.is_empty() {
            continue;
        }
        chains.extend(changed.iter().map(|c| (table, c.to_string())));
        chains.extend(stray.iter().map(|c| (table, c.to_string())));
        if chains.len() > MAX_REPAIR_CHAINS {
            return flush();
        }
        let _ = writeln!(input, "*{}", table.as_str());
        for chain in changed.iter().map(|c| c.as_str()).chain(stray.iter().copied()) {
            let _ = writeln!(input, ":{chain} - [0:0]");
        }
        for chain in &changed {
            for rule in &wanted[*chain] {
                let _ = writeln!(input, "-A {chain} {rule}");
            }
        }
        // Inserting the missing jumps at the top in reverse keeps them in BUILTIN_JUMPS order.
        let jumps: Vec<_> = BUILTIN_JUMPS.iter().filter(|(t, _, _)| *t == table).collect();
        for i in missing.iter().rev() {
            let (_, chain, rule) = jumps[*i];
            let _ = writeln!(input, "-I {chain} 1 {rule}");
        }
        for chain in &stray {
            let _ = writeln!(input, "-X {chain}");
        }
        input.push_str("COMMIT\n");
    }
    if input.is_empty() {
        ResyncPlan::InSync
    } else {
        ResyncPlan::Repair { input, chains }
    }
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

    /// Our base chains as `iptables-nft-save` prints them, with the jumps in place.
    const SAVED_OURS: &str = "# Generated by iptables-save v1.8.9 (nf_tables)
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:DOCKER - [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-SVC-A - [0:0]
:KUBE-SVCS-0A - [0:0]
-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES
-A PREROUTING -j DOCKER
-A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES
-A POSTROUTING -m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING
-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000
-A KUBE-SERVICES -d 0.0.0.10/0.0.0.255 -j KUBE-SVCS-0A
-A KUBE-SVC-A ! -s 10.244.0.0/16 -d 10.96.0.10/32 -p tcp -m comment --comment \"ns/a cluster IP\" -m tcp --dport 80 -j KUBE-MARK-MASQ
-A KUBE-SVC-A -m comment --comment \"ns/a -> 10.244.0.2:80\" -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-B
-A KUBE-SVCS-0A -d 10.96.0.10/32 -p tcp -m comment --comment \"ns/a cluster IP\" -m tcp --dport 80 -j KUBE-SVC-A
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:KUBE-SERVICES - [0:0]
-A INPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes externally-visible service portals\" -j KUBE-EXTERNAL-SERVICES
-A FORWARD -m comment --comment \"kubernetes forwarding rules\" -j KUBE-FORWARD
-A FORWARD -m conntrack --ctstate NEW -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES
-A FORWARD -m conntrack --ctstate NEW -m comment --comment \"kubernetes externally-visible service portals\" -j KUBE-EXTERNAL-SERVICES
-A OUTPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES
-A KUBE-SERVICES -d 10.96.0.11/32 -p tcp -m comment --comment ns/b -m tcp --dport 80 -j REJECT --reject-with icmp-port-unreachable
COMMIT
";

    /// The rules `SAVED_OURS` holds, in the form `compute` writes them.
    fn desired() -> RuleSet {
        let mut set = RuleSet::default();
        let nat = [
            ("KUBE-MARK-MASQ", vec!["-j MARK --or-mark 0x4000"]),
            ("KUBE-SERVICES", vec!["-d 0.0.0.10/0.0.0.255 -j KUBE-SVCS-0A"]),
            (
                "KUBE-SVC-A",
                vec![
                    "-m comment --comment \"ns/a cluster IP\" -d 10.96.0.10/32 -p tcp -m tcp --dport 80 ! -s 10.244.0.0/16 -j KUBE-MARK-MASQ",
                    "-m comment --comment \"ns/a -> 10.244.0.2:80\" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-B",
                ],
            ),
            (
                "KUBE-SVCS-0A",
                vec![
                    "-m comment --comment \"ns/a cluster IP\" -d 10.96.0.10/32 -p tcp -m tcp --dport 80 -j KUBE-SVC-A",
                ],
            ),
        ];
        for (chain, rules) in nat {
            set.nat
                .insert(chain.into(), rules.into_iter().map(String::from).collect());
        }
        set.filter.insert(
            "KUBE-SERVICES".into(),
            vec!["-m comment --comment \"ns/b\" -d 10.96.0.11/32 -p tcp -m tcp --dport 80 -j REJECT".into()],
        );
        set
    }

    fn repaired(plan: &ResyncPlan) -> Vec<String> {
        match plan {
            ResyncPlan::Repair { chains, .. } => chains
                .iter()
                .map(|(table, chain)| format!("{}/{chain}", table.as_str()))
                .collect(),
            other => panic!("expected a repair, got {other:?}"),
        }
    }

    #[test]
    fn canonical_form_matches_what_save_prints() {
        for (written, saved) in [
            (
                "-m comment --comment \"x y\" -d 10.0.0.1 -p TCP -m tcp --dport 80 ! -s 10.0.0.0/8 -j A",
                "! -s 10.0.0.0/8 -d 10.0.0.1/32 -p tcp -m comment --comment \"x y\" -m tcp --dport 80 -j A",
            ),
            ("-m comment --comment \"ns/a\" -j B", "-m comment --comment ns/a -j B"),
            (
                "-m statistic --mode random --probability 0.3333333333 -j B",
                "-m statistic --mode random --probability 0.33333333349 -j B",
            ),
            (
                "-m recent --name S --mask 255.255.255.255 --rsource --rcheck --seconds 600 --reap -j S",
                "-m recent --rcheck --seconds 600 --reap --name S --mask 255.255.255.255 --rsource -j S",
            ),
            (
                "-m mark ! --mark 0x4000/0x4000 -j RETURN",
                "-m mark ! --mark 0x4000/0x4000 -j RETURN",
            ),
            ("-j MARK --xor-mark 0x4000", "-j MARK --set-xmark 0x4000/0x0"),
            ("-j REJECT", "-j REJECT --reject-with icmp-port-unreachable"),
        ] {
            assert_eq!(canonical_rule(written), canonical_rule(saved), "{written}");
        }
        assert_ne!(
            canonical_rule("-s 10.0.0.1/32 -j A"),
            canonical_rule("! -s 10.0.0.1/32 -j A")
        );
        assert_ne!(
            canonical_rule("-m mark ! --mark 0x1 -j A"),
            canonical_rule("-m mark --mark 0x1 -j A")
        );
        assert_ne!(
            canonical_rule("-m statistic --probability 0.5 -j A"),
            canonical_rule("-m statistic --probability 0.25 -j A")
        );
        assert_ne!(
            canonical_rule("-m comment --comment \"a b\" -j A"),
            canonical_rule("-m comment --comment a -j A")
        );
    }

    #[test]
    fn resync_of_exact_tables_restores_nothing() {
        assert_eq!(plan_resync(SAVED_OURS, &desired()), ResyncPlan::InSync);
    }

    #[test]
    fn resync_without_our_chains_restores_everything_in_flush_mode() {
        let foreign_only = merge_full(SAVED, None);
        assert_eq!(
            plan_resync(&foreign_only, &desired()),
            ResyncPlan::Flush(merge_full(&foreign_only, Some(&desired())))
        );
        assert!(matches!(plan_resync("", &desired()), ResyncPlan::Flush(_)));
    }

    #[test]
    fn resync_restores_only_drifted_chains() {
        // A flushed shard, a rule edited in place, a missing chain and a stray one.
        let saved = SAVED_OURS
            .replace("-A KUBE-SVCS-0A -d 10.96.0.10/32 -p tcp -m comment --comment \"ns/a cluster IP\" -m tcp --dport 80 -j KUBE-SVC-A\n", "")
            .replace("--probability 0.50000000000", "--probability 0.25000000000")
            .replace(":DOCKER - [0:0]\n", ":DOCKER - [0:0]\n:KUBE-SEP-OLD - [0:0]\n");
        let mut want = desired();
        want.nat.insert("KUBE-NODEPORTS".into(), vec![]);
        let plan = plan_resync(&saved, &want);
        assert_eq!(
            repaired(&plan),
            [
                "nat/KUBE-NODEPORTS",
                "nat/KUBE-SVC-A",
                "nat/KUBE-SVCS-0A",
                "nat/KUBE-SEP-OLD"
            ]
        );
        let ResyncPlan::Repair { input, .. } = plan else {
            unreachable!()
        };
        assert_eq!(
            input,
            "*nat
:KUBE-NODEPORTS - [0:0]
:KUBE-SVC-A - [0:0]
:KUBE-SVCS-0A - [0:0]
:KUBE-SEP-OLD - [0:0]
-A KUBE-SVC-A -m comment --comment \"ns/a cluster IP\" -d 10.96.0.10/32 -p tcp -m tcp --dport 80 ! -s 10.244.0.0/16 -j KUBE-MARK-MASQ
-A KUBE-SVC-A -m comment --comment \"ns/a -> 10.244.0.2:80\" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-B
-A KUBE-SVCS-0A -m comment --comment \"ns/a cluster IP\" -d 10.96.0.10/32 -p tcp -m tcp --dport 80 -j KUBE-SVC-A
-X KUBE-SEP-OLD
COMMIT
"
        );
    }

    #[test]
    fn resync_reinserts_missing_jumps_in_order() {
        let saved = SAVED_OURS
            .replace("-A FORWARD -m comment --comment \"kubernetes forwarding rules\" -j KUBE-FORWARD\n", "")
            .replace("-A FORWARD -m conntrack --ctstate NEW -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n", "");
        let plan = plan_resync(&saved, &desired());
        assert!(repaired(&plan).is_empty());
        let ResyncPlan::Repair { input, .. } = plan else {
            unreachable!()
        };
        assert_eq!(
            input,
            "*filter
-I FORWARD 1 -m conntrack --ctstate NEW -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES
-I FORWARD 1 -m comment --comment \"kubernetes forwarding rules\" -j KUBE-FORWARD
COMMIT
"
        );
    }

    #[test]
    fn resync_with_foreign_or_duplicate_jumps_into_ours_restores_in_flush_mode() {
        let foreign = SAVED_OURS.replace(
            "-A PREROUTING -j DOCKER\n",
            "-A PREROUTING -j DOCKER\n-A DOCKER -j KUBE-SVC-A\n",
        );
        assert!(matches!(plan_resync(&foreign, &desired()), ResyncPlan::Flush(_)));
        let duplicate = SAVED_OURS.replace(
            "-A PREROUTING -j DOCKER\n",
            "-A PREROUTING -j DOCKER\n-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n",
        );
        assert!(matches!(plan_resync(&duplicate, &desired()), ResyncPlan::Flush(_)));
    }

    #[test]
    fn resync_with_large_drift_restores_in_flush_mode() {
        let mut want = desired();
        for i in 0..=MAX_REPAIR_CHAINS {
            want.nat.insert(format!("KUBE-SEP-{i}"), vec![]);
        }
        assert!(matches!(plan_resync(SAVED_OURS, &want), ResyncPlan::Flush(_)));
    }

    #[test]
    fn full_merge_declares_our_chains_in_scrambled_order() {
        let mut ours = RuleSet::default();
        for i in 0..50 {
            ours.nat.insert(format!("KUBE-SVC-{i:03}"), vec![]);
        }
        let out = merge_full("", Some(&ours));
        let declared: Vec<&str> = out.lines().filter(|l| l.starts_with(":KUBE-")).collect();
        let mut sorted = declared.clone();
        sorted.sort_unstable();
        assert_eq!(declared.len(), 50);
        assert_ne!(declared, sorted);
    }
}
