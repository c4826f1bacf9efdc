//! Transactions between table states: a full rewrite ([`full`]), and the incremental one that
//! touches only changed chains and map elements ([`diff`]).

use std::collections::BTreeSet;

use super::table::{Op, Set, SetKind, Table};

/// The operations that fill an empty table with `table`: sets, then every chain (so that any
/// rule or element may refer to any chain), then rules, then elements.
pub fn create(table: &Table) -> Vec<Op> {
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

/// Replaces whatever our table holds with `table` in one transaction (create it if missing,
/// delete it, create it again): repairs any drift without reading the kernel's state.
pub fn full(table: &Table) -> Vec<Op> {
    let mut ops = vec![Op::AddTable, Op::DeleteTable];
    ops.extend(create(table));
    ops
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

/// The transaction that turns `old` into `new`, or `None` when they are equal. Only chains
/// whose rules differ are flushed and refilled, and only changed map elements are deleted or
/// added. Returns `None` too when the change cannot be made incrementally (a base chain or a
/// set's type changed): the caller then rewrites everything.
pub fn diff(old: &Table, new: &Table) -> Option<Vec<Op>> {
    let mut ops = Vec::new();
    for (name, set) in &new.sets {
        match old.sets.get(name) {
            None => ops.push(Op::AddSet(name.clone(), set.kind)),
            Some(existing) if existing.kind != set.kind => return None,
            Some(_) => {}
        }
    }
    for (name, chain) in &new.chains {
        match old.chains.get(name) {
            None => ops.push(Op::AddChain(name.clone(), chain.base)),
            Some(existing) if existing.base != chain.base => return None,
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
    (!ops.is_empty()).then_some(ops)
}

/// How many chains a transaction creates, rewrites or deletes.
pub fn chains_touched(ops: &[Op]) -> usize {
    let mut chains = BTreeSet::new();
    for op in ops {
        match op {
            Op::AddChain(name, _) | Op::FlushChain(name) | Op::DeleteChain(name) | Op::AddRule(name, _) => {
                chains.insert(name.as_str());
            }
            _ => {}
        }
    }
    chains.len()
}
