//! A real Redis server for tests, on a free loopback port, with no persistence, stopped on drop.

use crate::net::{free_port, wait_for_port};
use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

const INSTALL: &str = "install with scripts/install-test-deps.sh";
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// A running `redis-server`. It keeps nothing on disk, so data does not survive
/// [`RedisServer::stop`]: a restarted server starts empty, like a cache node that was replaced.
pub struct RedisServer {
    dir: tempfile::TempDir,
    port: u16,
    child: Mutex<Option<Child>>,
}

impl RedisServer {
    /// Starts a server. Panics if `redis-server` is not installed or does not come up.
    pub fn new() -> RedisServer {
        let dir = tempfile::Builder::new()
            .prefix("oms-redis-")
            .tempdir()
            .expect("temporary directory for Redis");
        let server = RedisServer {
            dir,
            port: free_port(),
            child: Mutex::new(None),
        };
        server.start();
        server
    }

    /// `redis://127.0.0.1:PORT/`
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the server process is running (started and not stopped).
    pub fn is_running(&self) -> bool {
        self.lock().is_some()
    }

    /// Starts the server again on the same port after [`RedisServer::stop`]; does nothing if
    /// it runs. Returns once it accepts connections.
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
            .expect("Redis log file");
        let err = out.try_clone().expect("Redis log file");
        let mut spawned = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start redis-server ({e}); {INSTALL}"));
        // Another process may hold the port: then ours exits at once.
        let up = wait_for_port(self.port, READY_TIMEOUT) && matches!(spawned.try_wait(), Ok(None));
        if !up {
            let _ = spawned.kill();
            let _ = spawned.wait();
            panic!(
                "redis-server did not listen on port {} within {READY_TIMEOUT:?}:\n{}",
                self.port,
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        *child = Some(spawned);
    }

    /// Kills the server, as a crash would, and waits for it to exit. Clients see their
    /// connections drop and new ones refused. Does nothing if it is stopped.
    pub fn stop(&self) {
        if let Some(mut child) = self.lock().take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("redis.log")
    }

    fn lock(&self) -> MutexGuard<'_, Option<Child>> {
        self.child.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Default for RedisServer {
    fn default() -> Self {
        RedisServer::new()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpStream;

    fn ping(port: u16) -> std::io::Result<String> {
        let mut s = TcpStream::connect(("127.0.0.1", port))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        s.write_all(b"PING\r\n")?;
        let mut buf = [0u8; 16];
        let n = s.read(&mut buf)?;
        Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
    }

    #[test]
    fn starts_stops_and_restarts_on_the_same_port() {
        let server = RedisServer::new();
        assert_eq!(ping(server.port()).unwrap(), "+PONG\r\n");
        server.stop();
        assert!(!server.is_running());
        assert!(
            ping(server.port()).is_err(),
            "stopped server refuses connections"
        );
        server.start();
        assert_eq!(ping(server.port()).unwrap(), "+PONG\r\n");
        let dir = server.dir.path().to_path_buf();
        drop(server);
        assert!(!dir.exists(), "directory removed on drop");
    }
}
