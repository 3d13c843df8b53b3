//! The accept loop: admits clients up to `max_clients`, gives each its own
//! task, and on shutdown stops accepting, tells every connection to finish,
//! and waits (bounded by `shutdown_grace`) for them to do so.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::connection::{Connection, Ended};
use crate::state::Shared;
use crate::stats::Stats;

const MAX_CLIENTS_REPLY: &[u8] = b"-ERR max number of clients reached\r\n";

/// Counts a connection for as long as it lives.
struct ClientSlot(Arc<Shared>);

impl Drop for ClientSlot {
    fn drop(&mut self) {
        self.0.stats.connected_clients.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Starts the accept loops: on the current runtime, or on `io_threads`
/// threads of their own. Each thread runs a single-threaded runtime, so a
/// connection lives on one thread for its whole life: no work stealing and
/// no cross-thread wake-ups on the request path. Returns one handle per loop
/// (on the current runtime) that ends when the loop has drained.
pub fn spawn_accept_loops(
    listener: TcpListener,
    shared: &Arc<Shared>,
    stopped: &watch::Receiver<bool>,
    io_threads: Option<usize>,
) -> std::io::Result<Vec<tokio::task::JoinHandle<()>>> {
    let Some(threads) = io_threads else {
        return Ok(vec![tokio::spawn(serve(listener, Arc::clone(shared), stopped.clone()))]);
    };
    let listener = listener.into_std()?;
    let mut handles = Vec::with_capacity(threads);
    for index in 0..threads.max(1) {
        let listener = listener.try_clone()?;
        let (shared, stopped) = (Arc::clone(shared), stopped.clone());
        let (done, finished) = tokio::sync::oneshot::channel::<()>();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        std::thread::Builder::new().name(format!("shoal-io-{index}")).spawn(move || {
            runtime.block_on(async move {
                match TcpListener::from_std(listener) {
                    Ok(listener) => serve(listener, shared, stopped).await,
                    Err(e) => tracing::error!(error = %e, "io thread could not adopt the listener"),
                }
            });
            let _ = done.send(());
        })?;
        handles.push(tokio::spawn(async move {
            let _ = finished.await;
        }));
    }
    Ok(handles)
}

/// Accepts until `shutdown` fires, then drains connections.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.wait_for(|stop| *stop) => break,
            // Reap finished connection tasks so the set stays small.
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // EMFILE and friends: back off briefly rather than spin.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let Some(slot) = admit(&shared) else {
            reject(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            let shared = Arc::clone(&slot.0);
            let ended = Connection::new(stream, shared).run(shutdown).await;
            log_end(&ended);
            drop(slot);
        });
    }
    let grace = shared.config.shutdown_grace;
    if tokio::time::timeout(grace, async { while connections.join_next().await.is_some() {} }).await.is_err() {
        tracing::warn!(remaining = connections.len(), "connections still open after the shutdown grace period");
        connections.abort_all();
    }
}

fn admit(shared: &Arc<Shared>) -> Option<ClientSlot> {
    let max = shared.config.limits.max_clients;
    let admitted = shared
        .stats
        .connected_clients
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| (n < max).then_some(n + 1))
        .is_ok();
    if admitted {
        Stats::add(&shared.stats.total_connections, 1);
        Some(ClientSlot(Arc::clone(shared)))
    } else {
        Stats::add(&shared.stats.rejected_connections, 1);
        None
    }
}

/// Tells a client over the limit why, without waiting on it.
fn reject(stream: TcpStream) {
    let _ = stream.try_write(MAX_CLIENTS_REPLY);
}

fn log_end(ended: &Ended) {
    match ended {
        Ended::ClientClosed | Ended::Quit | Ended::Shutdown => {}
        Ended::ProtocolError(e) => {
            tracing::debug!(error = %e, "closed connection after protocol error")
        }
        Ended::OutputLimit(n) => {
            tracing::warn!(bytes = n, "closed connection: reply over max-output-bytes")
        }
        Ended::Io(e) => tracing::debug!(error = %e, "connection I/O error"),
    }
}
