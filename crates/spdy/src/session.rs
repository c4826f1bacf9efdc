//! A SPDY/3.1 session on any byte stream: a reader task decodes frames and routes them to
//! streams, a writer task encodes everything sent (one ordered queue, so SYN_REPLY always
//! precedes a stream's data and the header compression context sees frames in order).
//!
//! * Streams the peer opens (SYN_STREAM) come out of [`Session::accept`]; [`Session::open`]
//!   opens our own (odd ids for a client, even for a server).
//! * Each stream splits into a [`StreamReader`] (the peer's DATA, ending at its FIN) and a
//!   [`StreamWriter`] (SYN_REPLY, DATA, FIN, RST_STREAM).
//! * PINGs the peer starts are echoed; SETTINGS, WINDOW_UPDATE and HEADERS are accepted and
//!   ignored (no flow control is enforced, like moby/spdystream).
//! * GOAWAY stops [`Session::accept`]; the end of the byte stream resets every open stream.
//! * The connection is shut down once the session, its streams' writers and the reader task
//!   are all gone, or at once after [`Session::close_when_idle`]'s timeout (no stream opened
//!   and no DATA either way for that long; PINGs do not count).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, watch};

use crate::Error;
use crate::frame::{Decoder, Encoder, FLAG_FIN, Frame, Headers, rst};
use crate::idle::IdleClock;

/// The largest DATA payload this side sends.
const CHUNK: usize = 32 * 1024;
/// Frames queued for the writer.
const OUT_QUEUE: usize = 64;
/// DATA payloads queued per stream for its reader.
const IN_QUEUE: usize = 32;

/// Which side of the connection we are: decides stream id and ping id parity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Client,
    Server,
}

impl Role {
    /// Whether `id` (a stream or ping id) was chosen by the peer.
    fn peer_chose(self, id: u32) -> bool {
        (id % 2 == 1) == (self == Role::Server)
    }
}

struct Entry {
    /// The peer's DATA goes here until its FIN.
    data: Option<mpsc::Sender<Bytes>>,
    reset: Arc<watch::Sender<bool>>,
    local_fin: bool,
}

struct Shared {
    role: Role,
    out: mpsc::Sender<Frame>,
    streams: Mutex<HashMap<u32, Entry>>,
    next_id: Mutex<u32>,
    /// Touched by every stream opened and every DATA frame, either way.
    activity: IdleClock,
    /// Set to end the session: the writer flushes what is queued, both tasks stop and the
    /// connection is dropped.
    shutdown: watch::Sender<bool>,
}

impl Shared {
    fn streams(&self) -> std::sync::MutexGuard<'_, HashMap<u32, Entry>> {
        self.streams.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers stream `id` and builds its halves.
    fn register(self: &Arc<Self>, id: u32, headers: Headers, remote_fin: bool) -> Stream {
        let (data_tx, data_rx) = mpsc::channel(IN_QUEUE);
        let (reset_tx, reset_rx) = watch::channel(false);
        let reset_tx = Arc::new(reset_tx);
        self.streams().insert(
            id,
            Entry {
                data: (!remote_fin).then_some(data_tx),
                reset: reset_tx,
                local_fin: false,
            },
        );
        Stream {
            id,
            headers,
            reader: StreamReader { rx: data_rx },
            writer: StreamWriter {
                id,
                shared: self.clone(),
                reset: reset_rx,
            },
        }
    }
}

/// One SPDY session; dropping it does not end the connection while streams are in use.
pub struct Session {
    shared: Arc<Shared>,
    incoming: mpsc::Receiver<Stream>,
    closed: watch::Receiver<bool>,
}

