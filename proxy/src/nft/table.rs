//! The nftables objects kube-proxy writes, as data: a [`Ruleset`] of tables (the main table
//! `kube-proxy` and its shards `kube-proxy-N`), each of chains (each rule a list of [`Stmt`]s),
//! sets and verdict maps, and the [`Transaction`]s of [`Op`]s that change them. Each piece
//! renders as `nft` syntax ([`Op::to_nft`]), the form of the snapshot tests and of `nft -f`;
//! [`super::netlink`] encodes the same pieces as netlink messages.

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;
use std::sync::Arc;

/// Our main table: `ip kube-proxy`, as upstream's nftables proxier names it. The shards are
/// `kube-proxy-0` … `kube-proxy-{SHARDS-1}` ([`shard_table`]).
pub const TABLE: &str = "kube-proxy";
/// How many shard tables the services are spread over (see `compute.rs` for why).
pub const SHARDS: usize = 16;

/// The name of shard `index`'s table.
pub fn shard_table(index: usize) -> String {
    format!("{TABLE}-{index}")
}

/// Whether a table of family `ip` is one kube-proxy creates: the main table or any shard,
/// whatever the shard count of the version that made it.
pub fn is_our_table(name: &str) -> bool {
    name == TABLE
        || name
            .strip_prefix(TABLE)
            .and_then(|rest| rest.strip_prefix('-'))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}
/// Mark bit set on packets that must be masqueraded (upstream `--masquerade-bit` 14).
pub const MASQ_BIT: u32 = 0x4000;

/// A netfilter hook a base chain is attached to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Hook {
    Prerouting,
    Input,
    Forward,
    Output,
    Postrouting,
}

impl Hook {
    pub fn name(self) -> &'static str {
        match self {
            Hook::Prerouting => "prerouting",
            Hook::Input => "input",
            Hook::Forward => "forward",
            Hook::Output => "output",
            Hook::Postrouting => "postrouting",
        }
    }

    /// The kernel's hook number (`NF_INET_*`).
    pub fn number(self) -> u32 {
        match self {
            Hook::Prerouting => 0,
            Hook::Input => 1,
            Hook::Forward => 2,
            Hook::Output => 3,
            Hook::Postrouting => 4,
        }
    }
}

/// The type, hook and priority of a base chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct BaseChain {
    /// `true` for a `nat` chain, `false` for `filter`.
    pub nat: bool,
    pub hook: Hook,
    pub priority: i32,
}

/// A transport protocol of a service port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Proto {
    Tcp,
    Udp,
    Sctp,
}

impl Proto {
    /// From the lower-case Kubernetes protocol (`tcp`, `udp`, `sctp`).
    pub fn parse(text: &str) -> Option<Proto> {
        match text {
            "tcp" => Some(Proto::Tcp),
            "udp" => Some(Proto::Udp),
            "sctp" => Some(Proto::Sctp),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Sctp => "sctp",
        }
    }

    /// The IP protocol number.
    pub fn number(self) -> u8 {
        match self {
            Proto::Tcp => 6,
            Proto::Udp => 17,
            Proto::Sctp => 132,
        }
    }
}

/// What a rule or a map element decides.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verdict {
    Jump(String),
    Goto(String),
    Return,
    Drop,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Jump(chain) => write!(f, "jump {chain}"),
            Verdict::Goto(chain) => write!(f, "goto {chain}"),
            Verdict::Return => f.write_str("return"),
            Verdict::Drop => f.write_str("drop"),
        }
    }
}

/// Which address of the packet a statement looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Addr {
    Source,
    Destination,
}

impl Addr {
    fn word(self) -> &'static str {
        match self {
            Addr::Source => "saddr",
            Addr::Destination => "daddr",
        }
    }
}

