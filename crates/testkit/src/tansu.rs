//! A real Kafka-compatible broker for tests: `tansu` with its in-memory storage engine, on a
//! free loopback port, stopped on drop.
//!
//! The server counts as up once it answers a Kafka `Metadata` request (sent by hand here, so
//! the test kit needs no Kafka client) naming itself at the advertised address.

use crate::net::free_port;
use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

const INSTALL: &str = "install with scripts/install-test-deps.sh";
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A running `tansu` broker. Its storage is in memory: data does not survive
/// [`TansuServer::stop`], a restarted broker starts empty.
pub struct TansuServer {
    dir: tempfile::TempDir,
    port: u16,
    bin: PathBuf,
    child: Mutex<Option<Child>>,
}

impl TansuServer {
    /// Starts a broker. Panics if `tansu` is not installed or does not come up, with its log
    /// in the message.
    pub fn new() -> TansuServer {
        let dir = tempfile::Builder::new()
            .prefix("oms-tansu-")
            .tempdir()
            .expect("temporary directory for tansu");
        let server = TansuServer {
            dir,
            port: free_port(),
            bin: find_tansu(),
            child: Mutex::new(None),
        };
        server.start();
        server
    }

    /// `127.0.0.1:PORT`, for a client's `bootstrap.servers`.
    pub fn bootstrap_servers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the broker process is running (started and not stopped).
    pub fn is_running(&self) -> bool {
        self.lock().is_some()
    }

    /// The broker's output so far (for a failing test's message).
    pub fn log(&self) -> String {
        read_log(&self.log_path())
    }

    /// Starts the broker again on the same port after [`TansuServer::stop`]; does nothing if
    /// it runs. Returns once it answers metadata requests.
    pub fn start(&self) {
        let mut child = self.lock();
        if child.is_some() {
            return;
        }
        let log = self.log_path();
        let out = File::options()
            .create(true)
            .append(true)
            .open(&log)
            .expect("tansu log file");
        let err = out.try_clone().expect("tansu log file");
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let mut spawned = Command::new(&self.bin)
            .arg("broker")
            .args(["--listener-url", &url])
            .args(["--advertised-listener-url", &url])
            .args(["--storage-engine", "memory://tansu/"])
            // OMS_TANSU_LOG (a RUST_LOG filter) lets a failing test see the broker's side.
            .env(
                "RUST_LOG",
                std::env::var("OMS_TANSU_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {} ({e}); {INSTALL}", self.bin.display()));
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(Some(status)) = spawned.try_wait() {
                // Another process may have taken the port meanwhile: then tansu exits at once.
                panic!("tansu exited at start ({status}):\n{}", read_log(&log));
            }
            match metadata_brokers(self.port) {
                Ok(brokers) if brokers.contains(&("127.0.0.1".to_string(), self.port)) => break,
                Ok(brokers) => {
                    let _ = spawned.kill();
                    let _ = spawned.wait();
                    panic!("tansu advertises {brokers:?}, not 127.0.0.1:{}", self.port);
                }
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => {
                    let _ = spawned.kill();
                    let _ = spawned.wait();
                    panic!(
                        "tansu did not answer metadata within {READY_TIMEOUT:?} ({e}):\n{}",
                        read_log(&log)
                    );
                }
            }
        }
        *child = Some(spawned);
    }

    /// Stops the broker and waits for it to exit; its in-memory data is lost. Does nothing if
    /// it is stopped.
    pub fn stop(&self) {
        if let Some(mut child) = self.lock().take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("tansu.log")
    }

    fn lock(&self) -> MutexGuard<'_, Option<Child>> {
        self.child.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Default for TansuServer {
    fn default() -> Self {
        TansuServer::new()
    }
}

impl Drop for TansuServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `tansu` on the `PATH`, else in `~/.cargo/bin` (where `cargo install` puts it).
fn find_tansu() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join("tansu"));
    let in_cargo = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .map(|c| c.join("bin").join("tansu"));
    on_path
        .chain(in_cargo)
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("the tansu broker is not installed; {INSTALL}"))
}

fn read_log(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| format!("(no log: {e})"))
}

/// Sends a `Metadata` v1 request for all topics and returns the brokers of the answer.
fn metadata_brokers(port: u16) -> std::io::Result<Vec<(String, u16)>> {
    const METADATA: i16 = 3;
    const CORRELATION: i32 = 0x6f6d73;
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    let client_id = b"oms-testkit";
    let mut body = Vec::new();
    body.extend_from_slice(&METADATA.to_be_bytes());
    body.extend_from_slice(&1i16.to_be_bytes()); // version
    body.extend_from_slice(&CORRELATION.to_be_bytes());
    body.extend_from_slice(&(client_id.len() as i16).to_be_bytes());
    body.extend_from_slice(client_id);
    body.extend_from_slice(&(-1i32).to_be_bytes()); // topics: null = all
    let mut request = (body.len() as i32).to_be_bytes().to_vec();
    request.extend_from_slice(&body);
    stream.write_all(&request)?;

    let mut size = [0u8; 4];
    stream.read_exact(&mut size)?;
    let size = i32::from_be_bytes(size);
    if !(8..=16 << 20).contains(&size) {
        return Err(bad(format!("response size {size}")));
    }
    let mut response = vec![0u8; size as usize];
    stream.read_exact(&mut response)?;
    let mut r = Reader(&response);
    if r.i32()? != CORRELATION {
        return Err(bad("correlation id of another request".into()));
    }
    let count = r.i32()?;
    let mut brokers = Vec::new();
    for _ in 0..count.max(0) {
        let _node_id = r.i32()?;
        let host = r.string()?.unwrap_or_default();
        let port = r.i32()?;
        let _rack = r.string()?;
        brokers.push((host, port as u16));
    }
    Ok(brokers)
}

fn bad(what: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what)
}

/// Big-endian fields of a Kafka response.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> std::io::Result<&[u8]> {
        if self.0.len() < n {
            return Err(bad("short response".into()));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn i16(&mut self) -> std::io::Result<i16> {
        Ok(i16::from_be_bytes(
            self.take(2)?.try_into().expect("2 bytes"),
        ))
    }

    fn i32(&mut self) -> std::io::Result<i32> {
        Ok(i32::from_be_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    /// A nullable string: length `-1` is null.
    fn string(&mut self) -> std::io::Result<Option<String>> {
        let len = self.i16()?;
        if len < 0 {
            return Ok(None);
        }
        let bytes = self.take(len as usize)?;
        Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
    }
}