impl Session {
    /// Starts the reader and writer tasks on `io` (needs a tokio runtime).
    pub fn new<IO>(io: IO, role: Role) -> Result<Session, Error>
    where
        IO: AsyncRead + AsyncWrite + Send + 'static,
    {
        let encoder = Encoder::new()?;
        let (read, write) = tokio::io::split(io);
        let (out_tx, out_rx) = mpsc::channel(OUT_QUEUE);
        let (incoming_tx, incoming_rx) = mpsc::channel(16);
        let (closed_tx, closed_rx) = watch::channel(false);
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let activity = IdleClock::new();
        let shared = Arc::new(Shared {
            role,
            out: out_tx,
            streams: Mutex::new(HashMap::new()),
            next_id: Mutex::new(if role == Role::Client { 1 } else { 2 }),
            activity: activity.clone(),
            shutdown: shutdown_tx,
        });
        tokio::spawn(write_loop(write, out_rx, encoder, activity, shutdown_rx.clone()));
        tokio::spawn(read_loop(read, shared.clone(), incoming_tx, closed_tx, shutdown_rx));
        Ok(Session {
            shared,
            incoming: incoming_rx,
            closed: closed_rx,
        })
    }

    /// The next stream the peer opens; `None` after GOAWAY or the end of the connection.
    pub async fn accept(&mut self) -> Option<Stream> {
        self.incoming.recv().await
    }

    /// Opens a stream (SYN_STREAM), half-closed at once when `fin`.
    pub async fn open(&self, headers: Headers, fin: bool) -> Result<Stream, Error> {
        let id = {
            let mut next = self.shared.next_id.lock().unwrap_or_else(|e| e.into_inner());
            let id = *next;
            *next = next.checked_add(2).filter(|n| *n < 1 << 31).ok_or(Error::Exhausted)?;
            id
        };
        let stream = self.shared.register(id, Headers::new(), false);
        stream
            .writer
            .send_frame(Frame::SynStream {
                stream_id: id,
                associated_id: 0,
                priority: 0,
                flags: if fin { FLAG_FIN } else { 0 },
                headers,
            })
            .await?;
        if fin {
            stream.writer.mark_local_fin();
        }
        Ok(stream)
    }

    /// Sends a PING with `id` (odd from a client, even from a server).
    pub async fn ping(&self, id: u32) -> Result<(), Error> {
        self.shared
            .out
            .send(Frame::Ping { id })
            .await
            .map_err(|_| Error::Closed)
    }

    /// Sends GOAWAY: no new streams, existing ones carry on.
    pub async fn go_away(&self) -> Result<(), Error> {
        self.shared
            .out
            .send(Frame::GoAway {
                last_good_id: 0,
                status: 0,
            })
            .await
            .map_err(|_| Error::Closed)
    }

    /// Ends the session once no stream was opened and no DATA flowed either way for `timeout`
    /// (PINGs keep the connection alive for the peer but are not activity): a GOAWAY, then
    /// the connection is closed and every stream ends.
    pub fn close_when_idle(&self, timeout: std::time::Duration) {
        let shared = self.shared.clone();
        let mut closed = self.closed.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = shared.activity.expired(timeout) => {}
                _ = closed.wait_for(|c| *c) => return,
            }
            tracing::debug!(?timeout, "spdy: idle, closing the session");
            let _ = shared
                .out
                .send(Frame::GoAway {
                    last_good_id: 0,
                    status: 0,
                })
                .await;
            shared.shutdown.send_replace(true);
        });
    }

    /// Resolves once the peer's byte stream has ended (or failed).
    pub async fn closed(&self) {
        let mut closed = self.closed.clone();
        let _ = closed.wait_for(|c| *c).await;
    }
}

/// A stream: the headers of its SYN_STREAM (empty for streams we opened) and its halves.
pub struct Stream {
    pub id: u32,
    pub headers: Headers,
    pub reader: StreamReader,
    pub writer: StreamWriter,
}

impl Stream {
    pub fn split(self) -> (StreamReader, StreamWriter) {
        (self.reader, self.writer)
    }
}

/// The peer's data on one stream.
pub struct StreamReader {
    rx: mpsc::Receiver<Bytes>,
}

impl StreamReader {
    /// The next DATA payload; `None` at the peer's FIN, a reset or the end of the session.
    pub async fn recv(&mut self) -> Option<Bytes> {
        self.rx.recv().await
    }
}

/// Our side of one stream.
#[derive(Clone)]
pub struct StreamWriter {
    id: u32,
    shared: Arc<Shared>,
    reset: watch::Receiver<bool>,
}

impl StreamWriter {
    pub fn id(&self) -> u32 {
        self.id
    }

