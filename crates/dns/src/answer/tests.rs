//! Table tests of the answer function over a fixed catalog.

use hickory_server::proto::rr::{Name, RecordType};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::json;

use super::{Answer, answer};
use crate::catalog::Catalog;

pub(crate) fn fixture() -> Catalog {
    let services: Vec<Service> = [
        json!({"metadata": {"name": "web", "namespace": "default"},
               "spec": {"clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"], "ports": [
                   {"name": "http", "port": 80, "protocol": "TCP"},
                   {"name": "dns", "port": 53, "protocol": "UDP"},
                   {"port": 8080}]}}),
        json!({"metadata": {"name": "dual", "namespace": "default"},
               "spec": {"clusterIP": "10.96.0.20", "clusterIPs": ["10.96.0.20", "fd00::20"]}}),
        json!({"metadata": {"name": "db", "namespace": "default"},
               "spec": {"clusterIP": "None", "ports": [{"name": "pg", "port": 5432}]}}),
        json!({"metadata": {"name": "empty", "namespace": "default"},
               "spec": {"clusterIP": "None"}}),
        json!({"metadata": {"name": "ext", "namespace": "default"},
               "spec": {"type": "ExternalName", "externalName": "example.com"}}),
        json!({"metadata": {"name": "api", "namespace": "other"},
               "spec": {"clusterIP": "10.96.1.1"}}),
    ]
    .into_iter()
    .map(|v| serde_json::from_value(v).unwrap())
    .collect();
    let slices: Vec<EndpointSlice> = [
        json!({"metadata": {"name": "db-abc", "namespace": "default",
                            "labels": {"kubernetes.io/service-name": "db"}},
               "addressType": "IPv4",
               "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}],
               "endpoints": [
                   {"addresses": ["10.1.0.1"], "hostname": "db-0", "conditions": {"ready": true}},
                   {"addresses": ["10.1.0.2"]},
                   {"addresses": ["10.1.0.3"], "hostname": "db-2", "conditions": {"ready": false}}]}),
        // Not labelled: ignored.
        json!({"metadata": {"name": "stray", "namespace": "default"},
               "addressType": "IPv4",
               "endpoints": [{"addresses": ["10.9.9.9"]}]}),
    ]
    .into_iter()
    .map(|v| serde_json::from_value(v).unwrap())
    .collect();
    Catalog::new(&services, &slices).with_serial(42)
}

fn render(answer: &Answer) -> String {
    let mut out = Vec::new();
    match answer {
        Answer::Records { answers, additionals } => {
            out.push("NOERROR".to_string());
            out.extend(answers.iter().map(|r| r.to_string()));
            out.extend(additionals.iter().map(|r| format!("additional: {r}")));
        }
        Answer::NoData { soa } => out.push(format!("NODATA authority: {soa}")),
        Answer::NxDomain { soa } => out.push(format!("NXDOMAIN authority: {soa}")),
        Answer::NotAuthoritative => out.push("NOT AUTHORITATIVE".to_string()),
    }
    out.join("\n")
}

#[track_caller]
fn check(qname: &str, qtype: RecordType, want: &str) {
    let domain = Name::from_ascii("cluster.local.").unwrap();
    let qname = Name::from_ascii(qname).unwrap();
    let got = render(&answer(&fixture(), &domain, &qname, qtype));
    let want = want
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(got, want, "\nquery {qname} {qtype}");
}

const SOA: &str = "cluster.local. 30 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 42 7200 1800 86400 30";

#[test]
fn service_a() {
    check(
        "web.default.svc.cluster.local.",
        RecordType::A,
        "NOERROR
         web.default.svc.cluster.local. 30 IN A 10.96.0.10",
    );
}

#[test]
fn names_are_case_insensitive_and_owned_as_asked() {
    check(
        "WEB.Default.SVC.Cluster.Local.",
        RecordType::A,
        "NOERROR
         WEB.Default.SVC.Cluster.Local. 30 IN A 10.96.0.10",
    );
}

#[test]
fn aaaa_on_ipv4_service_is_nodata() {
    check(
        "web.default.svc.cluster.local.",
        RecordType::AAAA,
        &format!("NODATA authority: {SOA}"),
    );
}

#[test]
fn dual_stack_service() {
    check(
        "dual.default.svc.cluster.local.",
        RecordType::AAAA,
        "NOERROR
         dual.default.svc.cluster.local. 30 IN AAAA fd00::20",
    );
    check(
        "dual.default.svc.cluster.local.",
        RecordType::A,
        "NOERROR
         dual.default.svc.cluster.local. 30 IN A 10.96.0.20",
    );
}

