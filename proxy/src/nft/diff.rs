//! Transactions between ruleset states: a full rewrite ([`full`]), and the incremental one that
//! touches only changed chains and map elements ([`diff`]).

use std::collections::BTreeSet;

use super::affinity::Remembered;
use super::table::{Key, Op, Ruleset, Set, SetKind, Table, Transaction};

/// The transaction that fills empty tables with `ruleset`.
pub fn create(ruleset: &Ruleset) -> Transaction {
    Transaction {
        parts: ruleset
            .tables
            .iter()
            .map(|(name, table)| (name.clone(), create_table(table)))
            .collect(),
    }
}

/// The operations that fill an empty table with `table`: sets, then every chain (so that any
/// rule or element may refer to any chain), then rules, then elements.
pub fn create_table(table: &Table) -> Vec<Op> {
    let mut ops = vec![Op::AddTable];
    for (name, set) in &table.sets {
        ops.push(Op::AddSet(name.clone(), set.kind));
    }
    for (name, chain) in &table.chains {
        ops.push(Op::AddChain(name.clone(), chain.base));
    }
    for (name, chain) in &table.chains {
        for rule in &chain.rules {
            ops.push(Op::AddRule(name.clone(), rule.clone()));
        }
    }
    for (name, set) in &table.sets {
        for (key, verdict) in &set.elements {
            ops.push(Op::AddElement(name.clone(), key.clone(), verdict.clone()));
        }
    }
    ops
}

/// Replaces whatever our tables hold with `ruleset` in one transaction (each table created if
/// missing, deleted, created again), and deletes `strays` (tables of ours that exist but are
/// not in `ruleset`, e.g. shards of a layout with more of them): repairs any drift without
/// reading the tables' content. The `remembered` session-affinity entries of sets `ruleset`
/// still has are put back, with what was left of their timeouts (at most the set's timeout).
pub fn full(ruleset: &Ruleset, strays: &[String], remembered: &[Remembered]) -> Transaction {
    let mut parts: Vec<(String, Vec<Op>)> = strays
        .iter()
        .filter(|name| !ruleset.tables.contains_key(*name))
        .map(|name| (name.clone(), vec![Op::DeleteTable]))
        .collect();
    for (name, table) in &ruleset.tables {
        let mut ops = vec![Op::AddTable, Op::DeleteTable];
        ops.extend(create_table(table));
        for entry in remembered.iter().filter(|entry| entry.table == *name) {
            if let Some(SetKind::Affinity { timeout_seconds }) = table.sets.get(&entry.set).map(|set| set.kind) {
                let remaining = entry.remaining_ms.clamp(1, u64::from(timeout_seconds) * 1000);
                ops.push(Op::AddTimedElement(entry.set.clone(), Key::Ip(entry.client), remaining));
            }
        }
        parts.push((name.clone(), ops));
    }
    Transaction { parts }
}

/// Chains that refer to other per-service chains are deleted before the chains they refer to
/// (the kernel refuses to delete a chain that is still referenced).
fn deletion_rank(chain: &str) -> u8 {
    if chain.starts_with("external-") {
        0
    } else if chain.starts_with("service-") || chain.starts_with("local-") {
        1
    } else {
        2
    }
}

/// What it takes to turn one ruleset into another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Equal,
    Incremental(Transaction),
    /// The set of tables, a base chain or a set's type changed: rewrite everything.
    Full,
}

/// The transaction that turns `old` into `new`. Only tables that differ are touched (tables
/// with the same [`Ruleset::digests`] entry are not even compared), and in them only chains
/// whose rules differ are flushed and refilled, and only changed map elements deleted or
/// added.
pub fn changes(old: &Ruleset, new: &Ruleset) -> Change {
    if !old.tables.keys().eq(new.tables.keys()) {
        return Change::Full;
    }
    let mut parts = Vec::new();
    for (name, new_table) in &new.tables {
        let Some(old_table) = old.tables.get(name) else {
            return Change::Full;
        };
        let digest = |r: &Ruleset| r.digests.get(name).copied();
        if digest(old).is_some() && digest(old) == digest(new) {
            continue;
        }
        match diff_table(old_table, new_table) {
            Incremental::Ops(ops) => parts.push((name.clone(), ops)),
            Incremental::Equal => {}
            Incremental::Impossible => return Change::Full,
        }
    }
    if parts.is_empty() {
        Change::Equal
    } else {
        Change::Incremental(Transaction { parts })
    }
}

