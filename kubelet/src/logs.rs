//! Container logs in the CRI format (`<RFC3339Nano> <stream> <P|F> <text>`): where they live
//! and how `/containerLogs` reads them (tail, sinceSeconds/sinceTime, timestamps, limitBytes,
//! follow until the container exits).

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;

/// Where a container attempt's log file lives, as upstream lays out `/var/log/pods`:
/// `<root>/<namespace>_<pod>_<uid>/<container>/<attempt>.log`.
pub fn log_path(root: &Path, namespace: &str, pod: &str, uid: &str, container: &str, attempt: u32) -> PathBuf {
    pod_log_dir(root, namespace, pod, uid)
        .join(container)
        .join(format!("{attempt}.log"))
}

/// The directory of a pod's logs.
pub fn pod_log_dir(root: &Path, namespace: &str, pod: &str, uid: &str) -> PathBuf {
    root.join(format!("{namespace}_{pod}_{uid}"))
}

/// The attempts that have a log file, in order.
pub fn attempts(container_dir: &Path) -> Vec<u32> {
    let mut out: Vec<u32> = std::fs::read_dir(container_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.strip_suffix(".log")?.parse().ok())
        .collect();
    out.sort_unstable();
    out
}

/// One parsed CRI log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line<'a> {
    pub timestamp: &'a str,
    pub stream: &'a str,
    pub partial: bool,
    pub text: &'a str,
}

/// Parses a CRI log line (without its newline); `None` when malformed.
pub fn parse_line(line: &str) -> Option<Line<'_>> {
    let mut parts = line.splitn(4, ' ');
    let timestamp = parts.next()?;
    let stream = parts.next()?;
    let tag = parts.next()?;
    let text = parts.next().unwrap_or("");
    Some(Line {
        timestamp,
        stream,
        partial: tag.split(':').next() == Some("P"),
        text,
    })
}

/// The query parameters of `/containerLogs` (upstream's `PodLogOptions`).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogOptions {
    #[serde(default, deserialize_with = "boolish")]
    pub follow: bool,
    #[serde(default, deserialize_with = "boolish")]
    pub previous: bool,
    #[serde(default, deserialize_with = "boolish")]
    pub timestamps: bool,
    pub tail_lines: Option<i64>,
    pub since_seconds: Option<i64>,
    pub since_time: Option<String>,
    pub limit_bytes: Option<i64>,
    pub stream: Option<String>,
}

fn boolish<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    let s: String = serde::Deserialize::deserialize(d)?;
    Ok(matches!(s.as_str(), "true" | "1" | "True"))
}

/// Filters and formats: turns CRI lines into what the user sees, honouring since, stream and
/// timestamps. Partial lines are joined with the following ones.
pub struct Formatter {
    since: Option<jiff::Timestamp>,
    timestamps: bool,
    stream: Option<String>,
    pending: Vec<u8>,
}

impl Formatter {
    pub fn new(options: &LogOptions, now: jiff::Timestamp) -> Formatter {
        let since = options
            .since_time
            .as_deref()
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .or_else(|| {
                options
                    .since_seconds
                    .and_then(|s| now.checked_sub(jiff::SignedDuration::from_secs(s)).ok())
            });
        Formatter {
            since,
            timestamps: options.timestamps,
            stream: options.stream.clone().filter(|s| s != "All"),
            pending: Vec::new(),
        }
    }

    /// The output for one file line, if it passes the filters.
    pub fn format(&mut self, raw: &str) -> Option<Vec<u8>> {
        let line = parse_line(raw)?;
        if let Some(since) = self.since
            && line.timestamp.parse::<jiff::Timestamp>().is_ok_and(|t| t < since)
        {
            return None;
        }
        if let Some(stream) = &self.stream
            && stream.to_lowercase() != line.stream
        {
            return None;
        }
        if self.timestamps && self.pending.is_empty() {
            self.pending.extend_from_slice(line.timestamp.as_bytes());
            self.pending.push(b' ');
        }
        self.pending.extend_from_slice(line.text.as_bytes());
        if line.partial {
            return None;
        }
        self.pending.push(b'\n');
        Some(std::mem::take(&mut self.pending))
    }
}

/// The last `n` complete lines of `text` (all when `n` is None), as line slices.
pub fn tail(text: &str, n: Option<i64>) -> Vec<&str> {
    let lines: Vec<&str> = text.lines().collect();
    match n {
        Some(n) if n >= 0 => {
            let n = n as usize;
            lines[lines.len().saturating_sub(n)..].to_vec()
        }
        _ => lines,
    }
}

