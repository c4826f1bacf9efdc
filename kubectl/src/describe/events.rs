//! The `Events:` table closing most reports, and the query that finds an object's events.

use jiff::{Timestamp, Zoned};
use serde_json::Value;

use super::common::{i, s, since, ts};
use super::writer::PrefixWriter;

/// The ordering key kubectl 1.37 uses: the last timestamp, else the event time.
fn event_time(e: &Value) -> Option<Timestamp> {
    ts(e, "/lastTimestamp").or_else(|| ts(e, "/eventTime"))
}

/// Writes the events table, oldest first, or `Events:\t<none>`.
pub(crate) fn describe_events(events: Option<&[Value]>, w: &mut PrefixWriter, now: &Zoned) {
    // No events section at all when events were not fetched (several objects described).
    let Some(events) = events else { return };
    if events.is_empty() {
        w.write(0, "Events:\t<none>\n");
        return;
    }
    w.flush();
    let mut sorted: Vec<&Value> = events.iter().collect();
    sorted.sort_by_key(|e| event_time(e));
    w.write(0, "Events:\n  Type\tReason\tAge\tFrom\tMessage\n");
    w.write(1, "----\t------\t----\t----\t-------\n");
    for e in sorted {
        let first = match ts(e, "/eventTime") {
            Some(t) => since(Some(t), now),
            None => since(ts(e, "/firstTimestamp"), now),
        };
        let interval = if e.pointer("/series").is_some_and(|v| !v.is_null()) {
            format!(
                "{} (x{} over {first})",
                since(ts(e, "/series/lastObservedTime"), now),
                i(e, "/series/count")
            )
        } else if i(e, "/count") > 1 {
            format!(
                "{} (x{} over {first})",
                since(ts(e, "/lastTimestamp"), now),
                i(e, "/count")
            )
        } else {
            first
        };
        let mut source = s(e, "/source/component");
        if source.is_empty() {
            source = s(e, "/reportingComponent");
        }
        let field_path = s(e, "/involvedObject/fieldPath");
        let message = if field_path.is_empty() {
            s(e, "/message").trim().to_string()
        } else {
            format!("{field_path}: {}", s(e, "/message").trim())
        };
        w.write(
            1,
            &format!(
                "{}\t{}\t{}\t{}\t{}\n",
                s(e, "/type"),
                s(e, "/reason"),
                interval,
                source,
                message
            ),
        );
    }
}

/// The field selector upstream uses to find events about an object (`kind` and `uid` optional).
pub(crate) fn field_selector(name: &str, namespace: &str, kind: Option<&str>, uid: Option<&str>) -> String {
    let mut parts = Vec::new();
    if let Some(kind) = kind {
        parts.push(format!("involvedObject.kind={kind}"));
    }
    parts.push(format!("involvedObject.name={name}"));
    parts.push(format!("involvedObject.namespace={namespace}"));
    if let Some(uid) = uid {
        parts.push(format!("involvedObject.uid={uid}"));
    }
    parts.join(",")
}

/// Keeps the events that really are about the object, for servers that ignore field selectors.
pub(crate) fn matches(e: &Value, name: &str, namespace: &str, kind: Option<&str>, uid: Option<&str>) -> bool {
    s(e, "/involvedObject/name") == name
        && s(e, "/involvedObject/namespace") == namespace
        && kind.is_none_or(|k| s(e, "/involvedObject/kind") == k)
        && uid.is_none_or(|u| s(e, "/involvedObject/uid") == u)
}
