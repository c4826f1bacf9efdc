#!/usr/bin/env python3
"""The official Kubernetes python client against a kaji apiserver.

Usage: test_client.py KUBECONFIG

Plain asserts, no pytest. Exits 0 when every check passes, non-zero with a message otherwise.
"""

import sys
import time
import traceback
import uuid

try:
    from kubernetes import client, config, watch
    from kubernetes.client.rest import ApiException
except ImportError as error:  # pragma: no cover - reported by the Rust wrapper too
    print(f"cannot import the kubernetes package ({error}): run `pip install kubernetes`", file=sys.stderr)
    sys.exit(2)

MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
TIMEOUT = 30  # seconds, per request


def meta(name, labels=None):
    return client.V1ObjectMeta(name=name, labels=labels)


def expect_status(status, call, *args, **kwargs):
    """Runs `call` and checks that it fails with HTTP `status`."""
    try:
        call(*args, **kwargs)
    except ApiException as error:
        assert error.status == status, f"{call.__name__}: expected HTTP {status}, got {error.status}: {error.body}"
        return error
    raise AssertionError(f"{call.__name__}: expected HTTP {status}, but the call succeeded")


def success(answer):
    """Checks a DELETE's answer is a Success Status (the client may hand back a dict or a model)."""
    body = answer if isinstance(answer, dict) else answer.to_dict()
    assert body.get("kind") == "Status" and body.get("status") == "Success", body


def names(items):
    return sorted(item.metadata.name for item in items)


def check_namespaces(v1):
    found = {ns.metadata.name for ns in v1.list_namespace(_request_timeout=TIMEOUT).items}
    for name in ["default", "kube-system", "kube-public", "kube-node-lease"]:
        assert name in found, f"namespace {name} missing from {sorted(found)}"
    for ns in v1.list_namespace().items:
        if ns.metadata.name == "default":
            assert ns.status.phase == "Active", ns.status


def check_pods(v1, ns):
    pod = client.V1Pod(
        metadata=meta("web", {"app": "web"}),
        spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="nginx:1.25")]),
    )
    created = v1.create_namespaced_pod(ns, pod, _request_timeout=TIMEOUT)
    assert created.metadata.uid, created.metadata
    assert created.metadata.resource_version, created.metadata
    assert created.metadata.creation_timestamp is not None, created.metadata

    expect_status(409, v1.create_namespaced_pod, ns, pod)

    got = v1.read_namespaced_pod("web", ns)
    assert got.metadata.uid == created.metadata.uid
    assert got.spec.containers[0].image == "nginx:1.25"

    got.metadata.labels["tier"] = "frontend"
    replaced = v1.replace_namespaced_pod("web", ns, got)
    assert replaced.metadata.labels == {"app": "web", "tier": "frontend"}, replaced.metadata.labels
    assert int(replaced.metadata.resource_version) > int(got.metadata.resource_version)

    # `got` still carries the old resourceVersion: a stale replace is a 409 conflict.
    got.metadata.labels["tier"] = "stale"
    error = expect_status(409, v1.replace_namespaced_pod, "web", ns, got)
    assert "the object has been modified" in error.body, error.body

    patched = v1.patch_namespaced_pod(
        "web", ns, {"metadata": {"labels": {"patched": "yes"}}}, _content_type=STRATEGIC
    )
    assert patched.metadata.labels.get("patched") == "yes", patched.metadata.labels
    assert patched.metadata.labels.get("tier") == "frontend", patched.metadata.labels

    v1.delete_namespaced_pod("web", ns)
    expect_status(404, v1.read_namespaced_pod, "web", ns)