/// Streams a container's log file per `options`. With `follow`, keeps reading new lines until
/// `still_running()` turns false and the file has no more data.
pub fn stream(
    path: PathBuf,
    options: LogOptions,
    still_running: impl Fn() -> bool + Send + 'static,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(16);
    tokio::spawn(async move {
        let mut budget = options.limit_bytes.filter(|l| *l > 0).map(|l| l as usize);
        let mut formatter = Formatter::new(&options, jiff::Timestamp::now());
        let send = |chunk: Vec<u8>, budget: &mut Option<usize>| {
            let mut chunk = chunk;
            if let Some(left) = budget {
                if chunk.len() > *left {
                    chunk.truncate(*left);
                }
                *left -= chunk.len();
            }
            chunk
        };
        let text = match tokio::fs::read(&path).await {
            Ok(bytes) => bytes,
            Err(error) => {
                let _ = tx.send(Err(error)).await;
                return;
            }
        };
        // Only complete lines now; a trailing partial write is read again when following.
        let complete = text.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let mut offset = complete as u64;
        let head = String::from_utf8_lossy(&text[..complete]).into_owned();
        let mut out = Vec::new();
        for line in tail(&head, options.tail_lines) {
            if let Some(formatted) = formatter.format(line) {
                out.extend(formatted);
            }
        }
        if !out.is_empty() {
            let chunk = send(out, &mut budget);
            if tx.send(Ok(Bytes::from(chunk))).await.is_err() {
                return;
            }
        }
        if !options.follow || budget == Some(0) {
            return;
        }
        let mut carry = Vec::new();
        loop {
            let running = still_running();
            let data = match read_from(&path, offset).await {
                Ok(data) => data,
                Err(_) => return,
            };
            if !data.is_empty() {
                let len = tokio::fs::metadata(&path).await.map(|m| m.len()).unwrap_or(0);
                offset = if len < offset + data.len() as u64 {
                    data.len() as u64
                } else {
                    offset + data.len() as u64
                };
                carry.extend_from_slice(&data);
                let complete = carry.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
                let lines: Vec<u8> = carry.drain(..complete).collect();
                let mut out = Vec::new();
                for line in String::from_utf8_lossy(&lines).lines() {
                    if let Some(formatted) = formatter.format(line) {
                        out.extend(formatted);
                    }
                }
                if !out.is_empty() {
                    let chunk = send(out, &mut budget);
                    if tx.send(Ok(Bytes::from(chunk))).await.is_err() || budget == Some(0) {
                        return;
                    }
                }
                continue;
            }
            if !running {
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                _ = tx.closed() => return,
            }
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

async fn read_from(path: &Path, offset: u64) -> std::io::Result<Vec<u8>> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let mut file = tokio::fs::File::open(path).await?;
    let len = file.metadata().await?.len();
    if len < offset {
        // Rotated (a new, shorter file): read it from the start.
        let mut buf = Vec::with_capacity(len as usize);
        file.read_to_end(&mut buf).await?;
        return Ok(buf);
    }
    if len == offset {
        return Ok(Vec::new());
    }
    file.seek(std::io::SeekFrom::Start(offset)).await?;
    let mut buf = Vec::with_capacity((len - offset) as usize);
    file.take(len - offset).read_to_end(&mut buf).await?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    const LOG: &str = "2026-11-22T10:00:00.000000001Z stdout F one\n\
                       2026-11-22T10:00:01.000000000Z stderr F two\n\
                       2026-11-22T10:00:02.000000000Z stdout P thr\n\
                       2026-11-22T10:00:02.000000001Z stdout F ee\n";

    async fn collect(path: PathBuf, options: LogOptions) -> String {
        let chunks: Vec<_> = stream(path, options, || false).collect().await;
        let bytes: Vec<u8> = chunks.into_iter().flat_map(|c| c.unwrap().to_vec()).collect();
        String::from_utf8(bytes).unwrap()
    }

    #[tokio::test]
    async fn reads_formats_and_filters() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        std::fs::write(&path, LOG).unwrap();
        assert_eq!(collect(path.clone(), LogOptions::default()).await, "one\ntwo\nthree\n");
        let tail2 = LogOptions {
            tail_lines: Some(2),
            ..Default::default()
        };
        assert_eq!(collect(path.clone(), tail2).await, "three\n");
        let stamps = LogOptions {
            timestamps: true,
            tail_lines: Some(3),
            ..Default::default()
        };
        assert_eq!(
            collect(path.clone(), stamps).await,
            "2026-11-22T10:00:01.000000000Z two\n2026-11-22T10:00:02.000000000Z three\n"
        );
        let since = LogOptions {
            since_time: Some("2026-11-22T10:00:00.5Z".into()),
            ..Default::default()
        };
        assert_eq!(collect(path.clone(), since).await, "two\nthree\n");
        let limit = LogOptions {
            limit_bytes: Some(6),
            ..Default::default()
        };
        assert_eq!(collect(path.clone(), limit).await, "one\ntw");
    }

    #[tokio::test]
    async fn follow_sees_new_lines_until_the_container_exits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        std::fs::write(&path, "2026-11-22T10:00:00Z stdout F first\n").unwrap();
        let running = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let flag = running.clone();
        let options = LogOptions {
            follow: true,
            ..Default::default()
        };
        let mut s = Box::pin(stream(path.clone(), options, move || {
            flag.load(std::sync::atomic::Ordering::SeqCst)
        }));
        assert_eq!(&s.next().await.unwrap().unwrap()[..], b"first\n");
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"2026-11-22T10:00:01Z stdout F second\n").unwrap();
        assert_eq!(&s.next().await.unwrap().unwrap()[..], b"second\n");
        running.store(false, std::sync::atomic::Ordering::SeqCst);
        assert!(s.next().await.is_none(), "the stream ends once the container exited");
    }

    #[test]
    fn paths_and_attempts() {
        let dir = tempfile::tempdir().unwrap();
        let p = log_path(dir.path(), "ns", "web", "u1", "app", 2);
        assert!(p.ends_with("ns_web_u1/app/2.log"));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        for a in [0, 2, 1] {
            std::fs::write(p.parent().unwrap().join(format!("{a}.log")), "").unwrap();
        }
        assert_eq!(attempts(p.parent().unwrap()), vec![0, 1, 2]);
        assert!(parse_line("garbage").is_none());
    }
}
