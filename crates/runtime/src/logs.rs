//! Container output to a file in the CRI log format:
//! `2026-11-22T10:00:00.123456789Z stdout F line`, with `P` for the pieces of a line longer
//! than 16 KiB (containerd's buffer size) and `F` for the piece that completes it, rotated
//! like the kubelet's `--container-log-max-size` / `--container-log-max-files`
//! ([`RotatingLog`]).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// Log rotation limits (upstream kubelet defaults: 10 MiB, 5 files).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogRotation {
    /// Rotate once the current file has reached this many bytes.
    pub max_size: u64,
    /// Files kept per container log, the current one included (at least 2).
    pub max_files: u32,
}

/// The container's log file: appends whole records and, with a [`LogRotation`], renames the
/// file to `<log>.<YYYYMMDD-hhmmss>` once it passes the size (upstream's naming, e.g.
/// `0.log.20260101-120000`), starts a new one and deletes the oldest rotated files beyond
/// the limit. Rotated files are not compressed (upstream gzips all but the newest).
#[derive(Debug)]
pub(crate) struct RotatingLog {
    path: PathBuf,
    file: File,
    size: u64,
    rotation: Option<LogRotation>,
}

impl RotatingLog {
    pub(crate) fn open(path: &Path, rotation: Option<LogRotation>) -> io::Result<RotatingLog> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(RotatingLog {
            path: path.to_owned(),
            file,
            size,
            rotation,
        })
    }

    fn rotate(&mut self, rotation: LogRotation) -> io::Result<()> {
        let stamp = Timestamp::now().strftime("%Y%m%d-%H%M%S").to_string();
        // Several rotations within one second: `<stamp>`, `<stamp>.1`, `<stamp>.2`... and
        // never a name older files had (they may have been deleted meanwhile).
        let base = format!("{}.{stamp}", self.path.display());
        let last_same_second = rotated_files(&self.path)
            .iter()
            .filter_map(|p| rotation_key(&self.path, p))
            .filter(|(s, _)| *s == stamp)
            .map(|(_, n)| n)
            .max();
        let target = match last_same_second {
            None => PathBuf::from(&base),
            Some(n) => PathBuf::from(format!("{base}.{}", n + 1)),
        };
        fs::rename(&self.path, &target)?;
        self.file = OpenOptions::new().create(true).append(true).open(&self.path)?;
        self.size = 0;
        let keep = rotation.max_files.max(2) as usize - 1;
        let mut rotated = rotated_files(&self.path);
        if rotated.len() > keep {
            let excess = rotated.len() - keep;
            for old in rotated.drain(..excess) {
                fs::remove_file(old)?;
            }
        }
        Ok(())
    }
}

/// The rotated files of `log` (`<log>.<YYYYMMDD-hhmmss>[.<n>]`), oldest first.
pub(crate) fn rotated_files(log: &Path) -> Vec<PathBuf> {
    let Some(dir) = log.parent() else {
        return Vec::new();
    };
    let mut files: Vec<((String, u64), PathBuf)> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((rotation_key(log, &e.path())?, e.path())))
        .collect();
    files.sort();
    files.into_iter().map(|(_, path)| path).collect()
}

/// `(stamp, n)` of a rotated file of `log`, `None` for any other file.
fn rotation_key(log: &Path, file: &Path) -> Option<(String, u64)> {
    let name = log.file_name()?.to_str()?;
    let rest = file.file_name()?.to_str()?.strip_prefix(name)?.strip_prefix('.')?;
    let (stamp, n) = match rest.split_once('.') {
        Some((stamp, n)) => (stamp, n.parse().ok()?),
        None => (rest, 0),
    };
    let valid = stamp.len() == 15
        && stamp
            .bytes()
            .enumerate()
            .all(|(i, b)| if i == 8 { b == b'-' } else { b.is_ascii_digit() });
    valid.then(|| (stamp.to_owned(), n))
}