    async fn send_frame(&self, frame: Frame) -> Result<(), Error> {
        if *self.reset.borrow() {
            return Err(Error::Reset(self.id));
        }
        self.shared.out.send(frame).await.map_err(|_| Error::Closed)
    }

    /// Answers the peer's SYN_STREAM.
    pub async fn reply(&self, headers: Headers) -> Result<(), Error> {
        self.send_frame(Frame::SynReply {
            stream_id: self.id,
            flags: 0,
            headers,
        })
        .await
    }

    /// Sends `data` as DATA frames of at most 32 KiB.
    pub async fn send(&self, mut data: Bytes) -> Result<(), Error> {
        while !data.is_empty() {
            let chunk = data.split_to(data.len().min(CHUNK));
            self.send_frame(Frame::Data {
                stream_id: self.id,
                flags: 0,
                data: chunk,
            })
            .await?;
        }
        Ok(())
    }

    /// Half-closes our side (an empty DATA frame with FIN).
    pub async fn finish(&self) -> Result<(), Error> {
        self.send_frame(Frame::Data {
            stream_id: self.id,
            flags: FLAG_FIN,
            data: Bytes::new(),
        })
        .await?;
        self.mark_local_fin();
        Ok(())
    }

    fn mark_local_fin(&self) {
        let mut streams = self.shared.streams();
        if let Some(entry) = streams.get_mut(&self.id) {
            entry.local_fin = true;
            if entry.data.is_none() {
                streams.remove(&self.id);
            }
        }
    }

    /// Aborts the stream (RST_STREAM with `status`, e.g. [`rst::CANCEL`]).
    pub async fn reset(&self, status: u32) -> Result<(), Error> {
        if let Some(entry) = self.shared.streams().remove(&self.id) {
            entry.reset.send_replace(true);
        }
        self.shared
            .out
            .send(Frame::RstStream {
                stream_id: self.id,
                status,
            })
            .await
            .map_err(|_| Error::Closed)
    }

    /// Whether the peer reset the stream or the session ended.
    pub fn is_reset(&self) -> bool {
        *self.reset.borrow()
    }

    /// Resolves once the peer resets the stream or the session ends.
    pub async fn reset_by_peer(&self) {
        let mut reset = self.reset.clone();
        let _ = reset.wait_for(|r| *r).await;
    }
}

async fn write_loop<W: AsyncWrite>(
    write: W,
    mut frames: mpsc::Receiver<Frame>,
    mut encoder: Encoder,
    activity: IdleClock,
    mut shutdown: watch::Receiver<bool>,
) {
    tokio::pin!(write);
    let mut buf = BytesMut::with_capacity(CHUNK + 64);
    loop {
        let frame = tokio::select! {
            frame = frames.recv() => frame,
            // Flush what is queued (the GOAWAY), then stop.
            _ = shutdown.wait_for(|s| *s) => frames.try_recv().ok(),
        };
        let Some(frame) = frame else { break };
        let mut pending = Some(frame);
        while let Some(frame) = pending.take() {
            if matches!(frame, Frame::Data { .. }) {
                activity.touch();
            }
            if let Err(error) = encoder.encode(&frame, &mut buf) {
                tracing::debug!(%error, "spdy: dropping a frame that cannot be encoded");
            }
            if buf.len() < 4 * CHUNK {
                pending = frames.try_recv().ok();
            }
        }
        if write.write_all(&buf).await.is_err() || write.flush().await.is_err() {
            return;
        }
        buf.clear();
    }
    let _ = write.shutdown().await;
}

async fn read_loop<R: AsyncRead>(
    read: R,
    shared: Arc<Shared>,
    incoming: mpsc::Sender<Stream>,
    closed: watch::Sender<bool>,
    mut shutdown: watch::Receiver<bool>,
) {
    tokio::pin!(read);
    let mut incoming = Some(incoming);
    let mut decoder = Decoder::new();
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut last_peer_id = 0u32;
    'session: loop {
        loop {
            let frame = match decoder.decode(&mut buf) {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(error) => {
                    tracing::debug!(%error, "spdy: bad frame, ending the session");
                    let _ = shared
                        .out
                        .send(Frame::GoAway {
                            last_good_id: last_peer_id,
                            status: 1,
                        })
                        .await;
                    break 'session;
                }
            };
            if matches!(frame, Frame::SynStream { .. } | Frame::Data { .. }) {
                shared.activity.touch();
            }
            handle(&shared, frame, &mut incoming, &mut last_peer_id).await;
        }
        tokio::select! {
            read = read.read_buf(&mut buf) => match read {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            },
            _ = shutdown.wait_for(|s| *s) => break,
        }
    }
    // The connection is gone: every stream ends.
    for (_, entry) in shared.streams().drain() {
        entry.reset.send_replace(true);
    }
    closed.send_replace(true);
}

