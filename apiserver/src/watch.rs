//! Watch streams served from the watch cache: chunked JSON, one `{"type":…,"object":…}` per
//! line, with upstream's start semantics (state first for an unset or `0` resourceVersion,
//! replay after a given one, WatchList's initial events closed by a bookmark), filtered
//! watches that turn objects leaving the filter into DELETED, periodic bookmarks, and 410 as an
//! ERROR event when the requested revision has left the cache's window.

use std::sync::Arc;
use std::time::Duration;

use api::ResourceDef;
use bytes::{BufMut, Bytes, BytesMut};
use serde_json::json;
use storage::Revision;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use crate::cache::{Broadcast, CachedEvent, CachedObject, EventType, WatchStart};
use crate::error::{ApiError, ApiResult};
use crate::request::{ListOptions, parse_rv};
use crate::store::{Filter, Store};

const BOOKMARK_INTERVAL: Duration = Duration::from_secs(30);
/// Largest chunk a watcher assembles from events that are already queued.
const MAX_CHUNK: usize = 64 * 1024;

fn frame(event_type: &str, object: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(object.len() + 32);
    out.put_slice(b"{\"type\":\"");
    out.put_slice(event_type.as_bytes());
    out.put_slice(b"\",\"object\":");
    out.put_slice(object);
    out.put_slice(b"}\n");
    out.freeze()
}

/// How a watcher wants objects: as themselves, as one-row Tables (`kubectl get -w`), or as
/// their metadata only (metadata informers).
#[derive(Clone, Copy, Debug)]
pub enum Format {
    Json,
    Table {
        version: api::table::TableVersion,
        include: api::table::IncludeObject,
    },
    Partial {
        version: api::table::TableVersion,
    },
}

/// Encodes objects for one watcher; a Table stream carries column definitions only in its
/// first event, as upstream's.
struct Encoder {
    def: &'static ResourceDef,
    format: Format,
    headers_sent: bool,
}

impl Encoder {
    fn object(&mut self, object: &CachedObject) -> Bytes {
        match self.format {
            Format::Json => match self.def.conversion {
                None => object.json.clone(),
                Some(_) => Bytes::from(serde_json::to_vec(&Store::served(self.def, object)).unwrap_or_default()),
            },
            Format::Table { version, include } => {
                let served = Store::served(self.def, object);
                let meta = json!({"resourceVersion": object.revision.to_string()});
                let table = api::table::table_as(
                    version,
                    self.def,
                    std::slice::from_ref(&served),
                    include,
                    !self.headers_sent,
                    meta,
                    jiff::Timestamp::now(),
                );
                self.headers_sent = true;
                Bytes::from(serde_json::to_vec(&table).unwrap_or_default())
            }
            Format::Partial { version } => {
                let partial = api::table::partial_object_metadata(version, &Store::served(self.def, object));
                Bytes::from(serde_json::to_vec(&partial).unwrap_or_default())
            }
        }
    }
}

