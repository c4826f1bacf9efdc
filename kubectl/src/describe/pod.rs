//! Pods and pod templates: containers with their state, resources, probes, environment and
//! mounts, volumes, conditions, QoS class, node selectors, tolerations and spread constraints.

use jiff::Zoned;
use serde_json::Value;

use super::common::{
    annotations_multiline, arr, b, controller_of, go_slice, i, int_or_string, labels_multiline, opt_i, or_none,
    rfc1123z, s, since, str_map, tolerations_multiline, ts,
};
use super::events::describe_events;
use super::volumes::describe_volumes;
use super::writer::PrefixWriter;
use api::quantity::Quantity;

/// The report for a pod and its events.
pub(crate) fn render_pod(pod: &Value, events: Option<&[Value]>, now: &Zoned) -> String {
    let mut w = PrefixWriter::new();
    w.write(0, &format!("Name:\t{}\n", s(pod, "/metadata/name")));
    w.write(0, &format!("Namespace:\t{}\n", s(pod, "/metadata/namespace")));
    if let Some(p) = opt_i(pod, "/spec/priority") {
        w.write(0, &format!("Priority:\t{p}\n"));
    }
    let pcn = s(pod, "/spec/priorityClassName");
    if !pcn.is_empty() {
        w.write(0, &format!("Priority Class Name:\t{pcn}\n"));
    }
    let rcn = s(pod, "/spec/runtimeClassName");
    if !rcn.is_empty() {
        w.write(0, &format!("Runtime Class Name:\t{rcn}\n"));
    }
    let sa = s(pod, "/spec/serviceAccountName");
    if !sa.is_empty() {
        w.write(0, &format!("Service Account:\t{sa}\n"));
    }
    let node = s(pod, "/spec/nodeName");
    if node.is_empty() {
        w.write(0, "Node:\t<none>\n");
    } else {
        w.write(0, &format!("Node:\t{node}/{}\n", s(pod, "/status/hostIP")));
    }
    if let Some(t) = ts(pod, "/status/startTime") {
        w.write(0, &format!("Start Time:\t{}\n", rfc1123z(Some(t), now)));
    }
    labels_multiline(&mut w, "Labels", &str_map(pod, "/metadata/labels"));
    annotations_multiline(&mut w, "Annotations", &str_map(pod, "/metadata/annotations"));
    let phase = s(pod, "/status/phase");
    match ts(pod, "/metadata/deletionTimestamp") {
        Some(t) if phase != "Failed" && phase != "Succeeded" => {
            w.write(0, &format!("Status:\tTerminating (lasts {})\n", since(Some(t), now)));
            w.write(
                0,
                &format!(
                    "Termination Grace Period:\t{}s\n",
                    i(pod, "/metadata/deletionGracePeriodSeconds")
                ),
            );
        }
        _ => w.write(0, &format!("Status:\t{phase}\n")),
    }
    for (label, ptr) in [("Reason", "/status/reason"), ("Message", "/status/message")] {
        let v = s(pod, ptr);
        if !v.is_empty() {
            w.write(0, &format!("{label}:\t{v}\n"));
        }
    }
    if let Some(sp) = pod.pointer("/spec/securityContext/seccompProfile") {
        w.write(0, &format!("SeccompProfile:\t{}\n", s(sp, "/type")));
        if s(sp, "/type") == "Localhost" {
            w.write(0, &format!("LocalhostProfile:\t{}\n", s(sp, "/localhostProfile")));
        }
    }
    w.write(0, &format!("IP:\t{}\n", s(pod, "/status/podIP")));
    let ips = arr(pod, "/status/podIPs");
    if ips.is_empty() {
        w.write(0, "IPs:\t<none>\n");
    } else {
        w.write(0, "IPs:\n");
        for ip in ips {
            w.write(1, &format!("IP:\t{}\n", s(ip, "/ip")));
        }
    }
    if let Some(c) = controller_of(pod) {
        w.write(0, &format!("Controlled By:\t{c}\n"));
    }
    let nominated = s(pod, "/status/nominatedNodeName");
    if !nominated.is_empty() {
        w.write(0, &format!("NominatedNodeName:\t{nominated}\n"));
    }
    if let Some(r) = pod.pointer("/spec/resources") {
        w.write(0, "Resources:\n");
        describe_resources(r, &mut w, 1);
    }
    let env = Some(pod);
    let init = arr(pod, "/spec/initContainers");
    if !init.is_empty() {
        describe_containers(
            "Init Containers",
            init,
            arr(pod, "/status/initContainerStatuses"),
            env,
            &mut w,
            "",
            now,
        );
    }
    describe_containers(
        "Containers",
        arr(pod, "/spec/containers"),
        arr(pod, "/status/containerStatuses"),
        env,
        &mut w,
        "",
        now,
    );
    let eph = arr(pod, "/spec/ephemeralContainers");
    if !eph.is_empty() {
        describe_containers(
            "Ephemeral Containers",
            eph,
            arr(pod, "/status/ephemeralContainerStatuses"),
            env,
            &mut w,
            "",
            now,
        );
    }
    let conditions = arr(pod, "/status/conditions");
    let gates = arr(pod, "/spec/readinessGates");
    if !gates.is_empty() {
        w.write(0, "Readiness Gates:\n  Type\tStatus\n");
        for g in gates {
            let t = s(g, "/conditionType");
            let status = conditions
                .iter()
                .find(|c| s(c, "/type") == t)
                .map(|c| s(c, "/status"))
                .unwrap_or("<none>");
            w.write(1, &format!("{t} \t{status} \n"));
        }
    }
    if !conditions.is_empty() {
        w.write(0, "Conditions:\n  Type\tStatus\n");
        for c in conditions {
            w.write(1, &format!("{} \t{} \n", s(c, "/type"), s(c, "/status")));
        }
    }
    describe_volumes(arr(pod, "/spec/volumes"), &mut w, "");
    w.write(0, &format!("QoS Class:\t{}\n", qos_class(pod)));
    labels_multiline(&mut w, "Node-Selectors", &str_map(pod, "/spec/nodeSelector"));
    tolerations_multiline(&mut w, "Tolerations", arr(pod, "/spec/tolerations"));
    describe_topology_spread(arr(pod, "/spec/topologySpreadConstraints"), &mut w, "");
    describe_events(events, &mut w, now);
    w.finish()
}

