//! One connection to one node, shared by many callers, pipelined.
//!
//! Two tasks own the socket: a writer that takes requests from a bounded
//! queue and writes whatever has accumulated in one syscall, and a reader
//! that decodes replies and hands each to the oldest waiting caller. They
//! are separate so that a large pipeline can never deadlock (the writer
//! blocked on a full socket while replies pile up unread). Both end when the
//! `Connection` (the only sender) is dropped and the replies are drained.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use shoal_proto::{parse_frame, Frame};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

/// Requests queued per connection before callers wait.
pub const QUEUE_DEPTH: usize = 4096;
/// Most bytes the writer gathers into one write.
const MAX_BATCH_BYTES: usize = 256 * 1024;

/// Why a call got no reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// The request was never handed to the socket.
    NotSent(String),
    /// The request may have reached the server; its reply never came back.
    Lost(String),
}

type ReplySender = oneshot::Sender<Result<Frame, CallError>>;

/// One or more commands that go out together, back to back: nothing
/// another caller sends can land between them (a `CLIENT SHOAL-TAG` must be
/// followed by the very command it tags).
struct Request {
    wire: Bytes,
    /// One per command, in order.
    replies: Vec<ReplySender>,
}

/// A pipelined connection. Cheap to share behind an `Arc`.
pub struct Connection {
    addr: String,
    requests: mpsc::Sender<Request>,
    dead: Arc<AtomicBool>,
}

/// Callers waiting for replies, oldest first. A std Mutex: it is held only
/// to push or pop, never across an await.
type Waiting = Arc<Mutex<VecDeque<ReplySender>>>;

impl Connection {
    pub async fn connect(addr: &str, timeout: Duration) -> Result<Connection, CallError> {
        let not_sent = |e: String| CallError::NotSent(format!("{addr}: {e}"));
        let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| not_sent("connect timed out".into()))?
            .map_err(|e| not_sent(e.to_string()))?;
        let _ = stream.set_nodelay(true);
        let (read, write) = stream.into_split();
        let (requests, queue) = mpsc::channel(QUEUE_DEPTH);
        let waiting: Waiting = Arc::default();
        let dead = Arc::new(AtomicBool::new(false));
        tokio::spawn(write_loop(write, queue, Arc::clone(&waiting), Arc::clone(&dead)));
        tokio::spawn(read_loop(read, waiting, Arc::clone(&dead)));
        Ok(Connection { addr: addr.to_string(), requests, dead })
    }

    /// Whether the connection failed and should be replaced.
    pub fn is_dead(&self) -> bool {
        self.dead.load(Ordering::Acquire) || self.requests.is_closed()
    }

    /// Gives the connection up: the next caller opens a new one. Replies
    /// still owed to earlier callers are dropped when they arrive.
    pub fn abandon(&self) {
        self.dead.store(true, Ordering::Release);
    }

    /// Sends every command as one unit, back to back (no other caller's
    /// command between them); replies come back in order.
    pub async fn call_many(&self, commands: &[Vec<Bytes>]) -> Result<Vec<Frame>, CallError> {
        let mut wire = BytesMut::new();
        let mut replies = Vec::with_capacity(commands.len());
        let mut answers = Vec::with_capacity(commands.len());
        for args in commands {
            wire.extend_from_slice(&encode(args));
            let (reply, answer) = oneshot::channel();
            replies.push(reply);
            answers.push(answer);
        }
        self.requests
            .send(Request { wire: wire.freeze(), replies })
            .await
            .map_err(|_| CallError::NotSent(format!("{}: connection closed", self.addr)))?;
        let mut frames = Vec::with_capacity(answers.len());
        for answer in answers {
            frames.push(
                answer.await.unwrap_or_else(|_| Err(CallError::Lost(format!("{}: connection closed", self.addr))))?,
            );
        }
        Ok(frames)
    }

    /// Sends one command and waits for its reply.
    pub async fn call(&self, args: &[Bytes]) -> Result<Frame, CallError> {
        let (reply, answer) = oneshot::channel();
        let request = Request { wire: encode(args), replies: vec![reply] };
        self.requests
            .send(request)
            .await
            .map_err(|_| CallError::NotSent(format!("{}: connection closed", self.addr)))?;
        answer.await.unwrap_or_else(|_| Err(CallError::Lost(format!("{}: connection closed", self.addr))))
    }
}

/// A request as a RESP array of bulk strings.
pub fn encode(args: &[Bytes]) -> Bytes {
    let mut out = BytesMut::with_capacity(16 + args.iter().map(|a| a.len() + 16).sum::<usize>());
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out.freeze()
}

async fn write_loop(
    mut write: OwnedWriteHalf,
    mut queue: mpsc::Receiver<Request>,
    waiting: Waiting,
    dead: Arc<AtomicBool>,
) {
    let mut batch = BytesMut::new();
    while let Some(first) = queue.recv().await {
        let mut next = Some(first);
        while let Some(request) = next.take() {
            batch.extend_from_slice(&request.wire);
            // Registered before the bytes leave, so the reader always finds
            // the caller a reply belongs to.
            waiting.lock().expect("waiting lock").extend(request.replies);
            if batch.len() < MAX_BATCH_BYTES {
                next = queue.try_recv().ok();
            }
        }
        if dead.load(Ordering::Acquire) || write.write_all(&batch).await.is_err() {
            dead.store(true, Ordering::Release);
            fail_all(&waiting, "write failed");
            return;
        }
        batch.clear();
    }
    // Every sender is gone: half-close so the server finishes and closes.
    let _ = write.shutdown().await;
}

async fn read_loop(mut read: OwnedReadHalf, waiting: Waiting, dead: Arc<AtomicBool>) {
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let reason = loop {
        match parse_frame(&buf) {
            Ok(Some((frame, used))) => {
                let _ = buf.split_to(used);
                match waiting.lock().expect("waiting lock").pop_front() {
                    Some(caller) => {
                        let _ = caller.send(Ok(frame));
                    }
                    None => break "a reply arrived that nobody asked for".to_string(),
                }
                continue;
            }
            Ok(None) => {}
            Err(e) => break format!("invalid reply: {e}"),
        }
        match read.read_buf(&mut buf).await {
            Ok(0) => break "connection closed by the server".to_string(),
            Ok(_) => {}
            Err(e) => break e.to_string(),
        }
    };
    dead.store(true, Ordering::Release);
    fail_all(&waiting, &reason);
}

fn fail_all(waiting: &Waiting, reason: &str) {
    for caller in waiting.lock().expect("waiting lock").drain(..) {
        let _ = caller.send(Err(CallError::Lost(reason.to_string())));
    }
}
