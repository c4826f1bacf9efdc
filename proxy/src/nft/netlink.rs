//! Applies transactions over netlink (`NETLINK_NETFILTER`), as one nfnetlink batch — the
//! kernel commits it atomically, like `nft -f`.
//!
//! Why netlink and not `nft -f -`: nft 1.0.6 (Debian 12) fills its cache with every chain of
//! the table before it adds a rule or a map element, and the kernel's chain dump restarts its
//! walk for each reply buffer; at 10 000 services (30 000 chains) adding one map element costs
//! 250–400 ms that way, against a few milliseconds of kernel work. Sending the messages
//! ourselves lets the kernel resolve chain and set names itself, with no dump. No well-kept
//! Rust crate covers the expressions we need (`nftnl` binds the C libnftnl and lacks numgen,
//! dynset, fib and reject; `rustables` is GPL-3.0), and the subset is small: this module
//! encodes exactly the statements of [`Stmt`], checked against `nft`'s own rendering by the
//! integration tests (`nft list table` of a table we wrote equals one `nft -f` wrote).

use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use nix::sys::socket::{
    AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, bind, recv, send, setsockopt, socket,
    sockopt,
};
use nix::sys::time::TimeVal;

use super::NftError;
use super::table::{Addr, Key, Op, Proto, SetKind, Stmt, Transaction, Verdict, is_our_table};

pub(super) const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
pub(super) const NLMSG_ERROR: u16 = 2;
pub(super) const NLMSG_DONE: u16 = 3;
pub(super) const NLM_F_REQUEST: u16 = 0x1;
pub(super) const NLM_F_DUMP: u16 = 0x300;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_APPEND: u16 = 0x800;
const NLA_F_NESTED: u16 = 0x8000;
pub(super) const NFPROTO_IPV4: u8 = 2;

const MSG_NEWTABLE: u16 = 0;
const MSG_GETTABLE: u16 = 1;
const MSG_DELTABLE: u16 = 2;
const MSG_NEWCHAIN: u16 = 3;
const MSG_DELCHAIN: u16 = 5;
const MSG_NEWRULE: u16 = 6;
const MSG_DELRULE: u16 = 8;
const MSG_NEWSET: u16 = 9;
const MSG_DELSET: u16 = 11;
const MSG_NEWSETELEM: u16 = 12;
const MSG_DELSETELEM: u16 = 14;

/// Registers: the verdict register, the first 16-byte register and 32-bit registers.
const REG_VERDICT: u32 = 0;
const REG_1: u32 = 1;
const REG_2: u32 = 2;
const REG32_01: u32 = 9;
const REG32_02: u32 = 10;

const NF_DROP: u32 = 0;
const NFT_JUMP: i32 = -3;
const NFT_GOTO: i32 = -4;
const NFT_RETURN: i32 = -5;
const NFT_DATA_VERDICT: u32 = 0xffff_ff00;
/// nft's datatype ids, combined 6 bits per field for concatenations.
const TYPE_IPADDR: u32 = 7;
const TYPE_INET_PROTOCOL: u32 = 12;
const TYPE_INET_SERVICE: u32 = 13;
/// Element lists are one attribute, whose length is a u16: chunk them well below it.
const MAX_ELEMENTS_BYTES: usize = 48 * 1024;

