//! What both netns test files share: a network namespace made for one test, deleted on drop.

#![allow(dead_code)] // each test binary uses a different part

use std::collections::BTreeMap;
use std::io::Write;
use std::process::Command;

use k8s_openapi::api::discovery::v1::{Endpoint, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// A network namespace deleted on drop.
pub(crate) struct Netns(pub(crate) String);

impl Netns {
    /// Creates `<prefix>-<tag>-<pid>`, or panics: these tests run as root in CI and must not
    /// pass without having run.
    pub(crate) fn create(prefix: &str, tag: &str) -> Netns {
        let name = format!("{prefix}-{tag}-{}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        let status = Command::new("ip").args(["netns", "add", &name]).status();
        assert!(
            status.as_ref().is_ok_and(|s| s.success()),
            "ip netns add {name} failed ({status:?}); this test needs root"
        );
        Netns(name)
    }

    /// Runs `args` in the namespace, `stdin` fed to it; its stdout (panics when it fails).
    pub(crate) fn exec(&self, args: &[&str], stdin: Option<&str>) -> String {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.0])
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn ip netns exec");
        if let (Some(mut pipe), Some(text)) = (child.stdin.take(), stdin) {
            pipe.write_all(text.as_bytes()).expect("write stdin");
        }
        let output = child.wait_with_output().expect("wait");
        assert!(
            output.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

/// The EndpointSlice of Service `name` in `default`: `ips` on port 8080, on node `node`.
pub(crate) fn slice(name: &str, ips: &[&str], node: Option<&str>) -> EndpointSlice {
    EndpointSlice {
        metadata: ObjectMeta {
            namespace: Some("default".into()),
            name: Some(format!("{name}-x")),
            labels: Some(BTreeMap::from([("kubernetes.io/service-name".into(), name.into())])),
            ..Default::default()
        },
        address_type: "IPv4".into(),
        endpoints: Some(
            ips.iter()
                .map(|ip| Endpoint {
                    addresses: vec![ip.to_string()],
                    node_name: node.map(str::to_string),
                    ..Default::default()
                })
                .collect(),
        ),
        ports: Some(vec![EndpointPort {
            port: Some(8080),
            ..Default::default()
        }]),
    }
}
