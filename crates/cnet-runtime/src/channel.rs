//! The typed messages between the processes of a container, and their wire formats.
//!
//! - [`InitMessage`]: the container's init process -> its supervisor, one JSON datagram each
//!   over a `SOCK_SEQPACKET` socketpair whose init end is close-on-exec: a successful `execve`
//!   closes it, so after [`InitMessage::Ready`] the supervisor reads either end-of-file (the
//!   program runs) or [`InitMessage::ExecFailed`].
//! - [`Frame`]: a client (the CLI) <-> the supervisor, over a stream socket: output and input
//!   bytes, and [`Message`]s (requests and replies). Each frame is `tag (1 byte), length (4 bytes,
//!   big-endian), payload`.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::sys::socket::{MsgFlags, recv, send};
use serde::{Deserialize, Serialize};

/// Init -> supervisor, during the start of the container process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum InitMessage {
    /// Namespaces joined, root filesystem pivoted, hostname set: about to exec.
    Ready,
    /// Setting up the container failed (a mount, pivot_root…): the message says what.
    SetupFailed { message: String },
    /// The program could not be executed; `exit_code` is 126 (not executable) or 127 (not found).
    ExecFailed { errno: i32, exit_code: i32, message: String },
}

impl InitMessage {
    /// Sends one message as one datagram.
    pub fn send(&self, fd: &impl AsFd) -> io::Result<()> {
        let data = serde_json::to_vec(self).expect("InitMessage serializes");
        send(fd.as_fd().as_raw_fd(), &data, MsgFlags::empty()).map_err(io::Error::from)?;
        Ok(())
    }

    /// The next message; `None` at end-of-file (the init end was closed, e.g. by a successful exec).
    pub fn recv(fd: &OwnedFd) -> io::Result<Option<InitMessage>> {
        // The datagram's own size (MSG_TRUNC), so the buffer is no larger than the message.
        let size = loop {
            match recv(fd.as_raw_fd(), &mut [], MsgFlags::MSG_PEEK | MsgFlags::MSG_TRUNC) {
                Err(nix::errno::Errno::EINTR) => continue,
                other => break other.map_err(io::Error::from)?,
            }
        };
        let mut buf = vec![0u8; size];
        let n = loop {
            match recv(fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Err(nix::errno::Errno::EINTR) => continue,
                other => break other.map_err(io::Error::from)?,
            }
        };
        if n == 0 {
            return Ok(None);
        }
        serde_json::from_slice(&buf[..n]).map(Some).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }
}

/// Requests of a client and replies of the supervisor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// The container process runs (pid as the host sees it).
    Started { pid: i32 },
    /// The container could not be started; Docker's exit code for it.
    StartFailed { message: String, exit_code: i32 },
    /// The container has exited for good (no restart follows); sent to attached clients and
    /// as the reply to `Stop` and `Wait`.
    Exited { exit_code: i32 },
    /// Stop: SIGTERM, then SIGKILL after `timeout_secs`; no restart. Replied with `Exited`.
    Stop { timeout_secs: u64 },
    /// Send a signal; the restart policy no longer applies. Replied with `Done`.
    Kill { signal: i32 },
    /// Receive output from now on (and send input).
    Attach,
    /// Reply `Exited` when the container has exited for good.
    Wait,
    /// The client's terminal size changed (`-t`).
    Resize { rows: u16, cols: u16 },
    /// A request was carried out.
    Done,
    /// A request failed.
    Failed { message: String },
}

/// One unit on a client connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    Stdin(Vec<u8>),
    /// The client's stdin ended.
    StdinEof,
    Message(Message),
}

const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const STDIN: u8 = 3;
const STDIN_EOF: u8 = 4;
const MESSAGE: u8 = 5;
const HEADER: usize = 5;
const MAX_FRAME: usize = 16 << 20;

impl Frame {
    pub fn encode(&self) -> Vec<u8> {
        let (tag, payload): (u8, std::borrow::Cow<'_, [u8]>) = match self {
            Frame::Stdout(b) => (STDOUT, b.into()),
            Frame::Stderr(b) => (STDERR, b.into()),
            Frame::Stdin(b) => (STDIN, b.into()),
            Frame::StdinEof => (STDIN_EOF, (&[][..]).into()),
            Frame::Message(m) => (MESSAGE, serde_json::to_vec(m).expect("Message serializes").into()),
        };
        let mut out = Vec::with_capacity(HEADER + payload.len());
        out.push(tag);
        out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        out.extend_from_slice(&payload);
        out
    }

    /// Writes the frame in one call.
    pub fn write_to(&self, w: &mut impl Write) -> io::Result<()> {
        w.write_all(&self.encode())?;
        w.flush()
    }

    /// Reads one frame; `None` at a clean end-of-file.
    pub fn read_from(r: &mut impl Read) -> io::Result<Option<Frame>> {
        let mut header = [0u8; HEADER];
        let mut got = 0;
        while got < HEADER {
            match r.read(&mut header[got..]) {
                Ok(0) if got == 0 => return Ok(None),
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let len = u32::from_be_bytes(header[1..].try_into().expect("4 bytes")) as usize;
        if len > MAX_FRAME {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "frame too large"));
        }
        let mut payload = vec![0u8; len];
        r.read_exact(&mut payload)?;
        decode(header[0], payload).map(Some)
    }
}

fn decode(tag: u8, payload: Vec<u8>) -> io::Result<Frame> {
    Ok(match tag {
        STDOUT => Frame::Stdout(payload),
        STDERR => Frame::Stderr(payload),
        STDIN => Frame::Stdin(payload),
        STDIN_EOF => Frame::StdinEof,
        MESSAGE => {
            Frame::Message(serde_json::from_slice(&payload).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?)
        }
        other => return Err(io::Error::new(io::ErrorKind::InvalidData, format!("unknown frame tag {other}"))),
    })
}

/// Collects bytes read from a non-blocking connection and yields the complete frames.
#[derive(Debug, Default)]
pub struct FrameBuffer {
    buf: Vec<u8>,
}

impl FrameBuffer {
    pub fn extend(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete frame, if one has arrived.
    pub fn next_frame(&mut self) -> io::Result<Option<Frame>> {
        if self.buf.len() < HEADER {
            return Ok(None);
        }
        let len = u32::from_be_bytes(self.buf[1..HEADER].try_into().expect("4 bytes")) as usize;
        if len > MAX_FRAME {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "frame too large"));
        }
        if self.buf.len() < HEADER + len {
            return Ok(None);
        }
        let tag = self.buf[0];
        let payload = self.buf[HEADER..HEADER + len].to_vec();
        self.buf.drain(..HEADER + len);
        decode(tag, payload).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let frames = vec![
            Frame::Stdout(b"hello\n".to_vec()),
            Frame::StdinEof,
            Frame::Message(Message::Stop { timeout_secs: 2 }),
            Frame::Message(Message::StartFailed { message: "x".into(), exit_code: 127 }),
        ];
        let mut wire = Vec::new();
        for f in &frames {
            f.write_to(&mut wire).unwrap();
        }
        let mut r = &wire[..];
        for f in &frames {
            assert_eq!(Frame::read_from(&mut r).unwrap().as_ref(), Some(f));
        }
        assert_eq!(Frame::read_from(&mut r).unwrap(), None);

        let mut b = FrameBuffer::default();
        b.extend(&wire[..3]);
        assert_eq!(b.next_frame().unwrap(), None);
        b.extend(&wire[3..]);
        for f in &frames {
            assert_eq!(b.next_frame().unwrap().as_ref(), Some(f));
        }
    }
}
