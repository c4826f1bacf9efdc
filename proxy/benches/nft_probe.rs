//! Where the nftables mode's one-service change spends its time (issue 6): at N services × 2
//! endpoints (`KPROXY_PROBE_SIZE`, default 10 000), for each shard count of
//! `KPROXY_PROBE_SHARDS` (default `1,16`), each case is a cycle of transactions repeated
//! `KPROXY_PROBE_REPS` times (default 15) against tables loaded once into a fresh network
//! namespace; prints the median, the spread and each step's median in milliseconds.
//! `KPROXY_PROBE_ONLY=change,goto` picks cases (change, fresh-socket, noop, drop, goto,
//! userspace, proxier, unreachable). Needs root:
//! `cargo bench -p proxy --bench nft_probe`.
//!
//! Cases: the sync's own transaction (one service's endpoints replaced, and back); the same
//! with a new netlink socket per transaction (closing one waits for the kernel's deferred
//! destruction of what the transaction deleted); an empty transaction; adding and deleting a
//! map element whose verdict is `drop` (no jump: no validation) or `goto` an existing service
//! chain (the kernel re-validates the table's jump graph); the proxier's userspace share
//! (diffing the rulesets, freeing the replaced one) and a whole `NftProxier::sync`; and, with
//! one shard, the change with every other service unreachable from the map (the graph
//! validation has to walk shrinks to one service).

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Instant;

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use proxy::model::Config;
use proxy::nft::compute::{SERVICE_IPS, compute_sharded, shard_of};
use proxy::nft::diff::{diff, full};
use proxy::nft::netlink::NetlinkBackend;
use proxy::nft::table::{Key, Op, Proto, Ruleset, Transaction, Verdict, shard_table};

struct Netns(String);

impl Netns {
    fn create(tag: &str) -> Netns {
        let name = format!("kproxy-probe-{tag}-{}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        let ok = Command::new("ip").args(["netns", "add", &name]).status();
        assert!(ok.is_ok_and(|s| s.success()), "ip netns add {name} (needs root)");
        Netns(name)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.0])
            .stderr(Stdio::null())
            .output();
    }
}