/// One statement of a rule. Matches come first; a rule ends with at most one action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stmt {
    /// `ct state new`
    CtStateNew,
    /// `ip saddr|daddr ADDR` (`!=` when `negate`), `ADDR/PREFIX` for prefixes under 32.
    Ip {
        addr: Addr,
        net: Ipv4Addr,
        prefix: u8,
        negate: bool,
    },
    /// `ip saddr|daddr @SET`
    IpInSet {
        addr: Addr,
        set: String,
    },
    /// `meta l4proto PROTO th dport PORT`
    ProtoPort {
        proto: Proto,
        port: u16,
    },
    /// `fib saddr|daddr type local`
    FibLocal(Addr),
    /// `mark and BIT == 0`
    MarkClear(u32),
    /// `numgen random mod MODULUS == VALUE`
    Numgen {
        modulus: u32,
        value: u32,
    },
    /// `ip daddr . meta l4proto . th dport vmap @MAP`
    ServiceVmap(String),
    /// `meta l4proto . th dport vmap @MAP`
    PortVmap(String),
    /// `update @SET { ip saddr }`
    UpdateSaddr(String),
    /// `mark set mark or BIT`
    MarkOr(u32),
    /// `mark set mark xor BIT`
    MarkXor(u32),
    /// `meta l4proto PROTO dnat to IP:PORT`
    Dnat {
        proto: Proto,
        ip: Ipv4Addr,
        port: u16,
    },
    /// `masquerade fully-random`
    Masquerade,
    /// `reject` (ICMP port unreachable)
    Reject,
    Verdict(Verdict),
}

impl fmt::Display for Stmt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stmt::CtStateNew => f.write_str("ct state new"),
            Stmt::Ip {
                addr,
                net,
                prefix,
                negate,
            } => {
                let op = if *negate { "!= " } else { "" };
                write!(f, "ip {} {op}{net}", addr.word())?;
                if *prefix < 32 {
                    write!(f, "/{prefix}")?;
                }
                Ok(())
            }
            Stmt::IpInSet { addr, set } => write!(f, "ip {} @{set}", addr.word()),
            Stmt::ProtoPort { proto, port } => write!(f, "meta l4proto {} th dport {port}", proto.name()),
            Stmt::FibLocal(addr) => write!(f, "fib {} type local", addr.word()),
            Stmt::MarkClear(bit) => write!(f, "mark and {bit:#x} == 0"),
            Stmt::Numgen { modulus, value } => write!(f, "numgen random mod {modulus} == {value}"),
            Stmt::ServiceVmap(map) => write!(f, "ip daddr . meta l4proto . th dport vmap @{map}"),
            Stmt::PortVmap(map) => write!(f, "meta l4proto . th dport vmap @{map}"),
            Stmt::UpdateSaddr(set) => write!(f, "update @{set} {{ ip saddr }}"),
            Stmt::MarkOr(bit) => write!(f, "mark set mark or {bit:#x}"),
            Stmt::MarkXor(bit) => write!(f, "mark set mark xor {bit:#x}"),
            Stmt::Dnat { proto, ip, port } => write!(f, "meta l4proto {} dnat to {ip}:{port}", proto.name()),
            Stmt::Masquerade => f.write_str("masquerade fully-random"),
            Stmt::Reject => f.write_str("reject"),
            Stmt::Verdict(verdict) => write!(f, "{verdict}"),
        }
    }
}

/// A rule: statements evaluated in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule(pub Vec<Stmt>);

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, stmt) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{stmt}")?;
        }
        Ok(())
    }
}

/// A chain: a base chain when `base` is set, else a regular one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Chain {
    pub base: Option<BaseChain>,
    pub rules: Vec<Rule>,
}

/// The kinds of sets and maps kube-proxy keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetKind {
    /// `ipv4_addr . inet_proto . inet_service : verdict`
    ServiceMap,
    /// `inet_proto . inet_service : verdict`
    PortMap,
    /// `ipv4_addr`
    Addresses,
    /// `ipv4_addr`, `flags dynamic,timeout`, filled by the data path (session affinity).
    Affinity { timeout_seconds: u32 },
}

impl SetKind {
    fn declaration(self) -> String {
        match self {
            SetKind::ServiceMap => "map { type ipv4_addr . inet_proto . inet_service : verdict ; }".into(),
            SetKind::PortMap => "map { type inet_proto . inet_service : verdict ; }".into(),
            SetKind::Addresses => "set { type ipv4_addr ; }".into(),
            SetKind::Affinity { timeout_seconds } => {
                format!("set {{ type ipv4_addr ; flags dynamic,timeout ; timeout {timeout_seconds}s ; }}")
            }
        }
    }
}

/// The key of a set or map element.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Key {
    /// `IP . PROTO . PORT`
    Service(Ipv4Addr, Proto, u16),
    /// `PROTO . PORT`
    Port(Proto, u16),
    /// `IP`
    Ip(Ipv4Addr),
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Service(ip, proto, port) => write!(f, "{ip} . {} . {port}", proto.name()),
            Key::Port(proto, port) => write!(f, "{} . {port}", proto.name()),
            Key::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// A set or map with the elements we put in it (none for affinity sets).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Set {
    pub kind: SetKind,
    pub elements: BTreeMap<Key, Option<Verdict>>,
}

