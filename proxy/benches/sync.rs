//! Full and partial sync timings of both proxy modes against the real kernel, inside network
//! namespaces it creates: `cargo bench -p proxy --bench sync` (needs root). Prints one table in
//! milliseconds, iptables and nftables side by side. "1-svc" applies a precomputed one-service
//! change; "1-svc+comp" is the same change as kube-proxy's loop makes it (the rules computed
//! from the objects, in the nftables mode reusing the applied shards, then applied).
//! `KPROXY_BENCH_SIZES=1000,5000` picks the sizes; `KPROXY_BENCH_DEBUG=1` also prints each
//! one-service-change sample and splits it into diff rendering and the restore itself.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use proxy::iptables::{Backend, CommandBackend, RestoreMode};
use proxy::nft::NftProxier;
use proxy::nft::netlink::NetlinkBackend;
use proxy::proxier::{Proxier, SyncKind};
use proxy::rules::{Config, compute, render_full};

struct Netns(String);

impl Netns {
    fn create(tag: &str) -> Netns {
        let name = format!("kproxy-bench-{tag}-{}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .map(|s| s.success());
        assert_eq!(ok.ok(), Some(true), "ip netns add {name} (needs root)");
        Netns(name)
    }

    fn backend(&self) -> CommandBackend {
        CommandBackend::in_netns(&self.0, "iptables-restore", "iptables-save")
    }

    fn nft_backend(&self) -> NetlinkBackend {
        NetlinkBackend::in_netns(&self.0)
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
                format!(
                    "10.{}.{}.{}",
                    128 + (2 * i + k) / 65536,
                    ((2 * i + k) / 256) % 256,
                    (2 * i + k + base) % 256
                )
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

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

async fn timed<F: std::future::Future<Output = T>, T>(f: F) -> (T, Duration) {
    let start = Instant::now();
    let out = f.await;
    (out, start.elapsed())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let config = Config {
        node_name: "node-a".into(),
        cluster_cidr: Some("10.128.0.0/9".into()),
    };
    let sizes: Vec<usize> = std::env::var("KPROXY_BENCH_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.parse().ok()).collect())
        .unwrap_or_else(|| vec![1000, 5000, 10000]);
    let reps = 3;
    println!(
        "{:>7} | {:>7} {:>9} {:>11} {:>11} {:>12} {:>10} {:>10} | {:>7} {:>9} {:>11} {:>12} {:>10} {:>10}",
        "svcs",
        "ipt-rules",
        "compute",
        "bare-restore",
        "full(empty)",
        "full(resync)",
        "1-svc",
        "1-svc+comp",
        "nft-objs",
        "compute",
        "full(empty)",
        "full(resync)",
        "1-svc",
        "1-svc+comp"
    );
    for n in sizes {
        let (services, slices) = cluster(n, false);
        let start = Instant::now();
        let rules = compute(&services, &slices, &config);
        let compute_ms = ms(start.elapsed());
        let (_, changed_slices) = cluster(n, true);
        let changed = compute(&services, &changed_slices, &config);
        let text = render_full(&rules);

        let mut bare = Vec::new();
        let mut full_empty = Vec::new();
        let mut full_resync = Vec::new();
        let mut partial = Vec::new();
        let mut end_to_end = Vec::new();
        for _ in 0..reps {
            let netns = Netns::create("bare");
            let (result, elapsed) = timed(netns.backend().restore(text.clone(), RestoreMode::Flush)).await;
            result.expect("bare restore");
            bare.push(ms(elapsed));
            drop(netns);

            let netns = Netns::create("sync");
            let mut proxier = Proxier::new(netns.backend(), Duration::from_secs(3600));
            let (kind, elapsed) = timed(proxier.sync(rules.clone())).await;
            assert_eq!(kind.ok(), Some(SyncKind::Full));
            full_empty.push(ms(elapsed));
            proxier.request_full_sync();
            let (kind, elapsed) = timed(proxier.sync(rules.clone())).await;
            assert_eq!(kind.ok(), Some(SyncKind::Resync { repaired: 0 }));
            full_resync.push(ms(elapsed));
            for (from, to) in [(&rules, &changed), (&changed, &rules)] {
                let _ = from;
                let (kind, elapsed) = timed(proxier.sync(to.clone())).await;
                assert!(matches!(kind, Ok(SyncKind::Partial { .. })), "{kind:?}");
                partial.push(ms(elapsed));
            }
            // The same change as kube-proxy's loop makes it: the whole rule set computed from
            // the objects, then the sync.
            for to in [&changed_slices, &slices] {
                let (kind, elapsed) = timed(async { proxier.sync(compute(&services, to, &config)).await }).await;
                assert!(matches!(kind, Ok(SyncKind::Partial { .. })), "{kind:?}");
                end_to_end.push(ms(elapsed));
            }
        }
        if std::env::var_os("KPROXY_BENCH_DEBUG").is_some() {
            let start = Instant::now();
            let ports = proxy::model::service_ports(&services, &slices, &config);
            eprintln!(
                "service_ports (the model, both modes' first step): {:.1} ms",
                ms(start.elapsed())
            );
            drop(ports);
            eprintln!("partial samples: {partial:?}");
            let netns = Netns::create("dbg");
            let backend = netns.backend();
            let mut proxier = Proxier::new(backend.clone(), Duration::from_secs(3600));
            let _ = proxier.sync(rules.clone()).await;
            for (from, to) in [(&rules, &changed), (&changed, &rules)] {
                let input = proxy::rules::render_diff(from, to).expect("diff");
                let start = Instant::now();
                let diff_again = proxy::rules::render_diff(from, to);
                let render = start.elapsed();
                let (result, elapsed) = timed(backend.restore(input.clone(), RestoreMode::NoFlush)).await;
                result.expect("restore");
                eprintln!(
                    "render {:.1} ms, restore {:.1} ms, input:\n{input}",
                    ms(render),
                    ms(elapsed)
                );
                drop(diff_again);
            }
        }
        let nft = nft_mode(n, &config, reps).await;
        println!(
            "{:>7} | {:>7} {:>9.1} {:>11.1} {:>11.1} {:>12.1} {:>10.1} {:>10.1} | {:>7} {:>9.1} {:>11.1} {:>12.1} {:>10.1} {:>10.1}",
            n,
            rules.rule_count(),
            compute_ms,
            median(bare),
            median(full_empty),
            median(full_resync),
            median(partial),
            median(end_to_end),
            nft.objects,
            nft.compute_ms,
            median(nft.full_empty),
            median(nft.full_resync),
            median(nft.partial),
            median(nft.end_to_end)
        );
    }
}

/// The nftables mode's timings for one size.
struct NftTimings {
    objects: usize,
    compute_ms: f64,
    full_empty: Vec<f64>,
    full_resync: Vec<f64>,
    partial: Vec<f64>,
    end_to_end: Vec<f64>,
}

/// Full sync into an empty namespace, full resync over the populated table (the whole table
/// replaced in one transaction) and one changed service, as for iptables above.
async fn nft_mode(n: usize, config: &Config, reps: usize) -> NftTimings {
    let (services, slices) = cluster(n, false);
    let start = Instant::now();
    let table = proxy::nft::compute::compute(&services, &slices, config);
    let compute_ms = ms(start.elapsed());
    let (_, changed_slices) = cluster(n, true);
    let changed = proxy::nft::compute::compute(&services, &changed_slices, config);
    let mut timings = NftTimings {
        objects: table.object_count(),
        compute_ms,
        full_empty: Vec::new(),
        full_resync: Vec::new(),
        partial: Vec::new(),
        end_to_end: Vec::new(),
    };
    for _ in 0..reps {
        let netns = Netns::create("nft");
        let mut proxier = NftProxier::new(netns.nft_backend(), Duration::from_secs(3600));
        let (kind, elapsed) = timed(proxier.sync(table.clone())).await;
        assert_eq!(kind.ok(), Some(SyncKind::Full));
        timings.full_empty.push(ms(elapsed));
        proxier.request_full_sync();
        let (kind, elapsed) = timed(proxier.sync(table.clone())).await;
        assert_eq!(kind.ok(), Some(SyncKind::Full));
        timings.full_resync.push(ms(elapsed));
        for to in [&changed, &table] {
            let (kind, elapsed) = timed(proxier.sync(to.clone())).await;
            assert!(matches!(kind, Ok(SyncKind::Partial { .. })), "{kind:?}");
            timings.partial.push(ms(elapsed));
        }
        for to in [&changed_slices, &slices] {
            let (kind, elapsed) = timed(async {
                let desired = proxy::nft::compute::compute_reusing(&services, to, config, proxier.applied());
                proxier.sync(desired).await
            })
            .await;
            assert!(matches!(kind, Ok(SyncKind::Partial { .. })), "{kind:?}");
            timings.end_to_end.push(ms(elapsed));
        }
    }
    if std::env::var_os("KPROXY_BENCH_DEBUG").is_some() {
        eprintln!("nft partial samples: {:?}", timings.partial);
    }
    timings
}