impl Write for RotatingLog {
    /// Writes all of `buf` (one record); rotates afterwards when the file is full, so a
    /// record is never split across files.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write_all(buf)?;
        self.size += buf.len() as u64;
        if let Some(rotation) = self.rotation
            && self.size >= rotation.max_size
        {
            self.rotate(rotation)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Longest content of one log record, as containerd's CRI plugin.
pub(crate) const MAX_LINE: usize = 16 * 1024;

/// Which stream a record came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// Formats a timestamp as containerd does (RFC 3339, UTC, always nine fractional digits).
pub(crate) fn format_timestamp(ts: Timestamp) -> String {
    format!("{}.{:09}Z", ts.strftime("%Y-%m-%dT%H:%M:%S"), ts.subsec_nanosecond())
}

/// Splits one stream's bytes into CRI records.
#[derive(Debug)]
pub(crate) struct LineBuffer {
    stream: Stream,
    pending: Vec<u8>,
}

impl LineBuffer {
    pub(crate) fn new(stream: Stream) -> Self {
        LineBuffer {
            stream,
            pending: Vec::new(),
        }
    }

    /// Adds bytes read from the stream and writes every complete record.
    pub(crate) fn push(&mut self, data: &[u8], now: Timestamp, out: &mut impl Write) -> io::Result<()> {
        self.pending.extend_from_slice(data);
        let mut start = 0;
        loop {
            let rest = &self.pending[start..];
            match rest.iter().position(|&b| b == b'\n') {
                Some(nl) if nl <= MAX_LINE => {
                    write_record(out, now, self.stream, 'F', &rest[..nl])?;
                    start += nl + 1;
                }
                _ if rest.len() > MAX_LINE => {
                    write_record(out, now, self.stream, 'P', &rest[..MAX_LINE])?;
                    start += MAX_LINE;
                }
                _ => break,
            }
        }
        self.pending.drain(..start);
        Ok(())
    }

    /// Writes what is left at end of stream as a final record.
    pub(crate) fn finish(&mut self, now: Timestamp, out: &mut impl Write) -> io::Result<()> {
        if !self.pending.is_empty() {
            write_record(out, now, self.stream, 'F', &self.pending)?;
            self.pending.clear();
        }
        Ok(())
    }
}

fn write_record(out: &mut impl Write, now: Timestamp, stream: Stream, tag: char, content: &[u8]) -> io::Result<()> {
    let mut record = Vec::with_capacity(content.len() + 48);
    record.extend_from_slice(format_timestamp(now).as_bytes());
    record.push(b' ');
    record.extend_from_slice(stream.name().as_bytes());
    record.push(b' ');
    record.push(tag as u8);
    record.push(b' ');
    record.extend_from_slice(content);
    record.push(b'\n');
    // One write per record: with O_APPEND readers never see half a record.
    out.write_all(&record)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_keeps_at_most_max_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("0.log");
        let rotation = LogRotation {
            max_size: 100,
            max_files: 3,
        };
        let mut log = RotatingLog::open(&path, Some(rotation)).expect("open");
        let mut buf = LineBuffer::new(Stream::Stdout);
        for i in 0..40 {
            buf.push(format!("line {i:02}\n").as_bytes(), ts(), &mut log)
                .expect("push");
        }
        let rotated = rotated_files(&path);
        assert_eq!(rotated.len(), 2, "{rotated:?}");
        for file in &rotated {
            let name = file.file_name().and_then(|n| n.to_str()).expect("name");
            assert!(
                name.starts_with("0.log.") && name.len() >= "0.log.20260101-120000".len(),
                "{name}"
            );
            // Each file holds whole records and stays near the limit.
            let text = fs::read_to_string(file).expect("read");
            assert!(text.ends_with('\n') && text.len() < 100 + 60, "{text:?}");
        }
        // The newest records are in the current file, the ones before in the newest rotated
        // file; the oldest were deleted.
        let current = fs::read_to_string(&path).expect("read");
        let newest_rotated = fs::read_to_string(&rotated[1]).expect("read");
        let oldest_kept = fs::read_to_string(&rotated[0]).expect("read");
        let last = |t: &str| t.lines().last().map(|l| l[l.len() - 2..].to_owned());
        let first = |t: &str| t.lines().next().map(|l| l[l.len() - 2..].to_owned());
        assert_eq!(last(&current).or(last(&newest_rotated)), Some("39".to_owned()));
        assert!(first(&oldest_kept) > Some("00".to_owned()), "{oldest_kept}");
        let count = |t: &str| t.lines().count();
        assert!(count(&current) + count(&newest_rotated) + count(&oldest_kept) < 40);
        // Other files in the directory are left alone.
        fs::write(dir.path().join("1.log"), "x").expect("write");
        fs::write(dir.path().join("0.log.notes"), "x").expect("write");
        assert_eq!(rotated_files(&path).len(), 2);
    }

    #[test]
    fn without_rotation_the_file_grows() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("0.log");
        let mut log = RotatingLog::open(&path, None).expect("open");
        for _ in 0..100 {
            log.write_all(b"0123456789\n").expect("write");
        }
        assert_eq!(fs::metadata(&path).expect("meta").len(), 1100);
        assert!(rotated_files(&path).is_empty());
    }

    fn ts() -> Timestamp {
        "2026-11-22T10:00:00.1234Z".parse().expect("timestamp")
    }

    #[test]
    fn full_and_partial_lines() {
        let mut out = Vec::new();
        let mut buf = LineBuffer::new(Stream::Stdout);
        buf.push(b"hello\nwor", ts(), &mut out).expect("push");
        buf.push(b"ld\n", ts(), &mut out).expect("push");
        buf.push(b"tail", ts(), &mut out).expect("push");
        buf.finish(ts(), &mut out).expect("finish");
        assert_eq!(
            String::from_utf8(out).expect("utf8"),
            "2026-11-22T10:00:00.123400000Z stdout F hello\n\
             2026-11-22T10:00:00.123400000Z stdout F world\n\
             2026-11-22T10:00:00.123400000Z stdout F tail\n"
        );
    }

    #[test]
    fn long_lines_are_split_into_partials() {
        let mut out = Vec::new();
        let mut buf = LineBuffer::new(Stream::Stderr);
        let mut line = vec![b'a'; MAX_LINE * 2 + 10];
        line.push(b'\n');
        buf.push(&line, ts(), &mut out).expect("push");
        let text = String::from_utf8(out).expect("utf8");
        let records: Vec<&str> = text.lines().collect();
        assert_eq!(records.len(), 3);
        assert!(records[0].starts_with("2026-11-22T10:00:00.123400000Z stderr P aaa"));
        assert!(records[1].contains(" stderr P "));
        assert_eq!(
            records[2],
            format!("2026-11-22T10:00:00.123400000Z stderr F {}", "a".repeat(10))
        );
        assert_eq!(records[0].len(), 30 + " stderr P ".len() + MAX_LINE);
    }
}
