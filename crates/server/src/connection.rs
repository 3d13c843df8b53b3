//! One client connection: read, decode every complete request in the buffer,
//! execute each, encode the replies into one output buffer, write it with a
//! single syscall, repeat. Replies therefore leave in request order and a
//! pipelined batch costs one flush (more only when the output passes
//! `output_flush_bytes`).
//!
//! Backpressure is natural: while the socket will not take our output, we do
//! not read more requests.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use shoal_proto::{Frame, ProtocolError, RequestDecoder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::clock::now_ms;
use crate::exec::execute;
use crate::state::{Closing, Session, Shared};
use crate::stats::Stats;

/// Bytes read from the socket per call, at least.
const READ_CHUNK: usize = 16 * 1024;

/// Why a connection ended, for the log.
#[derive(Debug)]
pub enum Ended {
    ClientClosed,
    Quit,
    Shutdown,
    ProtocolError(ProtocolError),
    OutputLimit(usize),
    Io(std::io::Error),
}

pub struct Connection {
    stream: TcpStream,
    shared: Arc<Shared>,
    session: Session,
    decoder: RequestDecoder,
    input: BytesMut,
    output: BytesMut,
}

impl Connection {
    pub fn new(stream: TcpStream, shared: Arc<Shared>) -> Connection {
        let session = Session::new(shared.next_client_id());
        let decoder = RequestDecoder::new(shared.config.limits.decode);
        Connection {
            stream,
            shared,
            session,
            decoder,
            input: BytesMut::with_capacity(READ_CHUNK),
            output: BytesMut::with_capacity(READ_CHUNK),
        }
    }

    /// Serves the client until it leaves, misbehaves, or `shutdown` fires.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) -> Ended {
        loop {
            if let Some(ended) = self.process_buffered().await {
                return ended;
            }
            if self.input.capacity() - self.input.len() < READ_CHUNK {
                self.input.reserve(READ_CHUNK);
            }
            let read = tokio::select! {
                read = self.stream.read_buf(&mut self.input) => read,
                _ = shutdown.wait_for(|stop| *stop) => return Ended::Shutdown,
            };
            match read {
                Ok(0) => return Ended::ClientClosed,
                Ok(n) => Stats::add(&self.shared.stats.net_input_bytes, n as u64),
                Err(e) => return Ended::Io(e),
            }
        }
    }

    /// Executes every complete request in the input buffer and writes the
    /// replies. Returns `Some` when the connection must close.
    async fn process_buffered(&mut self) -> Option<Ended> {
        let limits = self.shared.config.limits;
        // One clock reading per batch, as Redis caches its time per event
        // loop iteration: commands pipelined together see the same `now`.
        let mut now = now_ms();
        let mut executed = 0u64;
        let ended = loop {
            match self.decoder.decode(&mut self.input) {
                Ok(Some(args)) => {
                    executed += 1;
                    let reply = execute(&self.shared, &mut self.session, args, now);
                    // Checked before encoding, so an oversized reply is never
                    // built: it is dropped and closing is the limit. Earlier
                    // replies still go out.
                    let size = reply.size_bound();
                    if size > limits.max_output_bytes {
                        break Some(Ended::OutputLimit(size));
                    }
                    let before = self.output.len();
                    reply.encode(self.session.protocol, &mut self.output);
                    match self.session.closing {
                        Closing::No => {}
                        Closing::AfterReply => break Some(Ended::Quit),
                        Closing::WithoutReply => {
                            self.output.truncate(before);
                            break Some(Ended::Shutdown);
                        }
                    }
                    if self.output.len() >= limits.output_flush_bytes {
                        if let Err(e) = self.flush().await {
                            break Some(Ended::Io(e));
                        }
                        // The flush may have waited on a slow reader: the
                        // rest of the batch must not run on a stale clock.
                        now = now_ms();
                    }
                }
                Ok(None) => break None,
                Err(e) => {
                    Stats::add(&self.shared.stats.protocol_errors, 1);
                    Frame::Error(Bytes::from(e.to_string())).encode(self.session.protocol, &mut self.output);
                    break Some(Ended::ProtocolError(e));
                }
            }
        };
        let stats = &self.shared.stats;
        Stats::add(&stats.commands_processed, executed);
        Stats::add(&stats.keyspace_hits, std::mem::take(&mut self.session.hits));
        Stats::add(&stats.keyspace_misses, std::mem::take(&mut self.session.misses));
        match self.flush().await {
            Ok(()) => ended,
            Err(e) => Some(ended.unwrap_or(Ended::Io(e))),
        }
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        if self.output.is_empty() {
            return Ok(());
        }
        self.stream.write_all(&self.output).await?;
        Stats::add(&self.shared.stats.net_output_bytes, self.output.len() as u64);
        self.output.clear();
        Ok(())
    }
}