/// The desired content of one table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Table {
    pub chains: BTreeMap<String, Chain>,
    pub sets: BTreeMap<String, Set>,
}

impl Table {
    /// Number of rules plus set elements: the size of the table.
    pub fn object_count(&self) -> usize {
        self.chains.values().map(|c| c.rules.len()).sum::<usize>()
            + self.sets.values().map(|s| s.elements.len()).sum::<usize>()
    }
}

/// Every table kube-proxy wants, by name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ruleset {
    /// Shared: a compute whose inputs for a table did not change reuses the previous table
    /// ([`super::compute::compute_reusing`]); edit one with `Arc::make_mut`.
    pub tables: BTreeMap<String, Arc<Table>>,
    /// For tables computed from the cluster state, a digest of everything the table was
    /// computed from: two tables with the same digest are equal, so a diff skips them without
    /// comparing their content (comparing 90 000 objects cost ~30 ms at 10 000 services).
    /// Whoever edits a computed table must remove its digest.
    pub digests: BTreeMap<String, u64>,
}

impl Ruleset {
    /// Number of rules plus set elements over all tables.
    pub fn object_count(&self) -> usize {
        self.tables.values().map(|t| t.object_count()).sum()
    }
}

/// One transaction: operations grouped by the table they act on, sent in order as one batch
/// (the kernel commits all of it or nothing).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Transaction {
    pub parts: Vec<(String, Vec<Op>)>,
}

impl Transaction {
    /// A transaction on one table.
    pub fn on(table: &str, ops: Vec<Op>) -> Transaction {
        Transaction {
            parts: vec![(table.to_string(), ops)],
        }
    }

    pub fn is_empty(&self) -> bool {
        self.parts.iter().all(|(_, ops)| ops.is_empty())
    }

    /// The transaction as `nft -f` input, one operation a line.
    pub fn to_nft_script(&self) -> String {
        let mut out = String::new();
        for (table, ops) in &self.parts {
            for op in ops {
                out.push_str(&op.to_nft(table));
                out.push('\n');
            }
        }
        out
    }
}

/// One step of a transaction on a table (named by the [`Transaction`] part it is in).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Creates the table if it does not exist.
    AddTable,
    DeleteTable,
    AddChain(String, Option<BaseChain>),
    FlushChain(String),
    /// Deletes a chain with its rules; nothing may refer to it any more.
    DeleteChain(String),
    AddRule(String, Rule),
    AddSet(String, SetKind),
    DeleteSet(String),
    AddElement(String, Key, Option<Verdict>),
    /// An element of a set with timeouts (session affinity), expiring after its own timeout
    /// in milliseconds: what a full sync puts back of the data path's entries.
    AddTimedElement(String, Key, u64),
    DeleteElement(String, Key),
}

impl Op {
    /// The operation on `table` as one line of `nft -f` input.
    pub fn to_nft(&self, table: &str) -> String {
        let t = format!("ip {table}");
        match self {
            Op::AddTable => format!("add table {t}"),
            Op::DeleteTable => format!("delete table {t}"),
            Op::AddChain(name, None) => format!("add chain {t} {name}"),
            Op::AddChain(name, Some(base)) => format!(
                "add chain {t} {name} {{ type {} hook {} priority {} ; }}",
                if base.nat { "nat" } else { "filter" },
                base.hook.name(),
                base.priority
            ),
            Op::FlushChain(name) => format!("flush chain {t} {name}"),
            Op::DeleteChain(name) => format!("delete chain {t} {name}"),
            Op::AddRule(chain, rule) => format!("add rule {t} {chain} {rule}"),
            Op::AddSet(name, kind) => {
                let declaration = kind.declaration();
                let (word, body) = declaration.split_once(' ').unwrap_or(("set", ""));
                format!("add {word} {t} {name} {body}")
            }
            Op::DeleteSet(name) => format!("delete set {t} {name}"),
            Op::AddElement(set, key, None) => format!("add element {t} {set} {{ {key} }}"),
            Op::AddElement(set, key, Some(verdict)) => format!("add element {t} {set} {{ {key} : {verdict} }}"),
            Op::AddTimedElement(set, key, ms) => format!("add element {t} {set} {{ {key} timeout {ms}ms }}"),
            Op::DeleteElement(set, key) => format!("delete element {t} {set} {{ {key} }}"),
        }
    }
}

/// The ruleset as `nft -f` input: the snapshot form of tests.
pub fn render(ruleset: &Ruleset) -> String {
    super::diff::create(ruleset).to_nft_script()
}
