//! Shared helpers for the integration tests: start a real `shoal server`
//! process on a free port, wait until it answers, talk RESP to it, and stop
//! it (SIGTERM, so it saves its snapshot) or kill it when the test ends.

#![allow(dead_code)]

pub mod shape;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use shoal_proto::{parse_frame, Frame};

pub const BIN: &str = env!("CARGO_BIN_EXE_shoal");
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// A port nothing listens on now and that no other test in this process
/// was given: tests run in parallel, and two servers handed the same port
/// (the kernel may offer it again once released) would have one test's
/// client talking to the other's server.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut given = GIVEN.lock().unwrap();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// A fresh directory under the target dir, unique to this test.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Polls `f` until it returns `Some`, or panics with `what` after `TIMEOUT`.
pub fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub struct Server {
    pub port: u16,
    pub dir: PathBuf,
    child: Option<Child>,
}

impl Server {
    /// Starts `shoal server` in `dir` with `extra` flags and waits for PING.
    pub fn start_in(dir: &Path, extra: &[&str]) -> Server {
        Server::start_with_args(free_port(), dir, extra)
    }

    /// Starts `shoal server --port port --dir dir --log-level warn extra…`
    /// and waits for PING. In cluster mode `port` must be the node's port
    /// in `--initial-cluster`.
    pub fn start_with_args(port: u16, dir: &Path, extra: &[&str]) -> Server {
        let mut server = Server::spawn(port, dir, extra, Stdio::inherit());
        server.wait_ready();
        server
    }

    /// `start_in`, with the server's stderr written to `log` (for tests
    /// that read what a node said as it stopped).
    pub fn start_logging_to(dir: &Path, extra: &[&str], log: &Path) -> Server {
        let file = std::fs::File::create(log).expect("create the server's log file");
        let mut server = Server::spawn(free_port(), dir, extra, Stdio::from(file));
        server.wait_ready();
        server
    }

    fn spawn(port: u16, dir: &Path, extra: &[&str], stderr: Stdio) -> Server {
        let child = Command::new(BIN)
            .args(["server", "--port", &port.to_string(), "--dir"])
            .arg(dir)
            .args(["--log-level", "warn"])
            .args(extra)
            .stdin(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn shoal server");
        Server { port, dir: dir.to_path_buf(), child: Some(child) }
    }

    pub fn start(name: &str, extra: &[&str]) -> Server {
        Server::start_in(&temp_dir(name), extra)
    }

    /// The server process's id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("a running server").id()
    }

