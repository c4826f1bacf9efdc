//! Golden tests for `kubectl describe hpa`: ours and upstream kubectl 1.37 describe the same
//! HorizontalPodAutoscalers (with a full status, behavior and an event, and without any
//! status) and must print the same report.

mod common;

use anyhow::{Context, Result};
use common::Clients;

const OBJECTS: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: app
        image: nginx
        resources:
          requests: {cpu: 100m, memory: 64Mi}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: web
  labels: {app: web}
  annotations: {team: blue}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 2
  maxReplicas: 10
  metrics:
  - type: Resource
    resource:
      name: cpu
      target: {type: Utilization, averageUtilization: 50}
  - type: Resource
    resource:
      name: memory
      target: {type: AverageValue, averageValue: 100Mi}
  - type: Pods
    pods:
      metric: {name: packets-per-second}
      target: {type: AverageValue, averageValue: 1k}
  - type: Object
    object:
      metric: {name: requests-per-second}
      describedObject: {apiVersion: networking.k8s.io/v1, kind: Ingress, name: main-route}
      target: {type: Value, value: 10k}
  - type: External
    external:
      metric: {name: queue_messages_ready}
      target: {type: AverageValue, averageValue: "30"}
  - type: ContainerResource
    containerResource:
      name: cpu
      container: app
      target: {type: Utilization, averageUtilization: 60}
  behavior:
    scaleDown:
      stabilizationWindowSeconds: 300
      policies:
      - {type: Percent, value: 100, periodSeconds: 15}
    scaleUp:
      stabilizationWindowSeconds: 0
      selectPolicy: Min
      policies:
      - {type: Percent, value: 100, periodSeconds: 15}
      - {type: Pods, value: 4, periodSeconds: 15}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: bare
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  maxReplicas: 3
  metrics:
  - type: Resource
    resource:
      name: cpu
      target: {type: Utilization, averageUtilization: 50}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: values
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 1
  maxReplicas: 4
  metrics:
  - type: External
    external:
      metric: {name: "queue \"depth\""}
      target: {type: Value, value: 500m}
  - type: Object
    object:
      metric: {name: hits}
      describedObject: {apiVersion: v1, kind: Service, name: web}
      target: {type: AverageValue, averageValue: 2Gi}
  - type: ContainerResource
    containerResource:
      name: memory
      container: app
      target: {type: AverageValue, averageValue: 256Mi}
  behavior:
    scaleDown:
      selectPolicy: Disabled
---
apiVersion: autoscaling/v1
kind: HorizontalPodAutoscaler
metadata:
  name: legacy
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  maxReplicas: 5
  targetCPUUtilizationPercentage: 70
"#;

/// What a controller would have reported: replicas, one current value per metric, conditions.
const STATUS: &str = r#"{"status": {
  "currentReplicas": 2, "desiredReplicas": 3,
  "currentMetrics": [
    {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 72, "averageValue": "72m"}}},
    {"type": "Resource", "resource": {"name": "memory", "current": {"averageValue": "50Mi"}}},
    {"type": "Pods", "pods": {"metric": {"name": "packets-per-second"}, "current": {"averageValue": "2500"}}},
    {"type": "Object", "object": {"metric": {"name": "requests-per-second"},
      "describedObject": {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "main-route"},
      "current": {"value": "2k"}}},
    {"type": "External", "external": {"metric": {"name": "queue_messages_ready"}, "current": {"averageValue": "12"}}}
  ],
  "conditions": [
    {"type": "AbleToScale", "status": "True", "reason": "SucceededRescale",
     "message": "the HPA controller was able to update the target scale to 3",
     "lastTransitionTime": "2026-01-02T03:04:05Z"},
    {"type": "ScalingActive", "status": "True", "reason": "ValidMetricFound",
     "message": "the HPA was able to successfully calculate a replica count from cpu resource utilization (percentage of request)",
     "lastTransitionTime": "2026-01-02T03:04:05Z"},
    {"type": "ScalingLimited", "status": "False", "reason": "DesiredWithinRange",
     "message": "the desired count is within the acceptable range",
     "lastTransitionTime": "2026-01-02T03:04:05Z"}
  ]}}"#;

fn event(namespace: &str, uid: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Event
metadata:
  name: web.rescale
involvedObject:
  apiVersion: autoscaling/v2
  kind: HorizontalPodAutoscaler
  name: web
  namespace: {namespace}
  uid: {uid}
type: Normal
reason: SuccessfulRescale
message: "New size: 3; reason: cpu resource utilization (percentage of request) above target"
source: {{component: horizontal-pod-autoscaler}}
count: 1
firstTimestamp: "2026-01-02T03:04:05Z"
lastTimestamp: "2026-01-02T03:04:05Z"
"#
    )
}

#[test]
fn describe_hpa_matches_upstream() -> Result<()> {
    let clients = Clients::new("dhpa")?;
    let ns = clients.namespace.clone();
    clients.apply_with(&clients.upstream, OBJECTS)?.ok()?;
    clients
        .upstream(&[
            "-n",
            &ns,
            "patch",
            "hpa",
            "web",
            "--subresource=status",
            "--type=merge",
            "-p",
            STATUS,
        ])?
        .ok()?;
    let uid = clients
        .upstream(&["-n", &ns, "get", "hpa", "web", "-o", "jsonpath={.metadata.uid}"])?
        .ok()?
        .stdout;
    clients.apply_with(&clients.upstream, &event(&ns, &uid))?.ok()?;

    let full = clients.same(&["describe", "hpa", "web"])?;
    for line in [
        "  resource cpu on pods  (as a percentage of request):  ",
        "72% (",
        "  \"packets-per-second\" on pods:",
        "  resource memory on pods:",
        "Deployment pods:",
        "Select Policy: Min",
        "ScalingLimited",
        "SuccessfulRescale",
    ] {
        anyhow::ensure!(full.stdout.contains(line), "missing {line:?} in:\n{}", full.stdout);
    }
    let bare = clients.same(&["describe", "hpa", "bare"])?;
    anyhow::ensure!(
        bare.stdout.contains("(as a percentage of request):  <unknown> / 50%"),
        "no <unknown> current value in:\n{}",
        bare.stdout
    );
    // Other metric sources and targets, a behavior the server completes with its defaults,
    // an HPA created as autoscaling/v1 (shown as v2, as upstream does).
    let values = clients.same(&["describe", "hpa", "values"])?;
    anyhow::ensure!(values.stdout.contains("Select Policy: Disabled"), "{}", values.stdout);
    let legacy = clients.same(&["describe", "hpa", "legacy"])?;
    anyhow::ensure!(legacy.stdout.contains("<unknown> / 70%"), "{}", legacy.stdout);
    // Several objects at once (no events), the long resource name, the autoscaling/v1 name.
    clients.same(&["describe", "hpa"])?;
    clients.same(&["describe", "horizontalpodautoscalers.v1.autoscaling", "bare"])?;
    clients
        .same(&["describe", "hpa", "missing"])
        .context("a missing HPA fails the same way")?;
    Ok(())
}
