//! Container output to a file in the CRI log format:
//! `2026-11-22T10:00:00.123456789Z stdout F line`, with `P` for the pieces of a line longer
//! than 16 KiB (containerd's buffer size) and `F` for the piece that completes it.

use std::io::{self, Write};

use jiff::Timestamp;

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