/// Netlink attributes being written into a message buffer.
struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    fn attr(&mut self, kind: u16, data: &[u8]) {
        let len = u16::try_from(4 + data.len()).unwrap_or(u16::MAX);
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
    }

    fn string(&mut self, kind: u16, text: &str) {
        let mut data = text.as_bytes().to_vec();
        data.push(0);
        self.attr(kind, &data);
    }

    fn be32(&mut self, kind: u16, value: u32) {
        self.attr(kind, &value.to_be_bytes());
    }

    fn nest(&mut self, kind: u16, body: impl FnOnce(&mut Writer)) {
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0; 4]);
        body(self);
        let len = u16::try_from(self.buf.len() - start).unwrap_or(u16::MAX);
        self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
        self.buf[start + 2..start + 4].copy_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
    }

    /// `NFTA_DATA_VALUE` inside attribute `kind`.
    fn value(&mut self, kind: u16, bytes: &[u8]) {
        self.nest(kind, |w| w.attr(1, bytes));
    }

    /// One expression of a rule: `NFTA_LIST_ELEM { NAME, DATA { body } }`.
    fn expr(&mut self, name: &str, body: impl FnOnce(&mut Writer)) {
        self.nest(1, |w| {
            w.string(1, name);
            w.nest(2, body);
        });
    }

    fn payload(&mut self, base: u32, offset: u32, len: u32, dreg: u32) {
        self.expr("payload", |w| {
            w.be32(1, dreg);
            w.be32(2, base);
            w.be32(3, offset);
            w.be32(4, len);
        });
    }

    fn ip_field(&mut self, addr: Addr, dreg: u32) {
        let offset = if addr == Addr::Source { 12 } else { 16 };
        self.payload(1, offset, 4, dreg);
    }

    fn dport(&mut self, dreg: u32) {
        self.payload(2, 2, 2, dreg);
    }

    fn meta_load(&mut self, key: u32, dreg: u32) {
        self.expr("meta", |w| {
            w.be32(1, dreg);
            w.be32(2, key);
        });
    }

    fn l4proto(&mut self, dreg: u32) {
        self.meta_load(16, dreg);
    }

    fn cmp(&mut self, neq: bool, data: &[u8]) {
        self.expr("cmp", |w| {
            w.be32(1, REG_1);
            w.be32(2, u32::from(neq));
            w.value(3, data);
        });
    }

    fn bitwise(&mut self, mask: &[u8], xor: &[u8]) {
        self.expr("bitwise", |w| {
            w.be32(1, REG_1);
            w.be32(2, REG_1);
            w.be32(3, u32::try_from(mask.len()).unwrap_or(4));
            w.value(4, mask);
            w.value(5, xor);
        });
    }

    fn lookup(&mut self, set: &str, dreg: Option<u32>) {
        self.expr("lookup", |w| {
            w.string(1, set);
            w.be32(2, REG_1);
            if let Some(dreg) = dreg {
                w.be32(3, dreg);
            }
        });
    }

    fn fib_local(&mut self, addr: Addr) {
        self.expr("fib", |w| {
            w.be32(1, REG_1);
            w.be32(2, 3); // NFT_FIB_RESULT_ADDRTYPE
            w.be32(3, if addr == Addr::Source { 1 } else { 2 });
        });
        self.cmp(false, &2u32.to_ne_bytes()); // RTN_LOCAL
    }

    fn mark_set(&mut self, mask: u32, xor: u32) {
        self.meta_load(3, REG_1);
        self.bitwise(&mask.to_ne_bytes(), &xor.to_ne_bytes());
        self.expr("meta", |w| {
            w.be32(2, 3);
            w.be32(3, REG_1);
        });
    }

    fn verdict_data(&mut self, kind: u16, verdict: &Verdict) {
        let (code, chain) = match verdict {
            Verdict::Jump(chain) => (NFT_JUMP as u32, Some(chain)),
            Verdict::Goto(chain) => (NFT_GOTO as u32, Some(chain)),
            Verdict::Return => (NFT_RETURN as u32, None),
            Verdict::Drop => (NF_DROP, None),
        };
        self.nest(kind, |w| {
            w.nest(2, |w| {
                w.be32(1, code);
                if let Some(chain) = chain {
                    w.string(2, chain);
                }
            });
        });
    }

    fn stmt(&mut self, stmt: &Stmt) {
        match stmt {
            Stmt::CtStateNew => {
                self.expr("ct", |w| {
                    w.be32(1, REG_1);
                    w.be32(2, 0); // NFT_CT_STATE
                });
                self.bitwise(&8u32.to_ne_bytes(), &0u32.to_ne_bytes());
                self.cmp(true, &0u32.to_ne_bytes());
            }
            Stmt::Ip {
                addr,
                net,
                prefix,
                negate,
            } => {
                self.ip_field(*addr, REG_1);
                if *prefix < 32 {
                    let mask = if *prefix == 0 { 0 } else { u32::MAX << (32 - prefix) };
                    self.bitwise(&mask.to_be_bytes(), &[0; 4]);
                }
                self.cmp(*negate, &net.octets());
            }
            Stmt::IpInSet { addr, set } => {
                self.ip_field(*addr, REG_1);
                self.lookup(set, None);
            }
            Stmt::ProtoPort { proto, port } => {
                self.l4proto(REG_1);
                self.cmp(false, &[proto.number()]);
                self.dport(REG_1);
                self.cmp(false, &port.to_be_bytes());
            }
            Stmt::FibLocal(addr) => self.fib_local(*addr),
            Stmt::MarkClear(bit) => {
                self.meta_load(3, REG_1);
                self.bitwise(&bit.to_ne_bytes(), &0u32.to_ne_bytes());
                self.cmp(false, &0u32.to_ne_bytes());
            }
            Stmt::Numgen { modulus, value } => {
                self.expr("numgen", |w| {
                    w.be32(1, REG_1);
                    w.be32(2, *modulus);
                    w.be32(3, 1); // NFT_NG_RANDOM
                });
                self.cmp(false, &value.to_ne_bytes());
            }
            Stmt::ServiceVmap(map) => {
                self.ip_field(Addr::Destination, REG_1);
                self.l4proto(REG32_01);
                self.dport(REG32_02);
                self.lookup(map, Some(REG_VERDICT));
            }
            Stmt::PortVmap(map) => {
                self.l4proto(REG_1);
                self.dport(REG32_01);
                self.lookup(map, Some(REG_VERDICT));
            }
            Stmt::UpdateSaddr(set) => {
                self.ip_field(Addr::Source, REG_1);
                self.expr("dynset", |w| {
                    w.string(1, set);
                    w.be32(3, 1); // NFT_DYNSET_OP_UPDATE
                    w.be32(4, REG_1);
                });
            }
            Stmt::MarkOr(bit) => self.mark_set(!bit, *bit),
            Stmt::MarkXor(bit) => self.mark_set(u32::MAX, *bit),
            Stmt::Dnat { proto, ip, port } => {
                self.l4proto(REG_1);
                self.cmp(false, &[proto.number()]);
                for (reg, bytes) in [(REG_1, ip.octets().to_vec()), (REG_2, port.to_be_bytes().to_vec())] {
                    self.expr("immediate", |w| {
                        w.be32(1, reg);
                        w.value(2, &bytes);
                    });
                }
                self.expr("nat", |w| {
                    w.be32(1, 1); // NFT_NAT_DNAT
                    w.be32(2, u32::from(NFPROTO_IPV4));
                    w.be32(3, REG_1);
                    w.be32(5, REG_2);
                    w.be32(7, 0x2); // NF_NAT_RANGE_PROTO_SPECIFIED
                });
            }
            Stmt::Masquerade => self.expr("masq", |w| w.be32(1, 0x10)), // PROTO_RANDOM_FULLY
            Stmt::Reject => self.expr("reject", |w| {
                w.be32(1, 0); // NFT_REJECT_ICMP_UNREACH
                w.attr(2, &[3]); // ICMP_PORT_UNREACH
            }),
            Stmt::Verdict(verdict) => self.expr("immediate", |w| {
                w.be32(1, REG_VERDICT);
                w.verdict_data(2, verdict);
            }),
        }
    }
}

