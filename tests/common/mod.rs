//! Shared helpers for the integration tests: start a real `shoal server`
//! process on a free port, wait until it answers, talk RESP to it, and stop
//! it (SIGTERM, so it saves its snapshot) or kill it when the test ends.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use shoal_proto::{parse_frame, Frame};

pub const BIN: &str = env!("CARGO_BIN_EXE_shoal");
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A fresh directory under the target dir, unique to this test.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
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
        let port = free_port();
        let child = Command::new(BIN)
            .args(["server", "--port", &port.to_string(), "--dir"])
            .arg(dir)
            .args(["--log-level", "warn"])
            .args(extra)
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn shoal server");
        let mut server = Server {
            port,
            dir: dir.to_path_buf(),
            child: Some(child),
        };
        server.wait_ready();
        server
    }

    pub fn start(name: &str, extra: &[&str]) -> Server {
        Server::start_in(&temp_dir(name), extra)
    }

    fn wait_ready(&mut self) {
        let port = self.port;
        let child = self.child.as_mut().unwrap();
        wait_for("the server to answer PING", || {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("shoal server exited early: {status}");
            }
            let mut c = Client::try_connect(port)?;
            (c.call(&["PING"]) == Frame::simple("PONG")).then_some(())
        });
    }

    pub fn client(&self) -> Client {
        Client::connect(self.port)
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
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

/// A minimal blocking RESP client built on our own codec.
pub struct Client {
    pub stream: TcpStream,
    buf: BytesMut,
}

impl Client {
    pub fn try_connect(port: u16) -> Option<Client> {
        let stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        Some(Client {
            stream,
            buf: BytesMut::new(),
        })
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
        loop {
            if let Some((frame, used)) = parse_frame(&self.buf).expect("server sent valid RESP") {
                let _ = self.buf.split_to(used);
                return Some(frame);
            }
            let mut chunk = [0u8; 64 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return None,
                Err(e) => panic!("read from shoal: {e}"),
            }
        }
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
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
        .unwrap();
    assert!(
        found.status.success(),
        "{name} is not installed: run .ci/run or install it (see README)"
    );
    Command::new(name)
}