/// The `Pod Template:` section of controllers.
pub(crate) fn describe_pod_template(template: Option<&Value>, w: &mut PrefixWriter, now: &Zoned) {
    w.write(0, "Pod Template:\n");
    let Some(t) = template else {
        w.write(1, "<unset>");
        return;
    };
    labels_multiline(w, "  Labels", &str_map(t, "/metadata/labels"));
    let annotations = str_map(t, "/metadata/annotations");
    if !annotations.is_empty() {
        annotations_multiline(w, "  Annotations", &annotations);
    }
    let sa = s(t, "/spec/serviceAccountName");
    if !sa.is_empty() {
        w.write(1, &format!("Service Account:\t{sa}\n"));
    }
    let init = arr(t, "/spec/initContainers");
    if !init.is_empty() {
        describe_containers("Init Containers", init, &[], None, w, "  ", now);
    }
    describe_containers("Containers", arr(t, "/spec/containers"), &[], None, w, "  ", now);
    describe_volumes(arr(t, "/spec/volumes"), w, "  ");
    describe_topology_spread(arr(t, "/spec/topologySpreadConstraints"), w, "  ");
    let pcn = s(t, "/spec/priorityClassName");
    if !pcn.is_empty() {
        w.write(1, &format!("Priority Class Name:\t{pcn}\n"));
    }
    labels_multiline(w, "  Node-Selectors", &str_map(t, "/spec/nodeSelector"));
    tolerations_multiline(w, "  Tolerations", arr(t, "/spec/tolerations"));
}