fn cluster(n: usize, changed: bool) -> (Vec<Service>, Vec<EndpointSlice>) {
    let meta = |name: String, labels: Option<BTreeMap<String, String>>| ObjectMeta {
        namespace: Some("bench".into()),
        name: Some(name),
        labels,
        ..Default::default()
    };
    let services = (0..n)
        .map(|i| Service {
            metadata: meta(format!("svc-{i}"), None),
            spec: Some(ServiceSpec {
                cluster_ip: Some(format!("10.{}.{}.{}", 96 + i / 65536, (i / 256) % 256, i % 256)),
                ports: Some(vec![ServicePort {
                    name: Some("http".into()),
                    port: 80,
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            status: None,
        })
        .collect();
    let slices = (0..n)
        .map(|i| {
            let base = if changed && i == 0 { 100 } else { 0 };
            let ip = |k: usize| {
                let j = 2 * i + k;
                format!("10.{}.{}.{}", 128 + j / 65536, (j / 256) % 256, (j + base) % 256)
            };
            EndpointSlice {
                metadata: meta(
                    format!("svc-{i}-x"),
                    Some(BTreeMap::from([(
                        "kubernetes.io/service-name".into(),
                        format!("svc-{i}"),
                    )])),
                ),
                address_type: "IPv4".into(),
                endpoints: Some(
                    (0..2)
                        .map(|k| Endpoint {
                            addresses: vec![ip(k)],
                            ..Default::default()
                        })
                        .collect(),
                ),
                ports: Some(vec![EndpointPort {
                    name: Some("http".into()),
                    port: Some(8080),
                    ..Default::default()
                }]),
            }
        })
        .collect();
    (services, slices)
}

fn median(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(|a, b| a.total_cmp(b));
    (v[0], v[v.len() / 2], v[v.len() - 1])
}

/// Loads `ruleset`, then applies each transaction of `cycle` in turn, `reps` times, timing each
/// (with a new socket for each transaction when `fresh_socket`).
fn run_case(name: &str, ruleset: &Ruleset, cycle: &[Transaction], reps: usize, fresh_socket: bool) {
    let netns = Netns::create("case");
    let backend = NetlinkBackend::in_netns(&netns.0);
    backend.apply_blocking(&full(ruleset, &[], &[])).expect("load");
    let mut samples = vec![Vec::new(); cycle.len()];
    for _ in 0..reps {
        for (i, transaction) in cycle.iter().enumerate() {
            let fresh = fresh_socket.then(|| NetlinkBackend::in_netns(&netns.0));
            let start = Instant::now();
            fresh
                .as_ref()
                .unwrap_or(&backend)
                .apply_blocking(transaction)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            drop(fresh);
            samples[i].push(start.elapsed().as_secs_f64() * 1000.0);
        }
    }
    let all: Vec<f64> = samples.iter().flatten().copied().collect();
    let (min, med, max) = median(all);
    let steps: Vec<String> = samples.into_iter().map(|s| format!("{:.1}", median(s).1)).collect();
    println!(
        "{name:<62} median {med:>7.1}  min {min:>7.1}  max {max:>7.1}  per step {}",
        steps.join(" / ")
    );
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

fn main() {
    let n: usize = env_or("KPROXY_PROBE_SIZE", 10_000);
    let reps: usize = env_or("KPROXY_PROBE_REPS", 15);
    let shard_counts: Vec<usize> = std::env::var("KPROXY_PROBE_SHARDS")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 16]);
    let only = std::env::var("KPROXY_PROBE_ONLY").ok();
    let wanted = |case: &str| only.as_deref().is_none_or(|o| o.split(',').any(|c| c == case));
    let config = Config {
        node_name: "node-a".into(),
        cluster_cidr: Some("10.128.0.0/9".into()),
    };
    let (services, slices) = cluster(n, false);
    let (_, changed_slices) = cluster(n, true);
    for shards in shard_counts {
        let ruleset = compute_sharded(&services, &slices, &config, shards);
        let changed = compute_sharded(&services, &changed_slices, &config, shards);
        let forth = diff(&ruleset, &changed).expect("a change");
        let back = diff(&changed, &ruleset).expect("a change");
        // The shard of the changed service `bench/svc-0`, where the element cases work too.
        let shard = shard_table(shard_of("bench", "svc-0", shards));
        println!(
            "{n} services, {shards} shard(s), {} objects, {reps} reps",
            ruleset.object_count()
        );
        if wanted("change") {
            let cycle = [forth.clone(), back.clone()];
            run_case(
                "one service changed (the sync's transaction)",
                &ruleset,
                &cycle,
                reps,
                false,
            );
        }
        if wanted("fresh-socket") {
            let cycle = [forth.clone(), back.clone()];
            run_case(
                "one service changed, a new socket each time",
                &ruleset,
                &cycle,
                reps,
                true,
            );
        }
        if wanted("noop") {
            let cycle = [Transaction::on(&shard, vec![Op::AddTable])];
            run_case("empty transaction (add table)", &ruleset, &cycle, reps, false);
        }
        let probe_key = Key::Service(std::net::Ipv4Addr::new(192, 0, 2, 1), Proto::Tcp, 1);
        let element_cycle = |verdict: Verdict| {
            [
                Transaction::on(
                    &shard,
                    vec![Op::AddElement(SERVICE_IPS.into(), probe_key.clone(), Some(verdict))],
                ),
                Transaction::on(&shard, vec![Op::DeleteElement(SERVICE_IPS.into(), probe_key.clone())]),
            ]
        };
        if wanted("drop") {
            let cycle = element_cycle(Verdict::Drop);
            run_case(
                "map element with a drop verdict (no validation)",
                &ruleset,
                &cycle,
                reps,
                false,
            );
        }
        if wanted("goto") {
            let target = ruleset
                .tables
                .get(&shard)
                .and_then(|t| t.sets.get(SERVICE_IPS))
                .and_then(|s| s.elements.values().next().cloned().flatten())
                .expect("a service chain");
            let cycle = element_cycle(target);
            run_case(
                "map element with a goto verdict (validates the table)",
                &ruleset,
                &cycle,
                reps,
                false,
            );
        }
        if wanted("userspace") {
            // The proxier's own share: diffing the rulesets, dropping the replaced one.
            let mut diffs = Vec::new();
            let mut drops = Vec::new();
            for _ in 0..reps {
                for (from, to) in [(&ruleset, &changed), (&changed, &ruleset)] {
                    let start = Instant::now();
                    let transaction = diff(from, to);
                    diffs.push(start.elapsed().as_secs_f64() * 1000.0);
                    drop(transaction);
                }
            }
            for _ in 0..reps {
                let copy = ruleset.clone();
                let start = Instant::now();
                drop(copy);
                drops.push(start.elapsed().as_secs_f64() * 1000.0);
            }
            let (d, f) = (median(diffs).1, median(drops).1);
            println!(
                "{:<62} diff {d:>7.1}  drop of the old ruleset {f:>7.1}",
                "userspace, medians"
            );
        }
        if wanted("proxier") {
            let netns = Netns::create("proxier");
            let mut proxier =
                proxy::nft::NftProxier::new(NetlinkBackend::in_netns(&netns.0), std::time::Duration::from_secs(3600));
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(proxier.sync(ruleset.clone())).expect("load");
            let mut samples = Vec::new();
            for _ in 0..reps {
                for to in [&changed, &ruleset] {
                    let to = to.clone();
                    let start = Instant::now();
                    runtime.block_on(proxier.sync(to)).expect("sync");
                    samples.push(start.elapsed().as_secs_f64() * 1000.0);
                }
            }
            let (min, med, max) = median(samples);
            println!(
                "{:<62} median {med:>7.1}  min {min:>7.1}  max {max:>7.1}",
                "NftProxier::sync of the change (diff, apply, bookkeeping)"
            );
        }
        if wanted("unreachable") && shards == 1 {
            // The same chains, but only the changed service is reachable from the map.
            let strip = |r: &Ruleset| {
                let mut r = r.clone();
                r.digests.clear();
                if let Some(map) = r
                    .tables
                    .get_mut(&shard)
                    .map(std::sync::Arc::make_mut)
                    .and_then(|t| t.sets.get_mut(SERVICE_IPS))
                {
                    let key = Key::Service(std::net::Ipv4Addr::new(10, 96, 0, 0), Proto::Tcp, 80);
                    map.elements.retain(|k, _| *k == key);
                }
                r
            };
            let (a, b) = (strip(&ruleset), strip(&changed));
            let cycle = [diff(&a, &b).expect("change"), diff(&b, &a).expect("change")];
            run_case(
                "one service changed, other services unreachable",
                &a,
                &cycle,
                reps,
                false,
            );
        }
    }
}