def check_configmaps(v1, ns):
    cm = client.V1ConfigMap(metadata=meta("settings", {"app": "cfg"}), data={"a": "1"})
    created = v1.create_namespaced_config_map(ns, cm)
    assert created.data == {"a": "1"}, created.data
    got = v1.read_namespaced_config_map("settings", ns)
    got.data["b"] = "2"
    replaced = v1.replace_namespaced_config_map("settings", ns, got)
    assert replaced.data == {"a": "1", "b": "2"}, replaced.data

    expect_status(409, v1.replace_namespaced_config_map, "settings", ns, got)

    patched = v1.patch_namespaced_config_map(
        "settings", ns, {"data": {"a": None, "c": "3"}}, _content_type=MERGE
    )
    assert patched.data == {"b": "2", "c": "3"}, patched.data
    # A list body is a JSON patch (the client's default content type for patches).
    patched = v1.patch_namespaced_config_map(
        "settings", ns, [{"op": "replace", "path": "/data/b", "value": "22"}]
    )
    assert patched.data == {"b": "22", "c": "3"}, patched.data

    success(v1.delete_namespaced_config_map("settings", ns))
    expect_status(404, v1.read_namespaced_config_map, "settings", ns)


def check_services(v1, ns):
    svc = client.V1Service(
        metadata=meta("web", {"app": "web"}),
        spec=client.V1ServiceSpec(
            type="NodePort",
            selector={"app": "web"},
            ports=[client.V1ServicePort(port=80, target_port=8080, protocol="TCP")],
        ),
    )
    created = v1.create_namespaced_service(ns, svc)
    ip = created.spec.cluster_ip
    octets = [int(part) for part in ip.split(".")]
    assert octets[0] == 10 and 96 <= octets[1] <= 111, f"clusterIP {ip} outside 10.96.0.0/12"
    node_port = created.spec.ports[0].node_port
    assert 30000 <= node_port <= 32767, f"nodePort {node_port}"

    got = v1.read_namespaced_service("web", ns)
    got.spec.selector = {"app": "web2"}
    replaced = v1.replace_namespaced_service("web", ns, got)
    assert replaced.spec.selector == {"app": "web2"}
    assert replaced.spec.cluster_ip == ip, replaced.spec.cluster_ip
    assert replaced.spec.ports[0].node_port == node_port

    patched = v1.patch_namespaced_service(
        "web", ns, {"metadata": {"labels": {"patched": "yes"}}}, _content_type=MERGE
    )
    assert patched.metadata.labels["patched"] == "yes"
    assert patched.spec.cluster_ip == ip

    v1.delete_namespaced_service("web", ns)
    expect_status(404, v1.read_namespaced_service, "web", ns)


def check_deployments(apps, ns):
    labels = {"app": "web"}
    deployment = client.V1Deployment(
        metadata=meta("web", labels),
        spec=client.V1DeploymentSpec(
            replicas=2,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(containers=[client.V1Container(name="web", image="nginx:1.25")]),
            ),
        ),
    )
    created = apps.create_namespaced_deployment(ns, deployment)
    assert created.metadata.generation == 1, created.metadata
    assert created.spec.replicas == 2

    got = apps.read_namespaced_deployment("web", ns)
    got.spec.replicas = 3
    replaced = apps.replace_namespaced_deployment("web", ns, got)
    assert replaced.spec.replicas == 3
    assert replaced.metadata.generation == 2, replaced.metadata

    expect_status(409, apps.replace_namespaced_deployment, "web", ns, got)

    patched = apps.patch_namespaced_deployment(
        "web", ns, {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}},
        _content_type=STRATEGIC,
    )
    assert patched.spec.template.spec.containers[0].image == "nginx:1.27"
    assert len(patched.spec.template.spec.containers) == 1

    scale = apps.read_namespaced_deployment_scale("web", ns)
    assert scale.spec.replicas == 3, scale
    apps.patch_namespaced_deployment_scale("web", ns, {"spec": {"replicas": 1}}, _content_type=MERGE)
    assert apps.read_namespaced_deployment("web", ns).spec.replicas == 1

    success(apps.delete_namespaced_deployment("web", ns))
    expect_status(404, apps.read_namespaced_deployment, "web", ns)


