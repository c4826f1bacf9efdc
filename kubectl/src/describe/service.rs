//! Services (with the endpoints their EndpointSlices list) and Endpoints objects.

use jiff::Zoned;
use serde_json::Value;

use super::common::{annotations_multiline, arr, format_labels, i, labels_multiline, opt_i, s, str_map};
use super::events::describe_events;
use super::writer::PrefixWriter;

/// The `Endpoints:` text of one service port: up to three ready `ip:port`, then `+ N more...`.
pub(crate) fn format_endpoint_slices(slices: &[Value], port_name: Option<&str>) -> String {
    if slices.is_empty() {
        return "<none>".into();
    }
    let max = 3;
    let mut list: Vec<String> = Vec::new();
    let mut more = false;
    let mut count = 0;
    let ready = |e: &Value| e.pointer("/conditions/ready").and_then(Value::as_bool) != Some(false);
    let first_addr = |e: &Value| {
        arr(e, "/addresses")
            .first()
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    for slice in slices {
        let ports = arr(slice, "/ports");
        let endpoints = arr(slice, "/endpoints");
        if ports.is_empty() {
            for e in endpoints {
                if list.len() == max {
                    more = true;
                }
                if !ready(e) {
                    continue;
                }
                if !more {
                    list.push(first_addr(e));
                }
                count += 1;
            }
        } else {
            for p in ports {
                if port_name.is_some_and(|n| n != s(p, "/name")) {
                    continue;
                }
                for e in endpoints {
                    if list.len() == max {
                        more = true;
                    }
                    if !ready(e) {
                        continue;
                    }
                    if !more {
                        let addr = first_addr(e);
                        let port = i(p, "/port");
                        if addr.contains(':') {
                            list.push(format!("[{addr}]:{port}"));
                        } else {
                            list.push(format!("{addr}:{port}"));
                        }
                    }
                    count += 1;
                }
            }
        }
    }
    let joined = list.join(",");
    if more {
        format!("{joined} + {} more...", count - max)
    } else {
        joined
    }
}

/// The report for a Service, given the EndpointSlices labelled with its name.
pub(crate) fn render_service(svc: &Value, slices: &[Value], events: Option<&[Value]>, now: &Zoned) -> String {
    let mut w = PrefixWriter::new();
    w.write(0, &format!("Name:\t{}\n", s(svc, "/metadata/name")));
    w.write(0, &format!("Namespace:\t{}\n", s(svc, "/metadata/namespace")));
    labels_multiline(&mut w, "Labels", &str_map(svc, "/metadata/labels"));
    annotations_multiline(&mut w, "Annotations", &str_map(svc, "/metadata/annotations"));
    w.write(
        0,
        &format!("Selector:\t{}\n", format_labels(&str_map(svc, "/spec/selector"))),
    );
    w.write(0, &format!("Type:\t{}\n", s(svc, "/spec/type")));
    if let Some(p) = svc.pointer("/spec/ipFamilyPolicy").and_then(Value::as_str) {
        w.write(0, &format!("IP Family Policy:\t{p}\n"));
    }
    let join = |ptr: &str, sep: &str| -> String {
        arr(svc, ptr)
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(sep)
    };
    let families = join("/spec/ipFamilies", ",");
    w.write(0, &format!("IP Families:\t{}\n", super::common::or_none(&families)));
    w.write(0, &format!("IP:\t{}\n", s(svc, "/spec/clusterIP")));
    let ips = join("/spec/clusterIPs", ",");
    w.write(0, &format!("IPs:\t{}\n", super::common::or_none(&ips)));
    let external = join("/spec/externalIPs", ",");
    if !external.is_empty() {
        w.write(0, &format!("External IPs:\t{external}\n"));
    }
    let lb_ip = s(svc, "/spec/loadBalancerIP");
    if !lb_ip.is_empty() {
        w.write(0, &format!("Desired LoadBalancer IP:\t{lb_ip}\n"));
    }
    let ext_name = s(svc, "/spec/externalName");
    if !ext_name.is_empty() {
        w.write(0, &format!("External Name:\t{ext_name}\n"));
    }
    let ingress = arr(svc, "/status/loadBalancer/ingress");
    if !ingress.is_empty() {
        let list: Vec<String> = ingress
            .iter()
            .map(|g| {
                let ip = s(g, "/ip");
                if ip.is_empty() {
                    s(g, "/hostname").to_string()
                } else if let Some(mode) = g.get("ipMode").and_then(Value::as_str) {
                    format!("{ip} ({mode})")
                } else {
                    ip.to_string()
                }
            })
            .collect();
        w.write(0, &format!("LoadBalancer Ingress:\t{}\n", list.join(", ")));
    }
    for p in arr(svc, "/spec/ports") {
        let raw_name = s(p, "/name");
        let name = if raw_name.is_empty() { "<unset>" } else { raw_name };
        let proto = s(p, "/protocol");
        w.write(0, &format!("Port:\t{name}\t{}/{proto}\n", i(p, "/port")));
        match p.get("targetPort") {
            Some(Value::String(t)) => w.write(0, &format!("TargetPort:\t{t}/{proto}\n")),
            t => w.write(
                0,
                &format!("TargetPort:\t{}/{proto}\n", t.and_then(Value::as_i64).unwrap_or(0)),
            ),
        }
        let node_port = i(p, "/nodePort");
        if node_port != 0 {
            w.write(0, &format!("NodePort:\t{name}\t{node_port}/{proto}\n"));
        }
        w.write(
            0,
            &format!("Endpoints:\t{}\n", format_endpoint_slices(slices, Some(raw_name))),
        );
    }
    w.write(0, &format!("Session Affinity:\t{}\n", s(svc, "/spec/sessionAffinity")));
    let etp = s(svc, "/spec/externalTrafficPolicy");
    if !etp.is_empty() {
        w.write(0, &format!("External Traffic Policy:\t{etp}\n"));
    }
    if let Some(itp) = svc.pointer("/spec/internalTrafficPolicy").and_then(Value::as_str) {
        w.write(0, &format!("Internal Traffic Policy:\t{itp}\n"));
    }
    if let Some(hc) = opt_i(svc, "/spec/healthCheckNodePort").filter(|v| *v != 0) {
        w.write(0, &format!("HealthCheck NodePort:\t{hc}\n"));
    }
    let ranges = join("/spec/loadBalancerSourceRanges", ",");
    if !ranges.is_empty() {
        w.write(0, &format!("LoadBalancer Source Ranges:\t{ranges}\n"));
    }
    let td = s(svc, "/spec/trafficDistribution");
    if !td.is_empty() {
        w.write(0, &format!("Traffic Distribution:\t{td}\n"));
    }
    describe_events(events, &mut w, now);
    w.finish()
}

/// The report for an Endpoints object.
pub(crate) fn render_endpoints(ep: &Value, events: Option<&[Value]>, now: &Zoned) -> String {
    let mut w = PrefixWriter::new();
    w.write(0, &format!("Name:\t{}\n", s(ep, "/metadata/name")));
    w.write(0, &format!("Namespace:\t{}\n", s(ep, "/metadata/namespace")));
    labels_multiline(&mut w, "Labels", &str_map(ep, "/metadata/labels"));
    annotations_multiline(&mut w, "Annotations", &str_map(ep, "/metadata/annotations"));
    w.write(0, "Subsets:\n");
    for subset in arr(ep, "/subsets") {
        let ips = |ptr: &str| -> String {
            let list: Vec<&str> = arr(subset, ptr).iter().map(|a| s(a, "/ip")).collect();
            let joined = list.join(",");
            if joined.is_empty() { "<none>".into() } else { joined }
        };
        w.write(1, &format!("Addresses:\t{}\n", ips("/addresses")));
        w.write(1, &format!("NotReadyAddresses:\t{}\n", ips("/notReadyAddresses")));
        let ports = arr(subset, "/ports");
        if !ports.is_empty() {
            w.write(1, "Ports:\n");
            w.write(2, "Name\tPort\tProtocol\n");
            w.write(2, "----\t----\t--------\n");
            for p in ports {
                let name = s(p, "/name");
                let name = if name.is_empty() { "<unset>" } else { name };
                w.write(2, &format!("{name}\t{}\t{}\n", i(p, "/port"), s(p, "/protocol")));
            }
        }
        w.write(0, "\n");
    }
    describe_events(events, &mut w, now);
    w.finish()
}