fn key_bytes(key: &Key) -> Vec<u8> {
    let proto_port = |proto: &Proto, port: &u16| {
        let mut out = vec![proto.number(), 0, 0, 0];
        out.extend_from_slice(&port.to_be_bytes());
        out.extend_from_slice(&[0, 0]);
        out
    };
    match key {
        Key::Service(ip, proto, port) => {
            let mut out = ip.octets().to_vec();
            out.extend(proto_port(proto, port));
            out
        }
        Key::Port(proto, port) => proto_port(proto, port),
        Key::Ip(ip) => ip.octets().to_vec(),
    }
}

/// Where a message of a batch came from: the part of the transaction and the operation in it.
type Origin = Option<(usize, usize)>;

/// A batch of netlink messages, remembering which operation each message came from.
struct Batch {
    buf: Vec<u8>,
    origin: Vec<Origin>,
}

impl Batch {
    fn new() -> Batch {
        let mut batch = Batch {
            buf: Vec::new(),
            origin: Vec::new(),
        };
        batch.message(NFNL_MSG_BATCH_BEGIN, 0, 0, None, |_| {});
        batch
    }

    /// Appends one message; its sequence number is its index in the batch.
    fn message(&mut self, kind: u16, flags: u16, family: u8, origin: Origin, body: impl FnOnce(&mut Writer)) {
        let seq = u32::try_from(self.origin.len()).unwrap_or(u32::MAX);
        self.origin.push(origin);
        let batch_marker = matches!(kind, NFNL_MSG_BATCH_BEGIN | NFNL_MSG_BATCH_END);
        let kind = if batch_marker {
            kind
        } else {
            (NFNL_SUBSYS_NFTABLES << 8) | kind
        };
        let mut w = Writer { buf: Vec::new() };
        w.buf.extend_from_slice(&[0; 4]);
        w.buf.extend_from_slice(&kind.to_ne_bytes());
        w.buf.extend_from_slice(&(NLM_F_REQUEST | flags).to_ne_bytes());
        w.buf.extend_from_slice(&seq.to_ne_bytes());
        w.buf.extend_from_slice(&0u32.to_ne_bytes());
        let res_id = if batch_marker { NFNL_SUBSYS_NFTABLES } else { 0 };
        w.buf.extend_from_slice(&[family, 0]);
        w.buf.extend_from_slice(&res_id.to_be_bytes());
        body(&mut w);
        let len = u32::try_from(w.buf.len()).unwrap_or(u32::MAX);
        w.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&w.buf);
    }

    /// Element operations on one set; an element's timeout (milliseconds) is its own
    /// (`NFTA_SET_ELEM_TIMEOUT`) instead of the set's.
    fn elements(&mut self, kind: u16, origin: Origin, table: &str, set: &str, elements: &[Element<'_>]) {
        let flags = if kind == MSG_NEWSETELEM { NLM_F_CREATE } else { 0 };
        self.message(kind, flags, NFPROTO_IPV4, origin, |w| {
            w.string(1, table);
            w.string(2, set);
            w.nest(3, |w| {
                for (key, verdict, timeout) in elements {
                    w.nest(1, |w| {
                        w.value(1, &key_bytes(key));
                        if let Some(verdict) = verdict {
                            w.verdict_data(2, verdict);
                        }
                        if let Some(timeout) = timeout {
                            w.attr(4, &timeout.to_be_bytes());
                        }
                    });
                }
            });
        });
    }
}

