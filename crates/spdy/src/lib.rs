//! SPDY/3.1, the framing `kubectl port-forward` (and the exec fallback) speaks: frames and
//! header compression ([`frame`]) and sessions with many concurrent streams over any async
//! byte stream ([`session`]). Only what Kubernetes streaming needs: no server push, no
//! flow-control enforcement, no CREDENTIAL frames.
//!
//! **Architecture Invariant:** nothing here knows about Kubernetes; stream headers such as
//! `streamType` or `requestID` are interpreted by the caller.

pub mod dictionary;
pub mod frame;
pub mod idle;
pub mod session;

pub use frame::{Decoder, Encoder, FLAG_FIN, Frame, Headers, header};
pub use idle::IdleClock;
pub use session::{Role, Session, Stream, StreamReader, StreamWriter};

/// What can go wrong on a SPDY connection.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("unsupported SPDY version {0}")]
    Version(u16),
    #[error("control frame of type {kind} too short ({length} bytes)")]
    Short { kind: u16, length: usize },
    #[error("invalid header block: {0}")]
    HeaderBlock(String),
    #[error("header compression: {0}")]
    Compression(String),
    #[error("frame payload of {0} bytes is too large")]
    TooLarge(usize),
    #[error("control frame type {0} cannot be encoded")]
    Unencodable(u16),
    #[error("stream {0} was reset")]
    Reset(u32),
    #[error("the session is closed")]
    Closed,
    #[error("stream ids are exhausted")]
    Exhausted,
}