/// A BOOKMARK: an object of the watched kind (or a PartialObjectMetadata, converted as every
/// object of the stream) carrying only the resourceVersion.
fn bookmark(def: &ResourceDef, format: Format, revision: Revision, initial_events_end: bool) -> Bytes {
    let mut metadata = json!({"resourceVersion": revision.to_string()});
    if initial_events_end {
        metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    let (kind, api_version) = match format {
        Format::Partial { version } => ("PartialObjectMetadata".to_string(), version.api_version().to_string()),
        _ => (def.kind.to_string(), def.api_version()),
    };
    let object = json!({"kind": kind, "apiVersion": api_version, "metadata": metadata});
    frame("BOOKMARK", object.to_string().as_bytes())
}

/// The frames an event produces for a watcher with `filter` (zero or one).
fn filtered(encoder: &mut Encoder, filter: &Filter<'_>, event: &CachedEvent) -> Option<Bytes> {
    let now = filter.matches(&event.object);
    let before = event.prev.as_ref().is_some_and(|p| filter.matches(p));
    // The event as it happened, in the stored version: one shared frame for every watcher.
    let natural = match event.event_type {
        EventType::Added => now,
        EventType::Modified => now && before,
        EventType::Deleted => before || now,
    };
    if natural && matches!(encoder.format, Format::Json) && encoder.def.conversion.is_none() {
        return Some(
            event
                .frame
                .get_or_init(|| frame(event.event_type.as_str(), &event.object.json))
                .clone(),
        );
    }
    match event.event_type {
        EventType::Added if now => Some(frame("ADDED", &encoder.object(&event.object))),
        EventType::Modified if now && before => Some(frame("MODIFIED", &encoder.object(&event.object))),
        EventType::Modified if now => Some(frame("ADDED", &encoder.object(&event.object))),
        EventType::Modified if before => {
            // Left the filter: the watcher sees its last matching state go, at this revision.
            let prev = event.prev.as_ref()?;
            let gone = CachedObject::new(prev.key.clone(), prev.value.clone(), event.revision);
            Some(frame("DELETED", &encoder.object(&gone)))
        }
        EventType::Deleted if before || now => Some(frame("DELETED", &encoder.object(&event.object))),
        _ => None,
    }
}

/// An ERROR event carrying a Status.
pub fn error_frame(error: &ApiError) -> Bytes {
    frame("ERROR", error.status().to_string().as_bytes())
}

/// Starts a watch and returns its byte stream.
pub async fn watch(
    store: Arc<Store>,
    def: &'static ResourceDef,
    namespace: Option<String>,
    options: ListOptions,
    format: Format,
) -> ApiResult<ReceiverStream<Result<Bytes, std::convert::Infallible>>> {
    let prefix = Store::scope_prefix(def, namespace.as_deref());
    let rv = options.resource_version.clone();
    let send_initial = options.send_initial_events;
    // Where the stream starts: the current state (as ADDED events) or after a revision.
    let after = match (send_initial, rv.as_deref()) {
        (Some(true), _) | (None, None) | (None, Some("0")) => {
            store.fresh_enough(def, rv.as_deref()).await?;
            None
        }
        (Some(false), None) | (Some(false), Some("0")) => {
            store.fresh_enough(def, rv.as_deref()).await?;
            Some(store.cache(def).revision())
        }
        (_, Some(rv)) => {
            let revision = parse_rv(rv)?;
            store.fresh_enough(def, Some(rv)).await?;
            Some(revision)
        }
    };
    let cache = store.cache(def);
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::convert::Infallible>>(64);
    let started = cache.watch(&prefix, after);
    let timeout = Duration::from_secs(match options.timeout_seconds {
        Some(t) if t > 0 => t as u64,
        // Upstream: --min-request-timeout (1800 s) times a random factor in [1, 2).
        _ => 1800 + rand::random_range(0..1800),
    });
    tokio::spawn(async move {
        let (start, mut events) = match started {
            Ok(started) => started,
            Err(error) => {
                let _ = tx.send(Ok(error_frame(&error))).await;
                return;
            }
        };
        let filter = Filter::new(def, namespace.as_deref(), &options);
        let mut encoder = Encoder {
            def,
            format,
            headers_sent: false,
        };
        let mut last: Revision;
        match start {
            WatchStart::State { objects, revision } => {
                for object in objects.iter().filter(|o| filter.matches(o)) {
                    if tx.send(Ok(frame("ADDED", &encoder.object(object)))).await.is_err() {
                        return;
                    }
                }
                last = revision;
                if send_initial == Some(true) && tx.send(Ok(bookmark(def, format, last, true))).await.is_err() {
                    return;
                }
            }
            WatchStart::Replay {
                events: replay,
                revision,
            } => {
                for event in &replay {
                    if let Some(bytes) = filtered(&mut encoder, &filter, event)
                        && tx.send(Ok(bytes)).await.is_err()
                    {
                        return;
                    }
                }
                last = revision;
            }
        }
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut bookmarks = tokio::time::interval(BOOKMARK_INTERVAL);
        bookmarks.tick().await;
        loop {
            tokio::select! {
                _ = &mut deadline => return,
                _ = tx.closed() => return,
                _ = bookmarks.tick(), if options.allow_bookmarks => {
                    if tx.send(Ok(bookmark(def, format, last, false))).await.is_err() {
                        return;
                    }
                }
                received = events.recv() => {
                    // Whatever else is already queued goes out in the same chunk: fewer HTTP/2
                    // frames, TLS records and syscalls when events come in bursts.
                    let mut chunk = BytesMut::new();
                    let mut next = Some(received);
                    while let Some(received) = next.take() {
                        match received {
                            Ok(Broadcast::Event(event)) => {
                                if event.revision <= last {
                                    // Already delivered by the replay.
                                } else {
                                    last = event.revision;
                                    if event.object.key.starts_with(&prefix)
                                        && let Some(bytes) = filtered(&mut encoder, &filter, &event)
                                    {
                                        chunk.extend_from_slice(&bytes);
                                    }
                                }
                            }
                            Ok(Broadcast::Progress(revision)) => last = last.max(revision),
                            // The watcher fell behind or the cache was rebuilt: end the stream
                            // after what it has; the client resumes from the last revision.
                            Ok(Broadcast::Reset) | Err(_) => {
                                if !chunk.is_empty() {
                                    let _ = tx.send(Ok(chunk.freeze())).await;
                                }
                                return;
                            }
                        }
                        if chunk.len() < MAX_CHUNK {
                            next = match events.try_recv() {
                                Ok(item) => Some(Ok(item)),
                                Err(broadcast::error::TryRecvError::Empty) => None,
                                Err(broadcast::error::TryRecvError::Lagged(n)) => {
                                    Some(Err(broadcast::error::RecvError::Lagged(n)))
                                }
                                Err(broadcast::error::TryRecvError::Closed) => Some(Err(broadcast::error::RecvError::Closed)),
                            };
                        }
                    }
                    if !chunk.is_empty() && tx.send(Ok(chunk.freeze())).await.is_err() {
                        return;
                    }
                }
            }
        }
    });
    Ok(ReceiverStream::new(rx))
}