fn set_message(w: &mut Writer, table: &str, name: &str, kind: SetKind, id: u32) {
    w.string(1, table);
    w.string(2, name);
    let (flags, key_type, key_len) = match kind {
        SetKind::ServiceMap => (
            0x8,
            (TYPE_IPADDR << 12) | (TYPE_INET_PROTOCOL << 6) | TYPE_INET_SERVICE,
            12,
        ),
        SetKind::PortMap => (0x8, (TYPE_INET_PROTOCOL << 6) | TYPE_INET_SERVICE, 8),
        SetKind::Addresses => (0, TYPE_IPADDR, 4),
        SetKind::Affinity { .. } => (0x10 | 0x20, TYPE_IPADDR, 4),
    };
    w.be32(3, flags);
    w.be32(4, key_type);
    w.be32(5, key_len);
    if flags & 0x8 != 0 {
        w.be32(6, NFT_DATA_VERDICT);
    }
    w.be32(10, id); // NFTA_SET_ID: required, unique within the transaction
    if let SetKind::Affinity { timeout_seconds } = kind {
        w.attr(11, &(u64::from(timeout_seconds) * 1000).to_be_bytes());
    }
}

/// One element in a message: its key, its verdict (maps) and its own timeout in ms.
type Element<'a> = (&'a Key, Option<&'a Verdict>, Option<u64>);

/// Encodes `transaction` as one batch.
fn encode(transaction: &Transaction) -> Batch {
    let mut batch = Batch::new();
    let mut set_id = 0;
    for (part, (table, ops)) in transaction.parts.iter().enumerate() {
        encode_part(&mut batch, part, table, ops, &mut set_id);
    }
    batch.message(NFNL_MSG_BATCH_END, 0, 0, None, |_| {});
    batch
}