/// [`changes`] as the transaction, or `None` when there is nothing to do incrementally
/// (equal rulesets, or a change that needs a full rewrite).
pub fn diff(old: &Ruleset, new: &Ruleset) -> Option<Transaction> {
    match changes(old, new) {
        Change::Incremental(transaction) => Some(transaction),
        Change::Equal | Change::Full => None,
    }
}

/// What [`diff_table`] found.
enum Incremental {
    Equal,
    Ops(Vec<Op>),
    Impossible,
}

fn diff_table(old: &Table, new: &Table) -> Incremental {
    let mut ops = Vec::new();
    for (name, set) in &new.sets {
        match old.sets.get(name) {
            None => ops.push(Op::AddSet(name.clone(), set.kind)),
            Some(existing) if existing.kind != set.kind => return Incremental::Impossible,
            Some(_) => {}
        }
    }
    for (name, chain) in &new.chains {
        match old.chains.get(name) {
            None => ops.push(Op::AddChain(name.clone(), chain.base)),
            Some(existing) if existing.base != chain.base => return Incremental::Impossible,
            Some(_) => {}
        }
    }
    for (name, chain) in &new.chains {
        let existing = old.chains.get(name);
        if existing.is_some_and(|e| e.rules == chain.rules) {
            continue;
        }
        if existing.is_some_and(|e| !e.rules.is_empty()) {
            ops.push(Op::FlushChain(name.clone()));
        }
        for rule in &chain.rules {
            ops.push(Op::AddRule(name.clone(), rule.clone()));
        }
    }
    let empty = Set {
        kind: SetKind::Addresses,
        elements: Default::default(),
    };
    for (name, set) in &new.sets {
        let existing = old.sets.get(name).unwrap_or(&empty);
        for (key, verdict) in &existing.elements {
            if set.elements.get(key) != Some(verdict) {
                ops.push(Op::DeleteElement(name.clone(), key.clone()));
            }
        }
        for (key, verdict) in &set.elements {
            if existing.elements.get(key) != Some(verdict) {
                ops.push(Op::AddElement(name.clone(), key.clone(), verdict.clone()));
            }
        }
    }
    // Vanished chains: every reference to them went above (flushed chains, deleted
    // elements); delete them in reference order, then the sets only they used.
    let gone: BTreeSet<&String> = old.chains.keys().filter(|c| !new.chains.contains_key(*c)).collect();
    let mut gone: Vec<&String> = gone.into_iter().collect();
    gone.sort_by_key(|c| deletion_rank(c));
    for chain in gone {
        ops.push(Op::DeleteChain(chain.clone()));
    }
    for name in old.sets.keys().filter(|s| !new.sets.contains_key(*s)) {
        ops.push(Op::DeleteSet(name.clone()));
    }
    if ops.is_empty() {
        Incremental::Equal
    } else {
        Incremental::Ops(ops)
    }
}

/// How many chains a transaction creates, rewrites or deletes (over all its tables).
pub fn chains_touched(transaction: &Transaction) -> usize {
    let mut chains = BTreeSet::new();
    for (table, ops) in &transaction.parts {
        for op in ops {
            match op {
                Op::AddChain(name, _) | Op::FlushChain(name) | Op::DeleteChain(name) | Op::AddRule(name, _) => {
                    chains.insert((table.as_str(), name.as_str()));
                }
                _ => {}
            }
        }
    }
    chains.len()
}
