//! The client's redirect and retry rules, against small scripted RESP
//! servers on 127.0.0.1 (remote peers whose replies the test chooses).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use shoal_client::{ClientError, ClusterClient, RetryPolicy};
use shoal_proto::{Frame, Protocol, RequestDecoder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A server that answers each request with `reply(n, args)`, where `n`
/// counts requests across all connections, except `CLIENT SHOAL-TAG`,
/// which it accepts (as shoal does) without counting. Returns its address.
async fn scripted<F>(reply: F) -> String
where
    F: Fn(usize, &[Bytes]) -> Option<Frame> + Send + Sync + 'static,
{
    let count = AtomicUsize::new(0);
    scripted_all(move |_, args| {
        if is_tag(args) {
            return Some(Frame::OK);
        }
        reply(count.fetch_add(1, Ordering::SeqCst), args)
    })
    .await
}

fn is_tag(args: &[Bytes]) -> bool {
    (4..=5).contains(&args.len())
        && args[0].eq_ignore_ascii_case(b"CLIENT")
        && args[1].eq_ignore_ascii_case(b"SHOAL-TAG")
}

/// Like `scripted`, for every request, tags included.
async fn scripted_all<F>(reply: F) -> String
where
    F: Fn(usize, &[Bytes]) -> Option<Frame> + Send + Sync + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let reply = Arc::new(reply);
    let count = Arc::new(AtomicUsize::new(0));
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            let (reply, count) = (Arc::clone(&reply), Arc::clone(&count));
            tokio::spawn(async move {
                let mut decoder = RequestDecoder::default();
                let mut buf = BytesMut::new();
                loop {
                    while let Some(args) = decoder.decode(&mut buf).unwrap() {
                        let n = count.fetch_add(1, Ordering::SeqCst);
                        // `None` means: drop the connection without replying.
                        let Some(frame) = reply(n, &args) else { return };
                        stream.write_all(&frame.to_bytes(Protocol::Resp2)).await.unwrap();
                    }
                    if stream.read_buf(&mut buf).await.unwrap_or(0) == 0 {
                        return;
                    }
                }
            });
        }
    });
    addr
}

fn is_cluster_slots(args: &[Bytes]) -> bool {
    args.first().is_some_and(|a| a.eq_ignore_ascii_case(b"CLUSTER"))
}

fn slots_reply(addr: &str) -> Frame {
    let (host, port) = addr.rsplit_once(':').unwrap();
    let node = Frame::Array(vec![Frame::Bulk(Bytes::from(host.to_string())), Frame::Integer(port.parse().unwrap())]);
    Frame::Array(vec![Frame::Array(vec![Frame::Integer(0), Frame::Integer(16383), node])])
}

fn cmd(words: &[&str]) -> Vec<Bytes> {
    words.iter().map(|w| Bytes::copy_from_slice(w.as_bytes())).collect()
}

fn fast_policy() -> RetryPolicy {
    RetryPolicy {
        deadline: Duration::from_secs(2),
        initial_backoff: Duration::from_millis(1),
        ..RetryPolicy::default()
    }
}

#[tokio::test]
async fn follows_moved_and_updates_the_map() {
    let target = scripted(|_, args| {
        Some(if is_cluster_slots(args) { Frame::Array(vec![]) } else { Frame::Bulk(Bytes::from_static(b"from-b")) })
    })
    .await;
    let moved_to = target.clone();
    let seed = scripted(move |_, args| {
        Some(if is_cluster_slots(args) {
            slots_reply("127.0.0.1:1")
        } else {
            Frame::error(format!("MOVED 12182 {moved_to}"))
        })
    })
    .await;
    // The seed claims a dead address owns everything; its MOVED is the truth.
    let client = ClusterClient::connect(std::slice::from_ref(&seed), fast_policy()).await.unwrap();
    let reply = client.call_at(&seed, &cmd(&["GET", "foo"])).await.unwrap();
    assert_eq!(reply, Frame::error(format!("MOVED 12182 {target}")));
    let client = ClusterClient::connect(&[seed], fast_policy()).await.unwrap();
    // First attempt goes to 127.0.0.1:1 (refused) → backoff → refresh → … the
    // seed keeps claiming 127.0.0.1:1, so the call must fail within the deadline.
    let err = client.call(cmd(&["GET", "foo"])).await.unwrap_err();
    assert!(matches!(err, ClientError::DeadlineExceeded { .. }), "{err}");
}

