//! The container's output log, `container.log`: JSON lines as Docker's json-file driver writes
//! them, `{"log":"line\n","stream":"stdout","time":"RFC 3339"}`. The supervisor writes it; `cnet logs`
//! reads it.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Context, Result, at};

pub const LOG_FILE: &str = "container.log";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

/// One line of output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub log: String,
    pub stream: Stream,
    pub time: String,
}

/// Appends output to the log, one entry per line (a partial line waits for its end, or for
/// [`LogWriter::flush`]).
#[derive(Debug)]
pub struct LogWriter {
    file: File,
    partial: [Vec<u8>; 2],
}

impl LogWriter {
    pub fn open(dir: &Path) -> Result<LogWriter> {
        let path = dir.join(LOG_FILE);
        let file = OpenOptions::new().create(true).append(true).open(&path).context(|| at("opening", &path))?;
        Ok(LogWriter { file, partial: [Vec::new(), Vec::new()] })
    }

    pub fn write(&mut self, stream: Stream, data: &[u8]) {
        let buf = &mut self.partial[stream as usize];
        buf.extend_from_slice(data);
        let Some(last) = buf.iter().rposition(|b| *b == b'\n') else { return };
        let complete: Vec<u8> = buf.drain(..=last).collect();
        let mut out = Vec::new();
        for line in complete.split_inclusive(|b| *b == b'\n') {
            out.extend(entry(stream, line));
        }
        let _ = self.file.write_all(&out);
    }

    /// Writes what is left of a partial line of `stream`.
    pub fn flush(&mut self, stream: Stream) {
        let buf = std::mem::take(&mut self.partial[stream as usize]);
        if !buf.is_empty() {
            let _ = self.file.write_all(&entry(stream, &buf));
        }
    }
}

fn entry(stream: Stream, line: &[u8]) -> Vec<u8> {
    let e = Entry { log: String::from_utf8_lossy(line).into_owned(), stream, time: crate::time::now_rfc3339() };
    let mut v = serde_json::to_vec(&e).expect("log entry serializes");
    v.push(b'\n');
    v
}

/// Reads the log from a position, entry by entry.
#[derive(Debug)]
pub struct LogReader {
    reader: BufReader<File>,
    line: String,
}

impl LogReader {
    pub fn open(dir: &Path) -> Result<LogReader> {
        let path = dir.join(LOG_FILE);
        let file = match File::open(&path) {
            Ok(f) => f,
            // Nothing logged yet.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                File::open("/dev/null").context(|| "opening /dev/null".into())?
            }
            Err(e) => return Err(crate::error::Error::Io { context: at("opening", &path), source: e }),
        };
        Ok(LogReader { reader: BufReader::new(file), line: String::new() })
    }

    /// The next complete entry, if one has been written (a half-written line is left for later).
    pub fn next_entry(&mut self) -> Option<Entry> {
        loop {
            let n = self.reader.read_line(&mut self.line).ok()?;
            if n == 0 {
                return None;
            }
            if !self.line.ends_with('\n') {
                // Incomplete: rewind and try again later.
                let back = self.line.len() as i64;
                self.line.clear();
                let _ = self.reader.seek(SeekFrom::Current(-back));
                return None;
            }
            let parsed = serde_json::from_str(self.line.trim_end());
            self.line.clear();
            if let Ok(e) = parsed {
                return Some(e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_and_partials_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = LogWriter::open(dir.path()).unwrap();
        w.write(Stream::Stdout, b"a\nb");
        w.write(Stream::Stderr, b"err\n");
        w.write(Stream::Stdout, b"c\n");
        w.write(Stream::Stdout, b"tail");
        w.flush(Stream::Stdout);
        let mut r = LogReader::open(dir.path()).unwrap();
        let got: Vec<(String, Stream)> = std::iter::from_fn(|| r.next_entry()).map(|e| (e.log, e.stream)).collect();
        assert_eq!(
            got,
            vec![
                ("a\n".into(), Stream::Stdout),
                ("err\n".into(), Stream::Stderr),
                ("bc\n".into(), Stream::Stdout),
                ("tail".into(), Stream::Stdout)
            ]
        );
    }
}