#[test]
fn headless_a_lists_only_ready_endpoints() {
    check(
        "db.default.svc.cluster.local.",
        RecordType::A,
        "NOERROR
         db.default.svc.cluster.local. 30 IN A 10.1.0.1
         db.default.svc.cluster.local. 30 IN A 10.1.0.2",
    );
}

#[test]
fn headless_without_ready_endpoints_is_nodata() {
    check(
        "empty.default.svc.cluster.local.",
        RecordType::A,
        &format!("NODATA authority: {SOA}"),
    );
}

#[test]
fn headless_endpoint_hostname_and_dashed_ip() {
    check(
        "db-0.db.default.svc.cluster.local.",
        RecordType::A,
        "NOERROR
         db-0.db.default.svc.cluster.local. 30 IN A 10.1.0.1",
    );
    check(
        "10-1-0-2.db.default.svc.cluster.local.",
        RecordType::A,
        "NOERROR
         10-1-0-2.db.default.svc.cluster.local. 30 IN A 10.1.0.2",
    );
    // Not ready, and an endpoint with a hostname is not named by its IP.
    check(
        "db-2.db.default.svc.cluster.local.",
        RecordType::A,
        &format!("NXDOMAIN authority: {SOA}"),
    );
    check(
        "10-1-0-1.db.default.svc.cluster.local.",
        RecordType::A,
        &format!("NXDOMAIN authority: {SOA}"),
    );
    // Endpoint names exist only under headless services.
    check(
        "x.web.default.svc.cluster.local.",
        RecordType::A,
        &format!("NXDOMAIN authority: {SOA}"),
    );
}

#[test]
fn srv_for_named_port() {
    check(
        "_http._tcp.web.default.svc.cluster.local.",
        RecordType::SRV,
        "NOERROR
         _http._tcp.web.default.svc.cluster.local. 30 IN SRV 0 100 80 web.default.svc.cluster.local.
         additional: web.default.svc.cluster.local. 30 IN A 10.96.0.10",
    );
    check(
        "_DNS._UDP.web.default.svc.cluster.local.",
        RecordType::SRV,
        "NOERROR
         _DNS._UDP.web.default.svc.cluster.local. 30 IN SRV 0 100 53 web.default.svc.cluster.local.
         additional: web.default.svc.cluster.local. 30 IN A 10.96.0.10",
    );
    // Wrong protocol, unknown port: no such name. Right name, other type: NODATA.
    check(
        "_dns._tcp.web.default.svc.cluster.local.",
        RecordType::SRV,
        &format!("NXDOMAIN authority: {SOA}"),
    );
    check(
        "_nope._tcp.web.default.svc.cluster.local.",
        RecordType::SRV,
        &format!("NXDOMAIN authority: {SOA}"),
    );
    check(
        "_http._tcp.web.default.svc.cluster.local.",
        RecordType::A,
        &format!("NODATA authority: {SOA}"),
    );
    check(
        "_tcp.web.default.svc.cluster.local.",
        RecordType::SRV,
        &format!("NODATA authority: {SOA}"),
    );
}

#[test]
fn srv_for_headless_service_targets_each_endpoint() {
    check(
        "_pg._tcp.db.default.svc.cluster.local.",
        RecordType::SRV,
        "NOERROR
         _pg._tcp.db.default.svc.cluster.local. 30 IN SRV 0 50 5432 db-0.db.default.svc.cluster.local.
         _pg._tcp.db.default.svc.cluster.local. 30 IN SRV 0 50 5432 10-1-0-2.db.default.svc.cluster.local.
         additional: db-0.db.default.svc.cluster.local. 30 IN A 10.1.0.1
         additional: 10-1-0-2.db.default.svc.cluster.local. 30 IN A 10.1.0.2",
    );
}

#[test]
fn external_name_is_a_cname() {
    for qtype in [RecordType::A, RecordType::AAAA, RecordType::CNAME] {
        check(
            "ext.default.svc.cluster.local.",
            qtype,
            "NOERROR
             ext.default.svc.cluster.local. 30 IN CNAME example.com.",
        );
    }
}

#[test]
fn pod_records_from_dashed_ip() {
    check(
        "10-244-1-5.default.pod.cluster.local.",
        RecordType::A,
        "NOERROR
         10-244-1-5.default.pod.cluster.local. 30 IN A 10.244.1.5",
    );
    check(
        "fd00--5.default.pod.cluster.local.",
        RecordType::AAAA,
        "NOERROR
         fd00--5.default.pod.cluster.local. 30 IN AAAA fd00::5",
    );
    check(
        "10-244-1-5.default.pod.cluster.local.",
        RecordType::AAAA,
        &format!("NODATA authority: {SOA}"),
    );
    check(
        "10-244-1-500.default.pod.cluster.local.",
        RecordType::A,
        &format!("NXDOMAIN authority: {SOA}"),
    );
    check(
        "nonsense.default.pod.cluster.local.",
        RecordType::A,
        &format!("NXDOMAIN authority: {SOA}"),
    );
}