def check_pagination_and_selectors(v1, ns):
    expected = []
    for i in range(7):
        name = f"page-{i}"
        expected.append(name)
        labels = {"page": "yes", "parity": "odd" if i % 2 else "even"}
        v1.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=meta(name, labels), data={}))
    v1.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=meta("other", {"page": "no"}), data={}))

    seen = []
    token = None
    pages = 0
    while True:
        result = v1.list_namespaced_config_map(ns, label_selector="page=yes", limit=3, _continue=token)
        pages += 1
        assert len(result.items) <= 3, len(result.items)
        seen.extend(item.metadata.name for item in result.items)
        token = result.metadata._continue
        if not token:
            break
        assert pages < 10, "pagination does not end"
    assert pages >= 3, f"expected at least 3 pages, got {pages}"
    assert sorted(seen) == expected, f"paginated names {seen}"
    assert len(seen) == len(set(seen)), f"duplicates in {seen}"

    def selected(selector):
        return names(v1.list_namespaced_config_map(ns, label_selector=selector).items)

    assert selected("parity=odd") == ["page-1", "page-3", "page-5"], selected("parity=odd")
    assert selected("page!=yes") == ["other"], selected("page!=yes")
    assert selected("parity in (even)") == ["page-0", "page-2", "page-4", "page-6"]
    assert selected("!parity") == ["other"], selected("!parity")
    assert selected("page=yes,parity notin (even)") == ["page-1", "page-3", "page-5"]
    assert names(v1.list_namespaced_config_map(ns, field_selector="metadata.name=other").items) == ["other"]


def check_watch(v1, ns):
    start = v1.list_namespaced_config_map(ns).metadata.resource_version
    v1.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=meta("watched"), data={"v": "1"}))
    v1.patch_namespaced_config_map("watched", ns, {"data": {"v": "2"}}, _content_type=MERGE)
    v1.delete_namespaced_config_map("watched", ns)

    events = []
    deadline = time.monotonic() + 20
    w = watch.Watch()
    for event in w.stream(
        v1.list_namespaced_config_map, namespace=ns, resource_version=start, timeout_seconds=10,
        _request_timeout=30,
    ):
        events.append((event["type"], event["object"].metadata.name, event["object"].data))
        if len(events) == 3 or time.monotonic() > deadline:
            w.stop()
            break
    assert [(t, n) for t, n, _ in events] == [
        ("ADDED", "watched"),
        ("MODIFIED", "watched"),
        ("DELETED", "watched"),
    ], events
    assert events[0][2] == {"v": "1"} and events[1][2] == {"v": "2"}, events


def main():
    if len(sys.argv) != 2:
        print("usage: test_client.py KUBECONFIG", file=sys.stderr)
        return 2
    config.load_kube_config(config_file=sys.argv[1])
    v1 = client.CoreV1Api()
    apps = client.AppsV1Api()
    ns = "py-" + uuid.uuid4().hex[:10]
    checks = [
        ("namespaces", lambda: check_namespaces(v1)),
        ("create namespace", lambda: v1.create_namespace(client.V1Namespace(metadata=meta(ns)))),
        ("pods", lambda: check_pods(v1, ns)),
        ("configmaps", lambda: check_configmaps(v1, ns)),
        ("services", lambda: check_services(v1, ns)),
        ("deployments", lambda: check_deployments(apps, ns)),
        ("pagination and selectors", lambda: check_pagination_and_selectors(v1, ns)),
        ("watch", lambda: check_watch(v1, ns)),
    ]
    failed = []
    for name, check in checks:
        try:
            check()
            print(f"ok      {name}")
        except Exception:  # noqa: BLE001 - every failure is reported
            print(f"FAILED  {name}")
            traceback.print_exc(file=sys.stdout)
            failed.append(name)
    if failed:
        print(f"{len(failed)} of {len(checks)} checks failed: {', '.join(failed)}")
        return 1
    print(f"all {len(checks)} checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
