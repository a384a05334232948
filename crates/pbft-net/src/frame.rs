//! Length-prefixed frames.
//!
//! ```text
//! frame = len:u32 kind:u8 payload   (len = payload bytes, big-endian)
//! ```
//!
//! The length is checked against the reader's limit before anything is
//! allocated, and the payload buffer grows only as its bytes arrive, so a
//! peer that announces a large frame and sends nothing costs nothing.

use std::fmt;
use std::io::{self, Read, Write};

/// The largest payload of a data frame: one encoded message.
///
/// It is the node's 16 MiB line limit (`pbft_node::lines::MAX_LINE_BYTES`),
/// which bounds the largest message the core may send: a batch is at most
/// 8 MiB in `Request::size` bytes (`--max-batch-bytes`), which already
/// counts the worst JSON escaping, so its pre-prepare's envelope fits with
/// room to spare. A frame carries what the stdio node would write as one
/// line, without the newline.
pub const MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;

/// The largest payload of a handshake frame. A hello is at most 300 bytes
/// (a client id is at most 255) and a proof is 64.
pub const MAX_HANDSHAKE_FRAME_BYTES: usize = 512;

/// Bytes before the payload: the length and the kind.
pub const HEADER_BYTES: usize = 5;

/// What a frame carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// One message for the driver.
    Data,
    /// Keeps an idle connection alive; empty, never delivered.
    Ping,
    /// The first handshake frame: protocol tag, claimed identity, nonce.
    Hello,
    /// The second handshake frame: a signature over the transcript.
    Proof,
}

impl Kind {
    /// The byte that stands for this kind on the wire.
    pub fn byte(self) -> u8 {
        match self {
            Kind::Data => 0x01,
            Kind::Ping => 0x02,
            Kind::Hello => 0x10,
            Kind::Proof => 0x11,
        }
    }

    /// The kind a byte stands for, if any.
    pub fn from_byte(byte: u8) -> Option<Kind> {
        match byte {
            0x01 => Some(Kind::Data),
            0x02 => Some(Kind::Ping),
            0x10 => Some(Kind::Hello),
            0x11 => Some(Kind::Proof),
            _ => None,
        }
    }
}

/// Why a frame could not be read.
#[derive(Debug)]
pub enum FrameError {
    /// The stream ended cleanly, between frames.
    Closed,
    /// The frame announces more bytes than the limit.
    TooLarge {
        /// The announced payload length.
        len: u64,
        /// The limit in force.
        limit: usize,
    },
    /// The kind byte is none of [`Kind`]'s.
    UnknownKind(u8),
    /// Reading failed, timed out, or the stream ended inside a frame.
    Io(io::Error),
}

impl FrameError {
    /// Whether this is a read timeout (the socket's read timeout passed).
    pub fn is_timeout(&self) -> bool {
        matches!(self, FrameError::Io(e)
            if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut))
    }
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Closed => f.write_str("the connection was closed"),
            FrameError::TooLarge { len, limit } => {
                write!(f, "a frame of {len} bytes is over the limit of {limit}")
            }
            FrameError::UnknownKind(byte) => write!(f, "unknown frame kind 0x{byte:02x}"),
            FrameError::Io(e) if self.is_timeout() => write!(f, "timed out: {e}"),
            FrameError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl From<io::Error> for FrameError {
    fn from(e: io::Error) -> Self {
        FrameError::Io(e)
    }
}

/// Writes one frame. The payload must be at most `u32::MAX` bytes (the
/// transport never sends one over [`MAX_FRAME_BYTES`]).
pub fn write_frame(out: &mut impl Write, kind: Kind, payload: &[u8]) -> io::Result<()> {
    let len = u32::try_from(payload.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame too large"))?;
    let mut header = [0u8; HEADER_BYTES];
    header[..4].copy_from_slice(&len.to_be_bytes());
    header[4] = kind.byte();
    out.write_all(&header)?;
    out.write_all(payload)
}

/// Reads one frame whose payload is at most `limit` bytes.
pub fn read_frame(input: &mut impl Read, limit: usize) -> Result<(Kind, Vec<u8>), FrameError> {
    let mut header = [0u8; HEADER_BYTES];
    let mut filled = 0;
    while filled < HEADER_BYTES {
        match input.read(&mut header[filled..]) {
            Ok(0) if filled == 0 => return Err(FrameError::Closed),
            Ok(0) => return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into()),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
    let kind = Kind::from_byte(header[4]).ok_or(FrameError::UnknownKind(header[4]))?;
    if len as u64 > limit as u64 {
        return Err(FrameError::TooLarge {
            len: len.into(),
            limit,
        });
    }
    let mut payload = Vec::new();
    let read = input.take(len.into()).read_to_end(&mut payload)?;
    if read < len as usize {
        return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
    }
    Ok((kind, payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: Kind, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        write_frame(&mut out, kind, payload).expect("in memory");
        out
    }

    #[test]
    fn frames_round_trip_back_to_back() {
        let mut bytes = frame(Kind::Data, b"hello");
        bytes.extend(frame(Kind::Ping, b""));
        bytes.extend(frame(Kind::Data, b""));
        let mut input = &bytes[..];
        assert_eq!(
            read_frame(&mut input, 16).ok(),
            Some((Kind::Data, b"hello".to_vec()))
        );
        assert_eq!(read_frame(&mut input, 16).ok(), Some((Kind::Ping, vec![])));
        assert_eq!(read_frame(&mut input, 16).ok(), Some((Kind::Data, vec![])));
        assert!(matches!(
            read_frame(&mut input, 16),
            Err(FrameError::Closed)
        ));
    }

    #[test]
    fn the_header_is_length_then_kind() {
        assert_eq!(frame(Kind::Data, b"ab"), [0, 0, 0, 2, 0x01, b'a', b'b']);
        for kind in [Kind::Data, Kind::Ping, Kind::Hello, Kind::Proof] {
            assert_eq!(Kind::from_byte(kind.byte()), Some(kind));
        }
    }

    #[test]
    fn an_oversized_length_is_refused_before_its_payload_is_read() {
        // Only the header: a reader that tried to read the payload would
        // report an early end instead.
        let bytes = [0xff, 0xff, 0xff, 0xff, 0x01];
        let result = read_frame(&mut &bytes[..], MAX_FRAME_BYTES);
        assert!(matches!(
            result,
            Err(FrameError::TooLarge {
                len: 0xffff_ffff,
                limit: MAX_FRAME_BYTES
            })
        ));
        let one_over = frame(Kind::Data, &[0; 9]);
        assert!(matches!(
            read_frame(&mut &one_over[..], 8),
            Err(FrameError::TooLarge { len: 9, .. })
        ));
        assert!(read_frame(&mut &one_over[..], 9).is_ok());
    }

    #[test]
    fn garbage_and_truncation_are_errors() {
        assert!(matches!(
            read_frame(&mut &b"\0\0\0\0\x7f"[..], 8),
            Err(FrameError::UnknownKind(0x7f))
        ));
        let whole = frame(Kind::Data, b"abcdef");
        for cut in 1..whole.len() {
            match read_frame(&mut &whole[..cut], 8) {
                Err(FrameError::Io(e)) => assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof),
                other => panic!("cut at {cut}: {other:?}"),
            }
        }
    }
}