fn describe_topology_spread(tscs: &[Value], w: &mut PrefixWriter, space: &str) {
    if tscs.is_empty() {
        return;
    }
    let mut sorted: Vec<&Value> = tscs.iter().collect();
    sorted.sort_by(|a, b| s(a, "/topologyKey").cmp(s(b, "/topologyKey")));
    w.write(0, &format!("{space}Topology Spread Constraints:\t"));
    for (n, t) in sorted.into_iter().enumerate() {
        if n != 0 {
            w.write(0, &format!("{space}\t"));
        }
        let mut line = format!(
            "{}:{} when max skew {} is exceeded",
            s(t, "/topologyKey"),
            s(t, "/whenUnsatisfiable"),
            i(t, "/maxSkew")
        );
        if let Some(sel) = t.pointer("/labelSelector").filter(|v| !v.is_null()) {
            line.push_str(&format!(
                " for selector {}",
                super::common::format_label_selector(Some(sel))
            ));
        }
        line.push('\n');
        w.write(0, &line);
    }
}

/// A quantity field printed canonically (the raw text when it does not parse).
pub(crate) fn quantity_text(v: &Value) -> String {
    match Quantity::from_json(v) {
        Some(q) => q.to_string(),
        None => super::common::go_value(v),
    }
}

/// `Limits:` and `Requests:` blocks of a resource requirements object.
pub(crate) fn describe_resources(r: &Value, w: &mut PrefixWriter, level: usize) {
    for (title, ptr) in [("Limits", "/limits"), ("Requests", "/requests")] {
        let Some(list) = r.pointer(ptr).and_then(Value::as_object) else {
            continue;
        };
        if list.is_empty() {
            continue;
        }
        w.write(level, &format!("{title}:\n"));
        let mut names: Vec<&String> = list.keys().collect();
        names.sort();
        for n in names {
            w.write(level + 1, &format!("{n}:\t{}\n", quantity_text(&list[n])));
        }
    }
}