async fn handle(
    shared: &Arc<Shared>,
    frame: Frame,
    incoming: &mut Option<mpsc::Sender<Stream>>,
    last_peer_id: &mut u32,
) {
    match frame {
        Frame::SynStream {
            stream_id,
            flags,
            headers,
            ..
        } => {
            let valid = shared.role.peer_chose(stream_id) && stream_id > *last_peer_id;
            let refused = incoming.is_none();
            if !valid || refused {
                let status = if valid {
                    rst::REFUSED_STREAM
                } else {
                    rst::PROTOCOL_ERROR
                };
                let _ = shared.out.send(Frame::RstStream { stream_id, status }).await;
                return;
            }
            *last_peer_id = stream_id;
            let stream = shared.register(stream_id, headers, flags & FLAG_FIN != 0);
            if let Some(tx) = incoming
                && tx.send(stream).await.is_err()
            {
                // Nobody accepts streams any more.
                *incoming = None;
                shared.streams().remove(&stream_id);
                let _ = shared
                    .out
                    .send(Frame::RstStream {
                        stream_id,
                        status: rst::REFUSED_STREAM,
                    })
                    .await;
            }
        }
        Frame::Data { stream_id, flags, data } => {
            let sender = shared.streams().get(&stream_id).and_then(|e| e.data.clone());
            if let Some(sender) = sender
                && !data.is_empty()
            {
                // A reader that went away just drops the data.
                let _ = sender.send(data).await;
            }
            if flags & FLAG_FIN != 0 {
                let mut streams = shared.streams();
                if let Some(entry) = streams.get_mut(&stream_id) {
                    entry.data = None;
                    if entry.local_fin {
                        streams.remove(&stream_id);
                    }
                }
            }
        }
        Frame::RstStream { stream_id, .. } => {
            if let Some(entry) = shared.streams().remove(&stream_id) {
                entry.reset.send_replace(true);
            }
        }
        Frame::Ping { id } => {
            if shared.role.peer_chose(id) {
                let _ = shared.out.send(Frame::Ping { id }).await;
            }
        }
        Frame::GoAway { .. } => *incoming = None,
        Frame::SynReply { .. }
        | Frame::Headers { .. }
        | Frame::Settings { .. }
        | Frame::WindowUpdate { .. }
        | Frame::Unknown { .. } => {}
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::frame::header;

    fn pairs(list: &[(&str, &str)]) -> Headers {
        list.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
    }

    /// A server that echoes every stream's data back, upper-cased, then FINs.
    fn echo_server(io: tokio::io::DuplexStream) {
        let mut server = Session::new(io, Role::Server).unwrap();
        tokio::spawn(async move {
            while let Some(stream) = server.accept().await {
                tokio::spawn(async move {
                    let (mut reader, writer) = stream.split();
                    writer.reply(Headers::new()).await.unwrap();
                    while let Some(data) = reader.recv().await {
                        writer.send(Bytes::from(data.to_ascii_uppercase())).await.unwrap();
                    }
                    writer.finish().await.unwrap();
                });
            }
        });
    }

    async fn collect(reader: &mut StreamReader) -> Vec<u8> {
        let mut all = Vec::new();
        while let Some(data) = reader.recv().await {
            all.extend_from_slice(&data);
        }
        all
    }

    #[tokio::test]
    async fn concurrent_streams_with_half_close() {
        let (a, b) = tokio::io::duplex(4096);
        echo_server(b);
        let client = Session::new(a, Role::Client).unwrap();
        let mut tasks = Vec::new();
        for i in 0..20 {
            let stream = client
                .open(pairs(&[("requestid", &i.to_string())]), false)
                .await
                .unwrap();
            assert_eq!(stream.id, 2 * i + 1);
            tasks.push(tokio::spawn(async move {
                let (mut reader, writer) = stream.split();
                let body = format!("stream {i} ").repeat(20_000);
                let sender = tokio::spawn(async move {
                    writer.send(Bytes::from(body)).await.unwrap();
                    writer.finish().await.unwrap();
                });
                let echoed = collect(&mut reader).await;
                sender.await.unwrap();
                assert_eq!(echoed, format!("STREAM {i} ").repeat(20_000).into_bytes());
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        assert!(client.shared.streams().is_empty(), "finished streams are forgotten");
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_session_is_closed_but_data_keeps_it_open() {
        let (a, b) = tokio::io::duplex(4096);
        echo_server_idle(b, Duration::from_secs(10));
        let client = Session::new(a, Role::Client).unwrap();
        let stream = client.open(pairs(&[("requestid", "1")]), false).await.unwrap();
        let (mut reader, writer) = stream.split();
        for _ in 0..3 {
            // Data every 6 s: never 10 s without activity.
            writer.send(Bytes::from_static(b"x")).await.unwrap();
            assert_eq!(reader.recv().await.as_deref(), Some(&b"X"[..]));
            tokio::time::sleep(Duration::from_secs(6)).await;
            // Pings are answered but are no activity.
            client.ping(1).await.unwrap();
        }
        let start = tokio::time::Instant::now();
        client.closed().await;
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_secs(3) && waited <= Duration::from_secs(5),
            "{waited:?}"
        );
        assert!(reader.recv().await.is_none(), "the stream ended with the connection");
    }

    /// [`echo_server`] whose session closes after `timeout` without activity.
    fn echo_server_idle(io: tokio::io::DuplexStream, timeout: Duration) {
        let mut server = Session::new(io, Role::Server).unwrap();
        server.close_when_idle(timeout);
        tokio::spawn(async move {
            while let Some(stream) = server.accept().await {
                tokio::spawn(async move {
                    let (mut reader, writer) = stream.split();
                    let _ = writer.reply(Headers::new()).await;
                    while let Some(data) = reader.recv().await {
                        let _ = writer.send(Bytes::from(data.to_ascii_uppercase())).await;
                    }
                });
            }
        });
    }

    #[tokio::test]
    async fn pings_are_answered_and_resets_reach_the_peer() {
        let (a, b) = tokio::io::duplex(4096);
        let mut server = Session::new(b, Role::Server).unwrap();
        let client = Session::new(a, Role::Client).unwrap();
        let stream = client.open(pairs(&[("streamtype", "data")]), false).await.unwrap();
        let accepted = server.accept().await.unwrap();
        assert_eq!(header(&accepted.headers, "streamtype"), Some("data"));
        // The server echoes the client's ping; the client ignores the echo (no loop).
        client.ping(1).await.unwrap();
        server.ping(2).await.unwrap();
        let (_, server_writer) = accepted.split();
        stream.writer.reset(rst::CANCEL).await.unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(5), server_writer.reset_by_peer())
            .await
            .unwrap();
        assert!(matches!(
            server_writer.send(Bytes::from_static(b"x")).await,
            Err(Error::Reset(1))
        ));
        // GOAWAY: no more streams for the server, the connection itself stays up.
        client.go_away().await.unwrap();
        assert!(server.accept().await.is_none());
    }

    #[tokio::test]
    async fn the_end_of_the_connection_ends_every_stream() {
        use tokio::io::AsyncWriteExt;
        let (mut a, b) = tokio::io::duplex(4096);
        let mut server = Session::new(b, Role::Server).unwrap();
        let mut wire = BytesMut::new();
        let syn = Frame::SynStream {
            stream_id: 1,
            associated_id: 0,
            priority: 0,
            flags: 0,
            headers: pairs(&[("n", "1")]),
        };
        Encoder::new().unwrap().encode(&syn, &mut wire).unwrap();
        a.write_all(&wire).await.unwrap();
        let accepted = server.accept().await.unwrap();
        let (mut reader, writer) = accepted.split();
        drop(a);
        assert_eq!(reader.recv().await, None);
        writer.reset_by_peer().await;
        server.closed().await;
        assert!(server.accept().await.is_none());
    }
}
