//! The `Volumes:` section of pods and pod templates, one block per volume source.

use serde_json::Value;

use super::common::{arr, b, go_slice, go_value, i, s, str_map};
use super::pod::quantity_text;
use super::writer::PrefixWriter;

/// Writes `Volumes:` (or `Volumes:\t<none>`), prefixed by `space` inside pod templates.
pub(crate) fn describe_volumes(volumes: &[Value], w: &mut PrefixWriter, space: &str) {
    if volumes.is_empty() {
        w.write(0, &format!("{space}Volumes:\t<none>\n"));
        return;
    }
    w.write(0, &format!("{space}Volumes:\n"));
    let name_indent = if space.is_empty() { "" } else { " " };
    for v in volumes {
        w.write(1, &format!("{name_indent}{}:\n", s(v, "/name")));
        describe_source(v, w);
    }
}

fn lines(w: &mut PrefixWriter, kind: &str, fields: &[(&str, String)]) {
    let mut text = format!("Type:\t{kind}\n");
    for (k, v) in fields {
        text.push_str(&format!("    {k}:\t{v}\n"));
    }
    w.write(2, &text);
}

fn describe_source(v: &Value, w: &mut PrefixWriter) {
    let get = |k: &str| v.get(k).filter(|x| !x.is_null());
    if let Some(h) = get("hostPath") {
        let t = s(h, "/type");
        lines(
            w,
            "HostPath (bare host directory volume)",
            &[
                ("Path", s(h, "/path").into()),
                (
                    "HostPathType",
                    if h.get("type").is_some() {
                        t.into()
                    } else {
                        "<none>".into()
                    },
                ),
            ],
        );
    } else if let Some(e) = get("emptyDir") {
        let size = e
            .get("sizeLimit")
            .filter(|q| api::quantity::Quantity::from_json(q).is_some_and(|q| q > api::quantity::Quantity::default()))
            .map(quantity_text)
            .unwrap_or_else(|| "<unset>".into());
        lines(
            w,
            "EmptyDir (a temporary directory that shares a pod's lifetime)",
            &[("Medium", s(e, "/medium").into()), ("SizeLimit", size)],
        );
    } else if let Some(sec) = get("secret") {
        lines(
            w,
            "Secret (a volume populated by a Secret)",
            &[
                ("SecretName", s(sec, "/secretName").into()),
                ("Optional", b(sec, "/optional").to_string()),
            ],
        );
    } else if let Some(cm) = get("configMap") {
        lines(
            w,
            "ConfigMap (a volume populated by a ConfigMap)",
            &[
                ("Name", s(cm, "/name").into()),
                ("Optional", b(cm, "/optional").to_string()),
            ],
        );
    } else if let Some(nfs) = get("nfs") {
        lines(
            w,
            "NFS (an NFS mount that lasts the lifetime of a pod)",
            &[
                ("Server", s(nfs, "/server").into()),
                ("Path", s(nfs, "/path").into()),
                ("ReadOnly", b(nfs, "/readOnly").to_string()),
            ],
        );
    } else if let Some(pvc) = get("persistentVolumeClaim") {
        lines(
            w,
            "PersistentVolumeClaim (a reference to a PersistentVolumeClaim in the same namespace)",
            &[
                ("ClaimName", s(pvc, "/claimName").into()),
                ("ReadOnly", b(pvc, "/readOnly").to_string()),
            ],
        );
    } else if get("ephemeral").is_some() {
        w.write(
            2,
            "Type:\tEphemeralVolume (an inline specification for a volume that gets created and deleted with the pod)\n",
        );
    } else if let Some(d) = get("downwardAPI") {
        w.write(
            2,
            "Type:\tDownwardAPI (a volume populated by information about the pod)\n    Items:\n",
        );
        for item in arr(d, "/items") {
            if let Some(f) = item.get("fieldRef") {
                w.write(3, &format!("{} -> {}\n", s(f, "/fieldPath"), s(item, "/path")));
            }
            if let Some(r) = item.get("resourceFieldRef") {
                w.write(3, &format!("{} -> {}\n", s(r, "/resource"), s(item, "/path")));
            }
        }
    } else if let Some(p) = get("projected") {
        w.write(
            2,
            "Type:\tProjected (a volume that contains injected data from multiple sources)\n",
        );
        for src in arr(p, "/sources") {
            if let Some(sec) = src.get("secret") {
                w.write(
                    2,
                    &format!(
                        "SecretName:\t{}\n    Optional:\t{}\n",
                        s(sec, "/name"),
                        b(sec, "/optional")
                    ),
                );
            } else if src.get("downwardAPI").is_some() {
                w.write(2, "DownwardAPI:\ttrue\n");
            } else if let Some(cm) = src.get("configMap") {
                w.write(
                    2,
                    &format!(
                        "ConfigMapName:\t{}\n    Optional:\t{}\n",
                        s(cm, "/name"),
                        b(cm, "/optional")
                    ),
                );
            } else if let Some(t) = src.get("serviceAccountToken") {
                w.write(2, &format!("TokenExpirationSeconds:\t{}\n", i(t, "/expirationSeconds")));
            }
        }
    } else if let Some(csi) = get("csi") {
        lines(
            w,
            "CSI (a Container Storage Interface (CSI) volume source)",
            &[
                ("Driver", s(csi, "/driver").into()),
                ("FSType", s(csi, "/fsType").into()),
                ("ReadOnly", b(csi, "/readOnly").to_string()),
            ],
        );
        let attrs = str_map(csi, "/volumeAttributes");
        w.write(2, "VolumeAttributes:\t");
        if attrs.is_empty() {
            w.line("<none>");
        }
        for (n, (k, val)) in attrs.iter().enumerate() {
            if n != 0 {
                w.write(2, "");
                w.write(2, "\t");
            }
            let line = format!("{k}={val}");
            if line.len() > 140 {
                w.write(2, &format!("{}...\n", &line[..140]));
            } else {
                w.write(2, &format!("{line}\n"));
            }
        }
    } else if let Some(img) = get("image") {
        lines(
            w,
            "Image (a container image or OCI artifact)",
            &[
                ("Reference", s(img, "/reference").into()),
                ("PullPolicy", s(img, "/pullPolicy").into()),
            ],
        );
    } else if let Some(g) = get("gitRepo") {
        lines(
            w,
            "GitRepo (a volume that is pulled from git when the pod is created)",
            &[
                ("Repository", s(g, "/repository").into()),
                ("Revision", s(g, "/revision").into()),
            ],
        );
    } else if let Some(fc) = get("fc") {
        let wwns: Vec<&str> = arr(fc, "/targetWWNs").iter().filter_map(Value::as_str).collect();
        let lun = fc.get("lun").map(go_value).unwrap_or_else(|| "<none>".into());
        lines(
            w,
            "FC (a Fibre Channel disk)",
            &[
                ("TargetWWNs", wwns.join(", ")),
                ("LUN", lun),
                ("FSType", s(fc, "/fsType").into()),
                ("ReadOnly", b(fc, "/readOnly").to_string()),
            ],
        );
    } else if let Some(c) = get("cephfs") {
        lines(
            w,
            "CephFS (a CephFS mount on the host that shares a pod's lifetime)",
            &[
                ("Monitors", go_slice(arr(c, "/monitors"))),
                ("Path", s(c, "/path").into()),
                ("User", s(c, "/user").into()),
                ("SecretFile", s(c, "/secretFile").into()),
                (
                    "SecretRef",
                    c.get("secretRef")
                        .map(|r| format!("&{}", go_value(r)))
                        .unwrap_or_else(|| "nil".into()),
                ),
                ("ReadOnly", b(c, "/readOnly").to_string()),
            ],
        );
    } else {
        w.write(1, "<unknown>\n");
    }
}