#[test]
fn ptr_for_cluster_ips_and_headless_endpoints() {
    check(
        "10.0.96.10.in-addr.arpa.",
        RecordType::PTR,
        "NOERROR
         10.0.96.10.in-addr.arpa. 30 IN PTR web.default.svc.cluster.local.",
    );
    check(
        "1.0.1.10.in-addr.arpa.",
        RecordType::PTR,
        "NOERROR
         1.0.1.10.in-addr.arpa. 30 IN PTR db-0.db.default.svc.cluster.local.",
    );
    let v6 = "0.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.";
    check(
        v6,
        RecordType::PTR,
        &format!("NOERROR\n{v6} 30 IN PTR dual.default.svc.cluster.local."),
    );
    // Unknown IPs and partial names fall through (to the upstreams).
    check("3.0.1.10.in-addr.arpa.", RecordType::PTR, "NOT AUTHORITATIVE");
    check("10.in-addr.arpa.", RecordType::PTR, "NOT AUTHORITATIVE");
}

#[test]
fn unknown_names_are_nxdomain_with_soa() {
    let nx = format!("NXDOMAIN authority: {SOA}");
    check("nope.default.svc.cluster.local.", RecordType::A, &nx);
    check("web.nope.svc.cluster.local.", RecordType::A, &nx);
    check("nope.svc.cluster.local.", RecordType::A, &nx);
    check("web.default.nope.cluster.local.", RecordType::A, &nx);
    check("a.b.c.web.default.svc.cluster.local.", RecordType::A, &nx);
}

#[test]
fn empty_non_terminals_are_nodata() {
    let nodata = format!("NODATA authority: {SOA}");
    check("default.svc.cluster.local.", RecordType::A, &nodata);
    check("svc.cluster.local.", RecordType::A, &nodata);
    check("default.pod.cluster.local.", RecordType::A, &nodata);
}

#[test]
fn zone_apex_and_schema_version() {
    check("cluster.local.", RecordType::SOA, &format!("NOERROR\n{SOA}"));
    check(
        "cluster.local.",
        RecordType::NS,
        "NOERROR
         cluster.local. 30 IN NS ns.dns.cluster.local.",
    );
    check("cluster.local.", RecordType::A, &format!("NODATA authority: {SOA}"));
    check(
        "dns-version.cluster.local.",
        RecordType::TXT,
        "NOERROR
         dns-version.cluster.local. 30 IN TXT 1.1.0",
    );
}

#[test]
fn outside_the_zone_is_not_ours() {
    check("example.org.", RecordType::A, "NOT AUTHORITATIVE");
    check("local.", RecordType::A, "NOT AUTHORITATIVE");
    check(
        "web.default.svc.cluster.local.evil.",
        RecordType::A,
        "NOT AUTHORITATIVE",
    );
}

#[test]
fn odd_labels_never_panic() {
    // Names as they may arrive off the wire: raw bytes, not validated host names.
    let names: [&[&[u8]]; 9] = [
        &[b"*", b"default", b"svc", b"cluster", b"local"],
        &[b"_", b"_", b"web", b"default", b"svc", b"cluster", b"local"],
        &[b"-", b"default", b"pod", b"cluster", b"local"],
        &[b"------", b"default", b"pod", b"cluster", b"local"],
        &[b"1-2-3-4-5", b"default", b"pod", b"cluster", b"local"],
        &[b"\xff\x00", b"\xc3", b"svc", b"cluster", b"local"],
        &[b"\xff", b"db", b"default", b"svc", b"cluster", b"local"],
        &[b"x", b"y", b"z", b"w", b"in-addr", b"arpa"],
        &[b"999", b"0", b"0", b"10", b"in-addr", b"arpa"],
    ];
    let domain = Name::from_ascii("cluster.local.").unwrap();
    let catalog = fixture();
    for labels in names {
        let qname = Name::from_labels(labels.iter().copied()).unwrap();
        for qtype in [
            RecordType::A,
            RecordType::AAAA,
            RecordType::SRV,
            RecordType::PTR,
            RecordType::ANY,
        ] {
            let _ = answer(&catalog, &domain, &qname, qtype);
        }
    }
    let mut nibbles: Vec<&[u8]> = vec![b"0"; 31];
    nibbles.extend([&b"gg"[..], b"ip6", b"arpa"]);
    let qname = Name::from_labels(nibbles).unwrap();
    assert_eq!(
        answer(&catalog, &domain, &qname, RecordType::PTR),
        Answer::NotAuthoritative
    );
}