    fn wait_ready(&mut self) {
        let port = self.port;
        let child = self.child.as_mut().unwrap();
        wait_for("the server to answer PING", || {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("shoal server exited early: {status}");
            }
            // try_call: a node that finds at start that it lost its data
            // restarts in-process as a new replica, closing connections.
            let mut c = Client::try_connect(port)?;
            (c.try_call(&["PING"])? == Frame::simple("PONG")).then_some(())
        });
    }

    pub fn client(&self) -> Client {
        Client::connect(self.port)
    }

    /// The exit status if the process has exited, without waiting.
    /// Sends `signal` (SIGSTOP, SIGCONT…) without waiting for anything.
    pub fn signal(&self, signal: i32) {
        let child = self.child.as_ref().expect("server is running");
        // SAFETY: signalling our own child process.
        unsafe { libc::kill(child.id() as i32, signal) };
    }

    pub fn try_exit_status(&mut self) -> Option<ExitStatus> {
        self.child.as_mut().and_then(|c| c.try_wait().unwrap())
    }

    /// Sends `signal` and waits for the process to exit.
    pub fn stop_with(mut self, signal: i32) -> ExitStatus {
        let mut child = self.child.take().unwrap();
        // SAFETY: signalling our own child process.
        unsafe { libc::kill(child.id() as i32, signal) };
        wait_for("the server to exit", || child.try_wait().unwrap())
    }

    /// Waits for the process to exit by itself (after SHUTDOWN, say).
    pub fn wait_exit(mut self) -> ExitStatus {
        let mut child = self.child.take().unwrap();
        wait_for("the server to exit", || child.try_wait().unwrap())
    }

    /// Graceful stop (SIGTERM); asserts a clean exit.
    pub fn stop(self) {
        let status = self.stop_with(libc::SIGTERM);
        assert!(status.success(), "server exited with {status}");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `count` distinct ports nobody listens on right now.
pub fn free_ports(count: usize) -> Vec<u16> {
    let mut ports: Vec<u16> = Vec::with_capacity(count);
    while ports.len() < count {
        let port = free_port();
        if !ports.contains(&port) {
            ports.push(port);
        }
    }
    ports
}

/// A port P such that P..P+nodes and their peer ports P+10000.. are all
/// free (`shoal local` and `shoal check` number their nodes' ports so).
pub fn free_base_port(nodes: u16) -> u16 {
    wait_for("a free block of ports", || {
        let base = free_ports(1)[0];
        if base > 55_000 {
            return None;
        }
        let all_free = (0..nodes).all(|i| {
            [base + i, base + i + 10_000].iter().all(|&p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok())
        });
        all_free.then_some(base)
    })
}

/// A cluster of `shoal server` processes sharing one `--initial-cluster`,
/// each with an explicit `@PEERPORT`. Nodes are named by their number,
/// 1..=N, as in `--id` and the list. Dropping the cluster kills every node
/// still running (each `Server` kills its process on drop).
pub struct Cluster {
    /// The `--initial-cluster` value every node was started with.
    pub spec: String,
    /// RESP ports, index `node - 1`.
    pub ports: Vec<u16>,
    /// Peer ports, index `node - 1`.
    pub peer_ports: Vec<u16>,
    /// Data directories, index `node - 1`.
    pub dirs: Vec<PathBuf>,
    /// The flags every node was started with, after `--id` and the list.
    extra: Vec<String>,
    nodes: Vec<Option<Server>>,
}

impl Cluster {
    /// Starts `n` nodes (`extra` flags go to each, e.g. `--shards 2`), waits
    /// until each answers PING and then until every node's CLUSTER INFO shows
    /// all `n` nodes reachable.
    pub fn start(name: &str, n: usize, extra: &[&str]) -> Cluster {
        assert!(n >= 1);
        let all = free_ports(2 * n);
        let (ports, peer_ports) = (all[..n].to_vec(), all[n..].to_vec());
        let spec =
            (0..n).map(|i| format!("{}=127.0.0.1:{}@{}", i + 1, ports[i], peer_ports[i])).collect::<Vec<_>>().join(",");
        let dirs: Vec<PathBuf> = (1..=n).map(|node| temp_dir(&format!("{name}-node{node}"))).collect();
        let extra = extra.iter().map(|s| s.to_string()).collect();
        let mut cluster = Cluster { spec, ports, peer_ports, dirs, extra, nodes: (0..n).map(|_| None).collect() };
        for node in 1..=n {
            cluster.restart(node);
        }
        cluster.wait_all_reachable();
        cluster
    }

    /// Starts a node that is not running, with its original command line
    /// (so it recovers from its data directory); waits for PING only.
    pub fn restart(&mut self, node: usize) {
        self.restart_with(node, &[]);
    }

    /// Kills `node` and empties its data directory: a lost disk.
    pub fn wipe(&mut self, node: usize) {
        self.kill(node);
        std::fs::remove_dir_all(&self.dirs[node - 1]).unwrap();
        std::fs::create_dir_all(&self.dirs[node - 1]).unwrap();
    }

    /// Restarts `node` with `more` flags after the cluster's own.
    pub fn restart_with(&mut self, node: usize, more: &[&str]) {
        self.spawn(node, more);
        self.nodes[node - 1].as_mut().expect("just spawned").wait_ready();
    }

    /// Starts several stopped nodes at once (none waits for another to
    /// answer first), then waits for each to answer PING.
    pub fn restart_together(&mut self, nodes: &[usize]) {
        for &node in nodes {
            self.spawn(node, &[]);
        }
        for &node in nodes {
            self.nodes[node - 1].as_mut().expect("just spawned").wait_ready();
        }
    }

    fn spawn(&mut self, node: usize, more: &[&str]) {
        assert!(self.nodes[node - 1].is_none(), "node {node} is running");
        let id = node.to_string();
        let mut args = vec!["--id", &id, "--initial-cluster", &self.spec];
        args.extend(self.extra.iter().map(String::as_str));
        args.extend(more);
        self.nodes[node - 1] = Some(Server::spawn(self.ports[node - 1], &self.dirs[node - 1], &args, Stdio::inherit()));
    }

    pub fn is_running(&self, node: usize) -> bool {
        self.nodes[node - 1].is_some()
    }

    /// Number of nodes in the list (running or not).
    pub fn size(&self) -> usize {
        self.ports.len()
    }

    pub fn port(&self, node: usize) -> u16 {
        self.ports[node - 1]
    }

    /// The node whose RESP port is `port`.
    pub fn node_of_port(&self, port: u16) -> usize {
        1 + self
            .ports
            .iter()
            .position(|&p| p == port)
            .unwrap_or_else(|| panic!("port {port} is not a node of this cluster"))
    }

    pub fn client(&self, node: usize) -> Client {
        Client::connect(self.port(node))
    }

    pub fn server(&mut self, node: usize) -> &mut Server {
        self.nodes[node - 1].as_mut().unwrap_or_else(|| panic!("node {node} is not running"))
    }

    /// Kills one node (SIGKILL) and waits for it to exit.
    pub fn kill(&mut self, node: usize) -> ExitStatus {
        let server = self.nodes[node - 1].take().expect("node is running");
        server.stop_with(libc::SIGKILL)
    }

    /// Hands over one running node's process (to wait for it to exit by
    /// itself, say).
    pub fn take(&mut self, node: usize) -> Server {
        self.nodes[node - 1].take().expect("node is running")
    }

    /// Stops one node gracefully (SIGTERM); asserts a clean exit.
    pub fn stop(&mut self, node: usize) {
        let server = self.nodes[node - 1].take().expect("node is running");
        server.stop();
    }

    /// `cluster_reachable_nodes` in `node`'s CLUSTER INFO.
    pub fn reachable_nodes(&self, node: usize) -> Option<usize> {
        let mut c = Client::try_connect(self.port(node))?;
        let info = frame_text(&c.call(&["CLUSTER", "INFO"]))?;
        info_field(&info, "cluster_reachable_nodes")?.parse().ok()
    }

    /// Waits until every running node sees every node in the list and
    /// knows a reachable leader for every slot (`cluster_state:ok`).
    pub fn wait_all_reachable(&self) {
        let n = self.size();
        for (i, server) in self.nodes.iter().enumerate() {
            if server.is_some() {
                wait_for(&format!("node {} to reach all {n} nodes and every leader", i + 1), || {
                    let mut c = Client::try_connect(self.port(i + 1))?;
                    let info = frame_text(&c.call(&["CLUSTER", "INFO"]))?;
                    let reachable: usize = info_field(&info, "cluster_reachable_nodes")?.parse().ok()?;
                    (reachable == n && info_field(&info, "cluster_state")? == "ok").then_some(())
                });
            }
        }
    }

    /// The node owning each slot, by CLUSTER SLOTS on `node`.
    pub fn slot_owners(&self, node: usize) -> Vec<usize> {
        let mut owners = vec![0; 16384];
        let Frame::Array(entries) = self.client(node).call(&["CLUSTER", "SLOTS"]) else {
            panic!("CLUSTER SLOTS is not an array");
        };
        for entry in entries {
            let Frame::Array(parts) = entry else {
                panic!("CLUSTER SLOTS entry is not an array: {entry:?}");
            };
            let (Frame::Integer(start), Frame::Integer(end), Frame::Array(primary)) = (&parts[0], &parts[1], &parts[2])
            else {
                panic!("malformed CLUSTER SLOTS entry: {parts:?}");
            };
            let Frame::Integer(port) = primary[1] else {
                panic!("malformed node in CLUSTER SLOTS: {primary:?}");
            };
            let owner = self.node_of_port(port as u16);
            for slot in *start..=*end {
                owners[slot as usize] = owner;
            }
        }
        assert!(owners.iter().all(|&o| o != 0), "CLUSTER SLOTS leaves slots out");
        owners
    }

    /// A key `{prefix}N` whose slot `owners` (from `slot_owners`) gives to `node`.
    pub fn key_on(owners: &[usize], node: usize, prefix: &str) -> String {
        (0..)
            .map(|i| format!("{prefix}{i}"))
            .find(|k| owners[usize::from(shoal_engine::slot::key_slot(k.as_bytes()))] == node)
            .unwrap()
    }
}

/// The text of a simple, bulk or verbatim string reply.
pub fn frame_text(frame: &Frame) -> Option<String> {
    match frame {
        Frame::Simple(b) | Frame::Bulk(b) | Frame::Verbatim(_, b) => {
            Some(String::from_utf8(b.to_vec()).expect("utf-8 reply"))
        }
        _ => None,
    }
}

/// `field`'s value in INFO-style `field:value\r\n` text.
pub fn info_field<'a>(text: &'a str, field: &str) -> Option<&'a str> {
    text.lines()
        .filter_map(|line| line.trim_end_matches('\r').split_once(':'))
        .find(|(k, _)| *k == field)
        .map(|(_, v)| v)
}