/// Appends the operations on `table_name`. Consecutive element operations on one set share
/// messages.
fn encode_part(batch: &mut Batch, part: usize, table_name: &str, ops: &[Op], set_id: &mut u32) {
    let mut i = 0;
    while i < ops.len() {
        let origin = Some((part, i));
        let table = |w: &mut Writer, kind: u16| w.string(kind, table_name);
        match &ops[i] {
            Op::AddTable => batch.message(MSG_NEWTABLE, NLM_F_CREATE, NFPROTO_IPV4, origin, |w| {
                table(w, 1);
                w.be32(2, 0);
            }),
            Op::DeleteTable => batch.message(MSG_DELTABLE, 0, NFPROTO_IPV4, origin, |w| table(w, 1)),
            Op::AddChain(name, base) => batch.message(MSG_NEWCHAIN, NLM_F_CREATE, NFPROTO_IPV4, origin, |w| {
                table(w, 1);
                w.string(3, name);
                if let Some(base) = base {
                    w.nest(4, |w| {
                        w.be32(1, base.hook.number());
                        w.be32(2, base.priority as u32);
                    });
                    w.be32(5, 1); // policy accept
                    w.string(7, if base.nat { "nat" } else { "filter" });
                }
            }),
            Op::FlushChain(name) => batch.message(MSG_DELRULE, 0, NFPROTO_IPV4, origin, |w| {
                table(w, 1);
                w.string(2, name);
            }),
            Op::DeleteChain(name) => batch.message(MSG_DELCHAIN, 0, NFPROTO_IPV4, origin, |w| {
                table(w, 1);
                w.string(3, name);
            }),
            Op::AddRule(chain, rule) => {
                batch.message(MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, NFPROTO_IPV4, origin, |w| {
                    table(w, 1);
                    w.string(2, chain);
                    w.nest(4, |w| {
                        for stmt in &rule.0 {
                            w.stmt(stmt);
                        }
                    });
                })
            }
            Op::AddSet(name, kind) => {
                *set_id += 1;
                let id = *set_id;
                batch.message(MSG_NEWSET, NLM_F_CREATE, NFPROTO_IPV4, origin, |w| {
                    set_message(w, table_name, name, *kind, id)
                })
            }
            Op::DeleteSet(name) => batch.message(MSG_DELSET, 0, NFPROTO_IPV4, origin, |w| {
                table(w, 1);
                w.string(2, name);
            }),
            Op::AddElement(set, _, _) | Op::AddTimedElement(set, _, _) | Op::DeleteElement(set, _) => {
                let adding = !matches!(&ops[i], Op::DeleteElement(..));
                let mut chunk: Vec<Element<'_>> = Vec::new();
                let mut bytes = 0;
                while let Some(op) = ops.get(i) {
                    let (key, verdict, timeout) = match op {
                        Op::AddElement(s, key, verdict) if adding && s == set => (key, verdict.as_ref(), None),
                        Op::AddTimedElement(s, key, timeout) if adding && s == set => (key, None, Some(*timeout)),
                        Op::DeleteElement(s, key) if !adding && s == set => (key, None, None),
                        _ => break,
                    };
                    bytes += 48 + verdict.map_or(0, |v| v.to_string().len());
                    chunk.push((key, verdict, timeout));
                    i += 1;
                    if bytes > MAX_ELEMENTS_BYTES {
                        break;
                    }
                }
                let kind = if adding { MSG_NEWSETELEM } else { MSG_DELSETELEM };
                batch.elements(kind, origin, table_name, set, &chunk);
                continue;
            }
        }
        i += 1;
    }
}

/// Where the netlink socket is opened (this process's network namespace or a named one), and
/// the socket itself, kept open between transactions.
///
/// Keeping it open matters: closing a netfilter netlink socket makes the kernel wait for the
/// deferred destruction of everything earlier transactions removed (`nft_rcv_nl_event` flushes
/// that work, which waits for an RCU grace period), 10–17 ms per change that deleted a chain
/// or an element on the benchmark machine.
#[derive(Clone, Debug, Default)]
pub struct NetlinkBackend {
    netns: Option<PathBuf>,
    socket: Arc<Mutex<Option<OwnedFd>>>,
}

impl NetlinkBackend {
    /// Talks to the kernel in the caller's network namespace.
    pub fn new() -> Self {
        NetlinkBackend::default()
    }

    /// Talks to the kernel in the network namespace `/run/netns/NAME` (tests, benchmarks).
    pub fn in_netns(name: &str) -> Self {
        NetlinkBackend {
            netns: Some(PathBuf::from("/run/netns").join(name)),
            socket: Arc::default(),
        }
    }