#[tokio::test]
async fn moved_redirect_is_followed() {
    let owner = scripted(|_, args| {
        Some(if is_cluster_slots(args) { Frame::Array(vec![]) } else { Frame::Bulk(Bytes::from_static(b"value")) })
    })
    .await;
    let owner2 = owner.clone();
    let seed = scripted(move |_, args| {
        Some(if is_cluster_slots(args) {
            // The seed believes it owns every slot, but answers MOVED.
            Frame::Array(vec![])
        } else {
            Frame::error(format!("MOVED 12182 {owner2}"))
        })
    })
    .await;
    let seed_map = slots_reply(&seed);
    let seed2 = seed.clone();
    let claims =
        scripted(move |_, args| Some(if is_cluster_slots(args) { seed_map.clone() } else { Frame::Null })).await;
    let _ = seed2;
    let client = ClusterClient::connect(&[claims], fast_policy()).await.unwrap();
    assert_eq!(client.slot_map().owner(12182), Some(seed.as_str()));
    assert_eq!(client.call(cmd(&["GET", "foo"])).await.unwrap(), Frame::Bulk(Bytes::from_static(b"value")));
    assert_eq!(client.slot_map().owner(12182), Some(owner.as_str()), "MOVED patches the map");
}

#[tokio::test]
async fn ask_sends_asking_first_and_does_not_patch_the_map() {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let importer = scripted(move |_, args| {
        log.lock().unwrap().push(String::from_utf8_lossy(&args[0]).to_uppercase());
        Some(if args[0].eq_ignore_ascii_case(b"ASKING") { Frame::OK } else { Frame::Bulk(Bytes::from_static(b"v")) })
    })
    .await;
    let importer2 = importer.clone();
    let seed = scripted(move |_, args| {
        Some(if is_cluster_slots(args) { Frame::Array(vec![]) } else { Frame::error(format!("ASK 12182 {importer2}")) })
    })
    .await;
    let seed_map = slots_reply(&seed);
    let claims =
        scripted(move |_, args| Some(if is_cluster_slots(args) { seed_map.clone() } else { Frame::Null })).await;
    let client = ClusterClient::connect(&[claims], fast_policy()).await.unwrap();
    assert_eq!(client.call(cmd(&["GET", "foo"])).await.unwrap(), Frame::Bulk(Bytes::from_static(b"v")));
    assert_eq!(*seen.lock().unwrap(), vec!["ASKING".to_string(), "GET".to_string()]);
    assert_eq!(client.slot_map().owner(12182), Some(seed.as_str()), "ASK is a one-off");
}