fn describe_containers(
    label: &str,
    containers: &[Value],
    statuses: &[Value],
    pod: Option<&Value>,
    w: &mut PrefixWriter,
    space: &str,
    now: &Zoned,
) {
    let none = if containers.is_empty() { " <none>" } else { "" };
    w.write(0, &format!("{space}{label}:{none}\n"));
    let name_indent = if space.is_empty() { "" } else { " " };
    for c in containers {
        let name = s(c, "/name");
        let status = statuses.iter().find(|st| s(st, "/name") == name);
        w.write(1, &format!("{name_indent}{name}:\n"));
        if let Some(st) = status {
            w.write(2, &format!("Container ID:\t{}\n", s(st, "/containerID")));
        }
        w.write(2, &format!("Image:\t{}\n", s(c, "/image")));
        if let Some(st) = status {
            w.write(2, &format!("Image ID:\t{}\n", s(st, "/imageID")));
        }
        let ports = arr(c, "/ports");
        let list = |key: &str| -> String {
            ports
                .iter()
                .map(|p| {
                    let name = s(p, "/name");
                    let base = format!("{}/{}", i(p, key), s(p, "/protocol"));
                    if name.is_empty() {
                        base
                    } else {
                        format!("{base} ({name})")
                    }
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let (cp, hp) = (list("/containerPort"), list("/hostPort"));
        if cp.contains(',') {
            w.write(2, &format!("Ports:\t{cp}\n"));
        } else {
            w.write(2, &format!("Port:\t{}\n", or_none(&cp)));
        }
        if hp.contains(',') {
            w.write(2, &format!("Host Ports:\t{hp}\n"));
        } else {
            w.write(2, &format!("Host Port:\t{}\n", or_none(&hp)));
        }
        if let Some(sp) = c.pointer("/securityContext/seccompProfile") {
            w.write(2, &format!("SeccompProfile:\t{}\n", s(sp, "/type")));
            if s(sp, "/type") == "Localhost" {
                w.write(3, &format!("LocalhostProfile:\t{}\n", s(sp, "/localhostProfile")));
            }
        }
        for (title, ptr) in [("Command", "/command"), ("Args", "/args")] {
            let items = arr(c, ptr);
            if !items.is_empty() {
                w.write(2, &format!("{title}:\n"));
                for item in items {
                    for part in item.as_str().unwrap_or("").split('\n') {
                        w.write(3, &format!("{part}\n"));
                    }
                }
            }
        }
        if let Some(st) = status {
            describe_state("State", st.pointer("/state"), w, now);
            if st.pointer("/lastState/terminated").is_some() {
                describe_state("Last State", st.pointer("/lastState"), w, now);
            }
            let ready = if b(st, "/ready") { "True" } else { "False" };
            w.write(2, &format!("Ready:\t{ready}\n"));
            w.write(2, &format!("Restart Count:\t{}\n", i(st, "/restartCount")));
        }
        if let Some(r) = c.pointer("/resources") {
            describe_resources(r, w, 2);
        }
        for (title, ptr) in [
            ("Liveness", "/livenessProbe"),
            ("Readiness", "/readinessProbe"),
            ("Startup", "/startupProbe"),
        ] {
            if let Some(p) = c.pointer(ptr) {
                w.write(2, &format!("{title}:\t{}\n", describe_probe(p)));
            }
        }
        let env_from = arr(c, "/envFrom");
        if !env_from.is_empty() {
            w.write(2, "Environment Variables from:\n");
            for e in env_from {
                let (from, r) = if let Some(r) = e.pointer("/configMapRef") {
                    ("ConfigMap", Some(r))
                } else if let Some(r) = e.pointer("/secretRef") {
                    ("Secret", Some(r))
                } else {
                    ("", None)
                };
                let name = r.map(|r| s(r, "/name")).unwrap_or("");
                let optional = r.is_some_and(|r| b(r, "/optional"));
                let prefix = s(e, "/prefix");
                if prefix.is_empty() {
                    w.write(3, &format!("{name}\t{from}\tOptional: {optional}\n"));
                } else {
                    w.write(
                        3,
                        &format!("{name}\t{from} with prefix '{prefix}'\tOptional: {optional}\n"),
                    );
                }
            }
        }
        describe_env(c, pod, w);
        describe_mounts(c, w);
    }
}

fn describe_state(name: &str, state: Option<&Value>, w: &mut PrefixWriter, now: &Zoned) {
    let state = state.unwrap_or(&Value::Null);
    let fmt = |ptr: &str| rfc1123z(ts(state, ptr), now);
    if state.pointer("/running").is_some() {
        w.write(2, &format!("{name}:\tRunning\n"));
        w.write(3, &format!("Started:\t{}\n", fmt("/running/startedAt")));
    } else if let Some(wt) = state.pointer("/waiting") {
        w.write(2, &format!("{name}:\tWaiting\n"));
        if !s(wt, "/reason").is_empty() {
            w.write(3, &format!("Reason:\t{}\n", s(wt, "/reason")));
        }
    } else if let Some(t) = state.pointer("/terminated") {
        w.write(2, &format!("{name}:\tTerminated\n"));
        if !s(t, "/reason").is_empty() {
            w.write(3, &format!("Reason:\t{}\n", s(t, "/reason")));
        }
        if !s(t, "/message").is_empty() {
            w.write(3, &format!("Message:\t{}\n", s(t, "/message")));
        }
        w.write(3, &format!("Exit Code:\t{}\n", i(t, "/exitCode")));
        if i(t, "/signal") > 0 {
            w.write(3, &format!("Signal:\t{}\n", i(t, "/signal")));
        }
        w.write(3, &format!("Started:\t{}\n", fmt("/terminated/startedAt")));
        w.write(3, &format!("Finished:\t{}\n", fmt("/terminated/finishedAt")));
    } else {
        w.write(2, &format!("{name}:\tWaiting\n"));
    }
}

/// The one-line summary of a probe (`http-get http://:8080/ delay=0s timeout=1s ...`).
fn describe_probe(p: &Value) -> String {
    let attrs = format!(
        "delay={}s timeout={}s period={}s successThreshold={} failureThreshold={}",
        i(p, "/initialDelaySeconds"),
        i(p, "/timeoutSeconds"),
        i(p, "/periodSeconds"),
        i(p, "/successThreshold"),
        i(p, "/failureThreshold")
    );
    if let Some(e) = p.pointer("/exec") {
        format!("exec {} {attrs}", go_slice(arr(e, "/command")))
    } else if let Some(h) = p.pointer("/httpGet") {
        let scheme = s(h, "/scheme").to_lowercase();
        let port = int_or_string(h.pointer("/port"));
        let host = s(h, "/host");
        let host = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let mut path = s(h, "/path").to_string();
        if !path.is_empty() && !path.starts_with('/') {
            path.insert(0, '/');
        }
        let url = if scheme.is_empty() {
            format!("//{host}{path}")
        } else {
            format!("{scheme}://{host}{path}")
        };
        format!("http-get {url} {attrs}")
    } else if let Some(t) = p.pointer("/tcpSocket") {
        format!(
            "tcp-socket {}:{} {attrs}",
            s(t, "/host"),
            int_or_string(t.pointer("/port"))
        )
    } else if let Some(g) = p.pointer("/grpc") {
        format!("grpc <pod>:{} {} {attrs}", i(g, "/port"), s(g, "/service"))
    } else {
        format!("unknown {attrs}")
    }
}

/// Resolves a downward-API field path against the pod ("" when unsupported).
fn field_value(pod: &Value, path: &str) -> String {
    let keyed = |prefix: &str, map: &str| -> Option<String> {
        let rest = path.strip_prefix(prefix)?.strip_suffix("']")?;
        Some(
            s(
                pod,
                &format!("/metadata/{map}/{}", rest.replace('~', "~0").replace('/', "~1")),
            )
            .to_string(),
        )
    };
    if let Some(v) = keyed("metadata.labels['", "labels").or_else(|| keyed("metadata.annotations['", "annotations")) {
        return v;
    }
    let ptr = match path {
        "metadata.name" => "/metadata/name",
        "metadata.namespace" => "/metadata/namespace",
        "metadata.uid" => "/metadata/uid",
        "spec.nodeName" => "/spec/nodeName",
        "spec.serviceAccountName" => "/spec/serviceAccountName",
        "status.hostIP" => "/status/hostIP",
        "status.podIP" => "/status/podIP",
        "status.podIPs" | "status.hostIPs" => {
            let key = if path == "status.podIPs" {
                "/status/podIPs"
            } else {
                "/status/hostIPs"
            };
            return arr(pod, key).iter().map(|v| s(v, "/ip")).collect::<Vec<_>>().join(",");
        }
        _ => return String::new(),
    };
    s(pod, ptr).to_string()
}

fn resource_field_value(c: &Value, rf: &Value) -> String {
    let resource = s(rf, "/resource");
    let divisor = rf
        .pointer("/divisor")
        .and_then(Quantity::from_json)
        .filter(|q| !q.is_zero())
        .unwrap_or_else(|| Quantity::parse("1").unwrap_or_default());
    let Some((kind, name)) = resource.split_once('.') else {
        return String::new();
    };
    let q = c
        .pointer(&format!("/resources/{kind}/{name}"))
        .and_then(Quantity::from_json)
        .unwrap_or_default();
    match name {
        "cpu" => {
            let v = (q.milli_value() as f64 / divisor.milli_value() as f64).ceil() as i64;
            v.to_string()
        }
        "memory" | "ephemeral-storage" => {
            let v = (q.value() as f64 / divisor.value() as f64).ceil() as i64;
            v.to_string()
        }
        _ => String::new(),
    }
}

fn describe_env(c: &Value, pod: Option<&Value>, w: &mut PrefixWriter) {
    let env = arr(c, "/env");
    let none = if env.is_empty() { "\t<none>" } else { "" };
    w.write(2, &format!("Environment:{none}\n"));
    for e in env {
        let name = s(e, "/name");
        let Some(from) = e.pointer("/valueFrom") else {
            for (n, part) in s(e, "/value").split('\n').enumerate() {
                if n == 0 {
                    w.write(3, &format!("{name}:\t{part}\n"));
                } else {
                    w.write(3, &format!("\t{part}\n"));
                }
            }
            continue;
        };
        if let Some(f) = from.pointer("/fieldRef") {
            let value = pod.map(|p| field_value(p, s(f, "/fieldPath"))).unwrap_or_default();
            w.write(
                3,
                &format!("{name}:\t{value} ({}:{})\n", s(f, "/apiVersion"), s(f, "/fieldPath")),
            );
        } else if let Some(rf) = from.pointer("/resourceFieldRef") {
            let resource = s(rf, "/resource");
            let mut value = resource_field_value(c, rf);
            if value == "0" && (resource == "limits.cpu" || resource == "limits.memory") {
                value = "node allocatable".into();
            }
            w.write(3, &format!("{name}:\t{value} ({resource})\n"));
        } else if let Some(r) = from.pointer("/secretKeyRef") {
            w.write(
                3,
                &format!(
                    "{name}:\t<set to the key '{}' in secret '{}'>\tOptional: {}\n",
                    s(r, "/key"),
                    s(r, "/name"),
                    b(r, "/optional")
                ),
            );
        } else if let Some(r) = from.pointer("/configMapKeyRef") {
            w.write(
                3,
                &format!(
                    "{name}:\t<set to the key '{}' of config map '{}'>\tOptional: {}\n",
                    s(r, "/key"),
                    s(r, "/name"),
                    b(r, "/optional")
                ),
            );
        }
    }
}

fn describe_mounts(c: &Value, w: &mut PrefixWriter) {
    let mut mounts: Vec<&Value> = arr(c, "/volumeMounts").iter().collect();
    let none = if mounts.is_empty() { "\t<none>" } else { "" };
    w.write(2, &format!("Mounts:{none}\n"));
    mounts.sort_by(|a, b| s(a, "/mountPath").cmp(s(b, "/mountPath")));
    for m in mounts {
        let mut flags = vec![if b(m, "/readOnly") {
            "ro".to_string()
        } else {
            "rw".to_string()
        }];
        let sub = s(m, "/subPath");
        if !sub.is_empty() {
            flags.push(format!("path={sub:?}"));
        }
        w.write(
            3,
            &format!("{} from {} ({})\n", s(m, "/mountPath"), s(m, "/name"), flags.join(",")),
        );
    }
    let mut devices: Vec<&Value> = arr(c, "/volumeDevices").iter().collect();
    if !devices.is_empty() {
        w.write(2, &format!("Devices:{none}\n"));
        devices.sort_by(|a, b| s(a, "/devicePath").cmp(s(b, "/devicePath")));
        for d in devices {
            w.write(3, &format!("{} from {}\n", s(d, "/devicePath"), s(d, "/name")));
        }
    }
}

/// The pod's QoS class: the recorded one, else computed from requests and limits.
pub(crate) fn qos_class(pod: &Value) -> String {
    let recorded = s(pod, "/status/qosClass");
    if !recorded.is_empty() {
        return recorded.to_string();
    }
    let mut requests: std::collections::BTreeMap<&str, Quantity> = Default::default();
    let mut limits: std::collections::BTreeMap<&str, Quantity> = Default::default();
    let mut guaranteed = true;
    let mut collect = |r: &'_ Value, guaranteed: &mut bool| {
        for (kind, into) in [("/requests", &mut requests), ("/limits", &mut limits)] {
            let mut found = 0;
            for name in ["cpu", "memory"] {
                let q = r
                    .pointer(&format!("{kind}/{name}"))
                    .and_then(Quantity::from_json)
                    .filter(|q| *q > Quantity::default());
                if let Some(q) = q {
                    found += 1;
                    into.entry(name).or_default().add(&q);
                }
            }
            if kind == "/limits" && found < 2 {
                *guaranteed = false;
            }
        }
    };
    if let Some(r) = pod.pointer("/spec/resources") {
        collect(r, &mut guaranteed);
    } else {
        for c in arr(pod, "/spec/initContainers")
            .iter()
            .chain(arr(pod, "/spec/containers"))
        {
            collect(c.pointer("/resources").unwrap_or(&Value::Null), &mut guaranteed);
        }
    }
    if requests.is_empty() && limits.is_empty() {
        return "BestEffort".into();
    }
    if guaranteed
        && requests.len() == limits.len()
        && requests.iter().all(|(k, v)| {
            limits
                .get(k)
                .is_some_and(|l| l.partial_cmp(v) == Some(std::cmp::Ordering::Equal))
        })
    {
        return "Guaranteed".into();
    }
    "Burstable".into()
}