    /// Opens a socket; a socket stays in the namespace it was created in, so a named
    /// namespace is entered on a short-lived thread of its own.
    fn socket(&self) -> Result<OwnedFd, NftError> {
        let open = || -> Result<OwnedFd, NftError> {
            let fd = socket(
                AddressFamily::Netlink,
                SockType::Raw,
                SockFlag::SOCK_CLOEXEC,
                SockProtocol::NetlinkNetFilter,
            )
            .map_err(|e| NftError::Socket(format!("socket: {e}")))?;
            bind(std::os::fd::AsRawFd::as_raw_fd(&fd), &NetlinkAddr::new(0, 0))
                .map_err(|e| NftError::Socket(format!("bind: {e}")))?;
            let _ = setsockopt(&fd, sockopt::ReceiveTimeout, &TimeVal::new(5, 0));
            let _ = setsockopt(&fd, sockopt::RcvBufForce, &(8 << 20));
            Ok(fd)
        };
        let Some(path) = self.netns.clone() else {
            return open();
        };
        std::thread::spawn(move || {
            let file =
                std::fs::File::open(&path).map_err(|e| NftError::Socket(format!("opening {}: {e}", path.display())))?;
            nix::sched::setns(file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(|e| NftError::Socket(format!("entering {}: {e}", path.display())))?;
            open()
        })
        .join()
        .map_err(|_| NftError::Socket("the namespace thread panicked".into()))?
    }

    /// Runs `f` on the kept socket (opening one if there is none). A socket that failed
    /// (rather than the kernel refusing an operation) is not kept.
    pub(super) fn with_socket<T>(&self, f: impl FnOnce(&OwnedFd) -> Result<T, NftError>) -> Result<T, NftError> {
        let mut socket = self
            .socket
            .lock()
            .map_err(|_| NftError::Socket("the socket lock is poisoned".into()))?;
        let fd = match socket.take() {
            Some(fd) => fd,
            None => self.socket()?,
        };
        let result = f(&fd);
        if !matches!(result, Err(NftError::Socket(_))) {
            *socket = Some(fd);
        }
        result
    }

    /// Sends `transaction` as one batch and returns the first error the kernel reported.
    pub fn apply_blocking(&self, transaction: &Transaction) -> Result<(), NftError> {
        let batch = encode(transaction);
        self.with_socket(|fd| send_batch(fd, &batch, transaction))
    }

    /// The `ip` tables of ours that exist ([`is_our_table`]), listed with a table dump.
    pub fn our_tables_blocking(&self) -> Result<Vec<String>, NftError> {
        let names = self.with_socket(list_tables)?;
        Ok(names.into_iter().filter(|name| is_our_table(name)).collect())
    }
}

/// Every `ip` table's name, by an `NFT_MSG_GETTABLE` dump on `fd`.
fn list_tables(fd: &OwnedFd) -> Result<Vec<String>, NftError> {
    let raw = std::os::fd::AsRawFd::as_raw_fd(fd);
    let mut request = Vec::with_capacity(20);
    request.extend_from_slice(&20u32.to_ne_bytes());
    request.extend_from_slice(&((NFNL_SUBSYS_NFTABLES << 8) | MSG_GETTABLE).to_ne_bytes());
    request.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    request.extend_from_slice(&u32::MAX.to_ne_bytes()); // a sequence number no batch uses
    request.extend_from_slice(&0u32.to_ne_bytes());
    request.extend_from_slice(&[NFPROTO_IPV4, 0, 0, 0]);
    send(raw, &request, MsgFlags::empty()).map_err(|e| NftError::Socket(format!("send: {e}")))?;
    let mut names = Vec::new();
    let mut reply = vec![0u8; 1 << 16];
    let mut done = false;
    while !done {
        // Blocking, bounded by the socket's receive timeout.
        let n = recv(raw, &mut reply, MsgFlags::empty())
            .map_err(|e| NftError::Socket(format!("recv (table dump): {e}")))?;
        parse_table_dump(&reply[..n], &mut names, &mut done)?;
    }
    Ok(names)
}

/// Sends one batch on `fd` and collects the kernel's answers to it.
fn send_batch(fd: &OwnedFd, batch: &Batch, transaction: &Transaction) -> Result<(), NftError> {
    let size = batch.buf.len().saturating_mul(2).clamp(1 << 20, 1 << 30);
    let _ = setsockopt(fd, sockopt::SndBufForce, &size);
    let raw = std::os::fd::AsRawFd::as_raw_fd(fd);
    send(raw, &batch.buf, MsgFlags::empty()).map_err(|e| NftError::Socket(format!("send: {e}")))?;
    // The kernel processes the batch inside send(); its errors are queued by now.
    let mut reply = vec![0u8; 1 << 16];
    let mut first: Option<NftError> = None;
    loop {
        let n = match recv(raw, &mut reply, MsgFlags::MSG_DONTWAIT) {
            Ok(n) => n,
            Err(nix::errno::Errno::EAGAIN) => break,
            Err(e) => return Err(NftError::Socket(format!("recv: {e}"))),
        };
        let mut at = 0;
        while at + 16 <= n {
            let word = |o: usize| u32::from_ne_bytes([reply[o], reply[o + 1], reply[o + 2], reply[o + 3]]);
            let len = word(at) as usize;
            let kind = u16::from_ne_bytes([reply[at + 4], reply[at + 5]]);
            if kind == NLMSG_ERROR && at + 36 <= n {
                let errno = i32::from_ne_bytes([reply[at + 16], reply[at + 17], reply[at + 18], reply[at + 19]]);
                let seq = word(at + 28) as usize;
                if errno != 0 && first.is_none() {
                    let op = batch.origin.get(seq).copied().flatten().and_then(|(part, i)| {
                        let (table, ops) = transaction.parts.get(part)?;
                        Some(ops.get(i)?.to_nft(table))
                    });
                    first = Some(NftError::Kernel {
                        errno: nix::errno::Errno::from_raw(-errno),
                        op: op.unwrap_or_else(|| "the batch".to_string()),
                    });
                }
            }
            if len == 0 {
                break;
            }
            at += len.next_multiple_of(4);
        }
    }
    first.map_or(Ok(()), Err)
}

/// Deletes every table of ours (the nftables part of `--cleanup`): the main table and all
/// shards, whatever the shard count of the version that created them. None is fine.
pub fn delete_tables_blocking(backend: &NetlinkBackend) -> Result<(), NftError> {
    let tables = backend.our_tables_blocking()?;
    if tables.is_empty() {
        return Ok(());
    }
    let transaction = Transaction {
        parts: tables.into_iter().map(|name| (name, vec![Op::DeleteTable])).collect(),
    };
    match backend.apply_blocking(&transaction) {
        // Someone deleted one in between: list again next time.
        Err(NftError::Kernel {
            errno: nix::errno::Errno::ENOENT,
            ..
        }) => Ok(()),
        other => other,
    }
}

/// The `NFTA_TABLE_NAME` of each `NFT_MSG_NEWTABLE` message in `buf`; `done` is set at
/// `NLMSG_DONE`, an error answer is returned as such.
fn parse_table_dump(buf: &[u8], names: &mut Vec<String>, done: &mut bool) -> Result<(), NftError> {
    let mut at = 0;
    while at + 16 <= buf.len() {
        let len = u32::from_ne_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]) as usize;
        let kind = u16::from_ne_bytes([buf[at + 4], buf[at + 5]]);
        if len < 16 || at + len > buf.len() {
            break;
        }
        match kind {
            NLMSG_DONE => *done = true,
            NLMSG_ERROR if len >= 20 => {
                let errno = i32::from_ne_bytes([buf[at + 16], buf[at + 17], buf[at + 18], buf[at + 19]]);
                if errno != 0 {
                    return Err(NftError::Kernel {
                        errno: nix::errno::Errno::from_raw(-errno),
                        op: "list tables".into(),
                    });
                }
            }
            _ if kind == (NFNL_SUBSYS_NFTABLES << 8) | MSG_NEWTABLE => {
                // nlmsghdr (16) + nfgenmsg (4), then the attributes.
                let mut attr = at + 20;
                while attr + 4 <= at + len {
                    let alen = usize::from(u16::from_ne_bytes([buf[attr], buf[attr + 1]]));
                    let atype = u16::from_ne_bytes([buf[attr + 2], buf[attr + 3]]) & 0x3fff;
                    if alen < 4 || attr + alen > at + len {
                        break;
                    }
                    if atype == 1 {
                        let value = &buf[attr + 4..attr + alen];
                        let value = value.split(|b| *b == 0).next().unwrap_or_default();
                        names.push(String::from_utf8_lossy(value).into_owned());
                    }
                    attr += alen.next_multiple_of(4);
                }
            }
            _ => {}
        }
        at += len.next_multiple_of(4);
    }
    Ok(())
}

#[cfg(test)]
#[path = "netlink_tests.rs"]
mod tests;