#[tokio::test]
async fn tryagain_and_clusterdown_are_retried_until_success() {
    let addr_cell = Arc::new(std::sync::Mutex::new(String::new()));
    let cell = Arc::clone(&addr_cell);
    let gets = Arc::new(AtomicUsize::new(0));
    let g = Arc::clone(&gets);
    let node = scripted(move |_, args| {
        if is_cluster_slots(args) {
            return Some(slots_reply(&cell.lock().unwrap()));
        }
        Some(match g.fetch_add(1, Ordering::SeqCst) {
            0 => Frame::error("TRYAGAIN Multiple keys request during rehashing of slot"),
            1 => Frame::error("CLUSTERDOWN The cluster is down"),
            _ => Frame::OK,
        })
    })
    .await;
    *addr_cell.lock().unwrap() = node.clone();
    let client = ClusterClient::connect(&[node], fast_policy()).await.unwrap();
    assert_eq!(client.call(cmd(&["SET", "k", "v"])).await.unwrap(), Frame::OK);
    assert_eq!(gets.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn other_errors_are_answers_not_retries() {
    let addr_cell = Arc::new(std::sync::Mutex::new(String::new()));
    let cell = Arc::clone(&addr_cell);
    let node = scripted(move |_, args| {
        Some(if is_cluster_slots(args) {
            slots_reply(&cell.lock().unwrap())
        } else {
            Frame::error("ERR value is not an integer or out of range")
        })
    })
    .await;
    *addr_cell.lock().unwrap() = node.clone();
    let client = ClusterClient::connect(&[node], fast_policy()).await.unwrap();
    let reply = client.call(cmd(&["INCR", "k"])).await.unwrap();
    assert_eq!(reply, Frame::error("ERR value is not an integer or out of range"));
}

#[tokio::test]
async fn a_lost_write_is_uncertain_but_a_lost_read_is_retried() {
    let addr_cell = Arc::new(std::sync::Mutex::new(String::new()));
    let cell = Arc::clone(&addr_cell);
    let drops = Arc::new(AtomicUsize::new(0));
    let d = Arc::clone(&drops);
    let node = scripted(move |_, args| {
        if is_cluster_slots(args) {
            return Some(slots_reply(&cell.lock().unwrap()));
        }
        // Drop the connection on the first data command of each kind.
        if d.fetch_add(1, Ordering::SeqCst).is_multiple_of(2) {
            None
        } else {
            Some(Frame::Integer(1))
        }
    })
    .await;
    *addr_cell.lock().unwrap() = node.clone();
    let client = ClusterClient::connect(&[node], fast_policy()).await.unwrap();
    let err = client.call(cmd(&["INCR", "counter"])).await.unwrap_err();
    assert!(matches!(err, ClientError::Uncertain { .. }), "{err}");
    // The read is dropped once (third data command), then retried and answered.
    assert_eq!(client.call(cmd(&["EXISTS", "counter"])).await.unwrap(), Frame::Integer(1));
    assert_eq!(client.call(cmd(&["EXISTS", "counter"])).await.unwrap(), Frame::Integer(1));
}

#[tokio::test]
async fn an_unreachable_seed_is_skipped() {
    let addr_cell = Arc::new(std::sync::Mutex::new(String::new()));
    let cell = Arc::clone(&addr_cell);
    let node = scripted(move |_, args| {
        Some(if is_cluster_slots(args) { slots_reply(&cell.lock().unwrap()) } else { Frame::OK })
    })
    .await;
    *addr_cell.lock().unwrap() = node.clone();
    let client = ClusterClient::connect(&["127.0.0.1:1".to_string(), node], fast_policy()).await.unwrap();
    assert_eq!(client.call(cmd(&["SET", "k", "v"])).await.unwrap(), Frame::OK);
    let none = ClusterClient::connect(&["127.0.0.1:1".to_string()], fast_policy()).await;
    assert!(matches!(none, Err(ClientError::Unreachable(_))));
}

#[tokio::test]
async fn a_lost_tagged_write_is_retried_with_its_tag() {
    let addr_cell = Arc::new(std::sync::Mutex::new(String::new()));
    let cell = Arc::clone(&addr_cell);
    let tags = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = Arc::clone(&tags);
    let incrs = AtomicUsize::new(0);
    let node = scripted_all(move |_, args| {
        if is_cluster_slots(args) {
            return Some(slots_reply(&cell.lock().unwrap()));
        }
        if is_tag(args) {
            seen.lock().unwrap().push((args[3].clone(), args.get(4).cloned()));
            return Some(Frame::OK);
        }
        // The second INCR's connection dies before its reply.
        match incrs.fetch_add(1, Ordering::SeqCst) {
            1 => None,
            n => Some(Frame::Integer(n as i64)),
        }
    })
    .await;
    *addr_cell.lock().unwrap() = node.clone();
    let client = ClusterClient::connect(&[node], fast_policy()).await.unwrap();
    assert_eq!(client.call(cmd(&["INCR", "c"])).await.unwrap(), Frame::Integer(0));
    // The server accepted a tag, so the lost write is retried, tag and all.
    assert_eq!(client.call(cmd(&["INCR", "c"])).await.unwrap(), Frame::Integer(2));
    let tags = tags.lock().unwrap().clone();
    assert_eq!(tags.len(), 3, "{tags:?}");
    assert_ne!(tags[0].0, tags[1].0, "each write has its own sequence number");
    assert_eq!(tags[1].0, tags[2].0, "the retry carries the lost write's tag");
    assert_eq!(tags[1].1, None, "a first attempt is not a retry");
    assert_eq!(tags[2].1.as_deref(), Some(&b"RETRY"[..]), "the retry of a write that may have applied says so");
}

#[tokio::test]
async fn concurrent_tagged_writes_keep_each_tag_next_to_its_command() {
    let addr_cell = Arc::new(std::sync::Mutex::new(String::new()));
    let cell = Arc::clone(&addr_cell);
    let log = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = Arc::clone(&log);
    let node = scripted_all(move |_, args| {
        if is_cluster_slots(args) {
            return Some(slots_reply(&cell.lock().unwrap()));
        }
        seen.lock().unwrap().push(is_tag(args));
        Some(if is_tag(args) { Frame::OK } else { Frame::Integer(1) })
    })
    .await;
    *addr_cell.lock().unwrap() = node.clone();
    let client = Arc::new(ClusterClient::connect(&[node], fast_policy()).await.unwrap());
    let tasks: Vec<_> = (0..8)
        .map(|t| {
            let client = Arc::clone(&client);
            tokio::spawn(async move {
                for i in 0..50 {
                    client.call(cmd(&["INCR", &format!("k{t}:{i}")])).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let log = log.lock().unwrap().clone();
    assert_eq!(log.len(), 800);
    // On the wire: tag, command, tag, command… never two tags in a row.
    assert!(log.chunks(2).all(|pair| pair == [true, false]), "a tag was separated from its command");
}

/// A node that accepts connections and reads requests but never answers,
/// as a paused (SIGSTOP) or partitioned-away node looks to a client.
async fn silent() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let mut buf = vec![0; 4096];
                while stream.read(&mut buf).await.unwrap_or(0) > 0 {}
            });
        }
    });
    addr
}

#[tokio::test]
async fn a_node_that_stops_answering_is_given_up_and_the_new_owner_found() {
    let frozen = silent().await;
    let frozen_map = slots_reply(&frozen);
    let slots_asked = Arc::new(AtomicUsize::new(0));
    let asked = Arc::clone(&slots_asked);
    let seed = Arc::new(std::sync::OnceLock::<String>::new());
    let me = Arc::clone(&seed);
    let addr = scripted(move |_, args| {
        Some(if is_cluster_slots(args) {
            // First the frozen node owns everything, then this one does.
            match asked.fetch_add(1, Ordering::SeqCst) {
                0 => frozen_map.clone(),
                _ => slots_reply(me.get().unwrap()),
            }
        } else {
            Frame::Bulk(Bytes::from_static(b"value"))
        })
    })
    .await;
    seed.set(addr.clone()).unwrap();
    let policy =
        RetryPolicy { reply_timeout: Duration::from_millis(200), deadline: Duration::from_secs(5), ..fast_policy() };
    let client = ClusterClient::connect(&[addr], policy).await.unwrap();
    let reply = tokio::time::timeout(Duration::from_secs(20), client.call(cmd(&["GET", "foo"])))
        .await
        .expect("the call returns instead of waiting on the silent node");
    assert_eq!(reply.unwrap(), Frame::Bulk(Bytes::from_static(b"value")));
    assert!(slots_asked.load(Ordering::SeqCst) >= 2, "the map was refreshed");
    // The deadline bounds a call even when one attempt alone would wait
    // longer (here a 60 s reply timeout on a node that never answers).
    let to_frozen = slots_reply(&frozen);
    let seed =
        scripted(move |_, args| Some(if is_cluster_slots(args) { to_frozen.clone() } else { Frame::Null })).await;
    let patient =
        RetryPolicy { reply_timeout: Duration::from_secs(60), deadline: Duration::from_millis(300), ..policy };
    let client = ClusterClient::connect(&[seed], patient).await.unwrap();
    let reply = tokio::time::timeout(Duration::from_secs(20), client.call(cmd(&["SET", "k", "v"])))
        .await
        .expect("the call ends at its deadline, not after the reply timeout");
    assert!(matches!(reply, Err(ClientError::DeadlineExceeded { .. })), "{reply:?}");
    // Nor does connecting wait forever on a silent seed.
    let client = ClusterClient::connect(std::slice::from_ref(&frozen), policy).await;
    assert!(client.is_err(), "a silent seed cannot serve the map");
}

#[tokio::test]
async fn a_node_that_keeps_refusing_is_not_asked_for_the_map_first() {
    // A node cut off from its shard's majority: it claims every slot and
    // answers TRYAGAIN. The healthy node owns them and answers.
    let cut_off = Arc::new(std::sync::OnceLock::<String>::new());
    let me = Arc::clone(&cut_off);
    let stale = scripted(move |_, args| {
        Some(if is_cluster_slots(args) {
            slots_reply(me.get().unwrap())
        } else {
            Frame::error("TRYAGAIN slot 12182 has no leader yet, retry shortly")
        })
    })
    .await;
    cut_off.set(stale.clone()).unwrap();
    let healthy = Arc::new(std::sync::OnceLock::<String>::new());
    let me = Arc::clone(&healthy);
    let good = scripted(move |_, args| {
        Some(if is_cluster_slots(args) {
            slots_reply(me.get().unwrap())
        } else {
            Frame::Bulk(Bytes::from_static(b"v"))
        })
    })
    .await;
    healthy.set(good.clone()).unwrap();
    // The stale node is the first seed, so the first map comes from it.
    let client = ClusterClient::connect(&[stale.clone(), good], fast_policy()).await.unwrap();
    assert_eq!(client.slot_map().owner(12182), Some(stale.as_str()));
    assert_eq!(client.call(cmd(&["GET", "foo"])).await.unwrap(), Frame::Bulk(Bytes::from_static(b"v")));
}