/// A minimal blocking RESP client built on our own codec.
pub struct Client {
    pub stream: TcpStream,
    buf: BytesMut,
}

impl Client {
    pub fn try_connect(port: u16) -> Option<Client> {
        Client::try_connect_to(&format!("127.0.0.1:{port}"))
    }

    /// Connects to `host:port` (a node in a network namespace).
    pub fn try_connect_to(addr: &str) -> Option<Client> {
        let addr: std::net::SocketAddr = addr.parse().ok()?;
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        Some(Client { stream, buf: BytesMut::new() })
    }

    pub fn connect(port: u16) -> Client {
        Client::try_connect(port).expect("connect to shoal")
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    pub fn send(&mut self, args: &[&[u8]]) {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        self.send_raw(&out);
    }

    /// Reads one reply frame; `None` when the server closed the connection.
    pub fn read(&mut self) -> Option<Frame> {
        match self.try_read() {
            Ok(frame) => frame,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => None,
            Err(e) => panic!("read from shoal: {e}"),
        }
    }

    fn try_read(&mut self) -> std::io::Result<Option<Frame>> {
        loop {
            if let Some((frame, used)) = parse_frame(&self.buf).expect("server sent valid RESP") {
                let _ = self.buf.split_to(used);
                return Ok(Some(frame));
            }
            let mut chunk = [0u8; 64 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Ok(None),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                // A signal (a child server exiting) interrupted the read.
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// One command, or `None` if the connection fails or times out (for
    /// tests that kill servers under load).
    pub fn try_call(&mut self, args: &[&str]) -> Option<Frame> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
        }
        self.stream.write_all(&out).ok()?;
        self.try_read().ok()?
    }

    pub fn call_bytes(&mut self, args: &[&[u8]]) -> Frame {
        self.send(args);
        self.read().expect("connection closed before the reply")
    }

    pub fn call(&mut self, args: &[&str]) -> Frame {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.call_bytes(&args)
    }
}

pub fn bulk(s: &str) -> Frame {
    Frame::Bulk(bytes::Bytes::copy_from_slice(s.as_bytes()))
}

pub fn err(s: &str) -> Frame {
    Frame::Error(bytes::Bytes::copy_from_slice(s.as_bytes()))
}

/// Runs an external tool, failing the test with a clear message when it is
/// not installed (CI installs it; see .ci/run).
pub fn tool(name: &str) -> Command {
    let found = Command::new("sh").arg("-c").arg(format!("command -v {name}")).output().unwrap();
    assert!(found.status.success(), "{name} is not installed: run .ci/run or install it (see README)");
    Command::new(name)
}

/// Runs `cmd`, asserting it exits successfully; shows its output otherwise.
pub fn run_tool(what: &str, cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: spawn: {e}"));
    assert!(
        out.status.success(),
        "{what} failed with {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    out
}

/// The `NAME: N requests per second, …` summaries of a `redis-benchmark -q`
/// run. Progress lines are separated by `\r`, so both `\r` and `\n` end a
/// line.
/// Asserts redis-benchmark's output reports a positive rate for each test.
pub fn assert_benchmarked(what: &str, text: &str, names: &[&str]) {
    let results = benchmark_results(text);
    for name in names {
        let rps = results
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("{what}: no result for {name} in {text:?}"))
            .1;
        assert!(rps > 0.0, "{what}: {name} at {rps} requests per second");
    }
}

pub fn benchmark_results(out: &str) -> Vec<(String, f64)> {
    out.split(['\r', '\n'])
        .filter_map(|line| {
            let (name, rest) = line.trim().split_once(": ")?;
            let (rps, _) = rest.split_once(" requests per second")?;
            Some((name.to_string(), rps.trim().parse().ok()?))
        })
        .collect()
}

/// A client for a cluster that sends each keyed command to the node
/// leading the key's slot: it follows `-MOVED` (to the nodes it was given; a
/// redirect elsewhere is waited out) and waits out `-TRYAGAIN` and
/// `-CLUSTERDOWN` (all promise nothing was applied). Anything else is
/// returned as is.
pub struct Routed {
    /// `host:port` of the nodes this client may use.
    addrs: Vec<String>,
    connections: std::collections::HashMap<String, Client>,
    /// Per slot, the index in `addrs` of its last known leader.
    leaders: std::collections::HashMap<u16, usize>,
}

impl Routed {
    /// Nodes on 127.0.0.1, by client port.
    pub fn new(ports: &[u16]) -> Routed {
        Routed::at(ports.iter().map(|p| format!("127.0.0.1:{p}")).collect())
    }

    /// Nodes at any `host:port` (in network namespaces, say).
    pub fn at(addrs: Vec<String>) -> Routed {
        assert!(!addrs.is_empty());
        Routed { addrs, connections: Default::default(), leaders: Default::default() }
    }

    /// `args[1]` is the key. `None` when no node gave an answer in `TIMEOUT`
    /// (a connection failing mid-command is such a case: outcome unknown).
    pub fn call(&mut self, args: &[&str]) -> Option<Frame> {
        let slot = shoal_engine::slot::key_slot(args[1].as_bytes());
        let deadline = std::time::Instant::now() + TIMEOUT;
        let mut node = self.leaders.get(&slot).copied().unwrap_or(usize::from(slot) % self.addrs.len());
        while std::time::Instant::now() < deadline {
            let addr = self.addrs[node].clone();
            let client = match self.connections.entry(addr.clone()) {
                std::collections::hash_map::Entry::Occupied(c) => c.into_mut(),
                std::collections::hash_map::Entry::Vacant(v) => match Client::try_connect_to(&addr) {
                    Some(c) => v.insert(c),
                    None => {
                        // Down: the next known node.
                        node = (node + 1) % self.addrs.len();
                        std::thread::sleep(Duration::from_millis(20));
                        continue;
                    }
                },
            };
            let Some(reply) = client.try_call(args) else {
                self.connections.remove(&addr);
                return None;
            };
            match &reply {
                Frame::Error(e) if e.starts_with(b"MOVED ") => {
                    let text = String::from_utf8_lossy(e);
                    let to = text.rsplit(' ').next().expect("MOVED names host:port");
                    match self.addrs.iter().position(|a| a == to) {
                        Some(i) => {
                            node = i;
                            self.leaders.insert(slot, i);
                        }
                        // A node this client does not use (one a test froze
                        // or cut off): wait for the cluster to move on.
                        None => std::thread::sleep(Duration::from_millis(20)),
                    }
                }
                Frame::Error(e) if e.starts_with(b"TRYAGAIN") || e.starts_with(b"CLUSTERDOWN") => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => return Some(reply),
            }
        }
        None
    }
}
