//! `kaji logs`: every component's log in one stream, each line tagged with its component (and
//! node): merged in time order (the components log RFC 3339 UTC timestamps first, so the text
//! sorts as time), or followed as the files grow with `-f`.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::state::{self, Cluster};

/// `kaji logs` flags.
#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    /// The cluster.
    #[arg(long, default_value = "kaji")]
    pub name: String,
    /// Only logs whose tag contains one of these words (`kubelet`, `node1`, `kube-apiserver`...).
    pub filters: Vec<String>,
    /// Keep printing lines as they are written.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Only the last N lines of each log (all when negative).
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub tail: i64,
}

/// One component's log file and the tag its lines get.
#[derive(Debug)]
struct Source {
    tag: String,
    path: PathBuf,
}

pub fn logs(args: &LogsArgs) -> Result<()> {
    let cluster = Cluster::load(&args.name)?;
    let dir = state::cluster_dir(&cluster.name)?.join("logs");
    let sources: Vec<Source> = sources(&cluster, &dir)
        .into_iter()
        .filter(|s| args.filters.is_empty() || args.filters.iter().any(|f| s.tag.contains(f.as_str())))
        .collect();
    if sources.is_empty() {
        bail!(
            "no log matches {}: the tags are {}",
            args.filters.join(" "),
            self::sources(&cluster, &dir)
                .iter()
                .map(|s| s.tag.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let width = sources.iter().map(|s| s.tag.len()).max().unwrap_or(0);
    let mut stdout = std::io::stdout().lock();
    let mut offsets = Vec::new();
    let mut merged = Vec::new();
    for source in &sources {
        let text = std::fs::read(&source.path).unwrap_or_default();
        offsets.push(complete_prefix_len(&text) as u64);
        let text = String::from_utf8_lossy(&text[..complete_prefix_len(&text)]).into_owned();
        let mut entries = entries(&text);
        if args.tail >= 0 {
            let keep = usize::try_from(args.tail).unwrap_or(usize::MAX);
            entries.drain(..entries.len().saturating_sub(keep));
        }
        merged.extend(entries.into_iter().map(|entry| (entry, source.tag.as_str())));
    }
    // Stable: entries of one file keep their order; equal timestamps keep file order.
    merged.sort_by(|(a, _), (b, _)| a.timestamp.cmp(&b.timestamp));
    for (entry, tag) in &merged {
        for line in &entry.lines {
            writeln!(stdout, "{tag:<width$} | {line}")?;
        }
    }
    stdout.flush()?;
    if !args.follow {
        return Ok(());
    }
    loop {
        for (source, offset) in sources.iter().zip(offsets.iter_mut()) {
            let grown = read_from(&source.path, offset)?;
            for line in grown.lines() {
                writeln!(stdout, "{:<width$} | {line}", source.tag)?;
            }
        }
        stdout.flush()?;
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The cluster's logs: the control plane's, then each node's kubelet and kube-proxy, tagged
/// `component` or `component/node`.
fn sources(cluster: &Cluster, dir: &Path) -> Vec<Source> {
    let mut sources: Vec<Source> = ["kube-apiserver", "kube-scheduler", "kube-controller-manager"]
        .into_iter()
        .map(|component| Source {
            tag: component.to_string(),
            path: dir.join(format!("{component}.log")),
        })
        .collect();
    for node in &cluster.nodes {
        for component in ["kubelet", "kube-proxy"] {
            sources.push(Source {
                tag: format!("{component}/{}", node.name),
                path: dir.join(format!("{component}-{}.log", node.name)),
            });
        }
    }
    sources
}

/// One log entry: a line starting with a timestamp and the lines after it that don't (a
/// panic's backtrace, a multi-line message).
#[derive(Debug, PartialEq)]
struct Entry {
    timestamp: String,
    lines: Vec<String>,
}

fn entries(text: &str) -> Vec<Entry> {
    let mut entries: Vec<Entry> = Vec::new();
    for line in text.lines() {
        match (timestamp(line), entries.last_mut()) {
            (None, Some(last)) => last.lines.push(line.to_string()),
            (stamp, _) => entries.push(Entry {
                timestamp: stamp.unwrap_or_default().to_string(),
                lines: vec![line.to_string()],
            }),
        }
    }
    entries
}

/// The RFC 3339 timestamp a line starts with (`2026-11-23T08:00:00.123456Z`), if any.
fn timestamp(line: &str) -> Option<&str> {
    let stamp = line.split_whitespace().next()?;
    let bytes = stamp.as_bytes();
    let shaped = bytes.len() >= 20
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes[10] == b'T'
        && bytes[13] == b':'
        && bytes[..4].iter().all(u8::is_ascii_digit);
    shaped.then_some(stamp)
}

/// The length of `text` up to and including its last newline (a line being written is left for
/// the next read).
fn complete_prefix_len(text: &[u8]) -> usize {
    text.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1)
}

/// The complete lines written to `path` since `offset`, advancing it; a truncated file is read
/// from its start again.
fn read_from(path: &Path, offset: &mut u64) -> Result<String> {
    let Ok(mut file) = std::fs::File::open(path) else {
        return Ok(String::new());
    };
    let len = file.metadata()?.len();
    if len < *offset {
        *offset = 0;
    }
    file.seek(SeekFrom::Start(*offset))?;
    let mut grown = Vec::new();
    file.read_to_end(&mut grown)
        .with_context(|| format!("reading {}", path.display()))?;
    let complete = complete_prefix_len(&grown);
    *offset += complete as u64;
    Ok(String::from_utf8_lossy(&grown[..complete]).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuation_lines_stay_with_their_entry() {
        let text = "2026-11-23T08:00:00.000001Z  INFO a: one\nthread 'main' panicked\n  at x.rs\n2026-11-23T08:00:01.000001Z  WARN b: two\n";
        let parsed = entries(text);
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0].lines.len(), 3);
        assert_eq!(parsed[1].timestamp, "2026-11-23T08:00:01.000001Z");
    }

    #[test]
    fn lines_before_any_timestamp_form_their_own_entry() {
        let parsed = entries("starting\n2026-11-23T08:00:00.000001Z  INFO a: one\n");
        assert_eq!(parsed[0].timestamp, "");
        assert_eq!(parsed[0].lines, vec!["starting"]);
    }

    #[test]
    fn only_complete_lines_are_read_and_truncation_restarts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.log");
        std::fs::write(&path, "one\ntw").expect("write");
        let mut offset = 0;
        assert_eq!(read_from(&path, &mut offset).expect("read"), "one\n");
        std::fs::write(&path, "one\ntwo\n").expect("write");
        assert_eq!(read_from(&path, &mut offset).expect("read"), "two\n");
        std::fs::write(&path, "new\n").expect("write");
        assert_eq!(read_from(&path, &mut offset).expect("read"), "new\n");
    }
}
