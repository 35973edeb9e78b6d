//! A real PostgreSQL server for tests: a fresh cluster (`initdb`) in a temporary directory,
//! listening on a free loopback port, stopped and deleted on drop.
//!
//! PostgreSQL refuses to run as root, so when the tests run as root the server runs as the
//! `postgres` system user that Debian's package creates, and the directory is handed to it.

use crate::net::free_port;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

const INSTALL: &str = "install with scripts/install-test-deps.sh";
const READY_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// A running PostgreSQL cluster. The superuser is `postgres` with trust authentication, and
/// the database `postgres` exists; see [`PostgresServer::url`].
pub struct PostgresServer {
    dir: tempfile::TempDir,
    port: u16,
    bin: PathBuf,
    /// (uid, gid) the server runs as, when the tests run as root.
    run_as: Option<(u32, u32)>,
    child: Mutex<Option<Child>>,
}

impl PostgresServer {
    /// Creates a cluster and starts it. Panics if PostgreSQL is not installed or does not come
    /// up, with its log in the message.
    pub fn new() -> PostgresServer {
        let bin = find_bin_dir();
        let run_as = if running_as_root() {
            Some(postgres_user())
        } else {
            None
        };
        let dir = tempfile::Builder::new()
            .prefix("oms-pg-")
            .tempdir()
            .expect("temporary directory for PostgreSQL");
        if let Some((uid, gid)) = run_as {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                .expect("hand the PostgreSQL directory to the postgres user");
        }
        let server = PostgresServer {
            port: free_port(),
            bin,
            run_as,
            child: Mutex::new(None),
            dir,
        };
        server.initdb();
        server.start();
        server
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`
    pub fn url(&self) -> String {
        self.url_for("postgres")
    }

    /// The URL of another database on this server (create it first).
    pub fn url_for(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the server process is running (started and not stopped).
    pub fn is_running(&self) -> bool {
        self.lock().is_some()
    }

    /// Starts the server again on the same port and data after [`PostgresServer::stop`];
    /// does nothing if it runs. Returns once it accepts connections.
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
            .expect("PostgreSQL log file");
        let err = out.try_clone().expect("PostgreSQL log file");
        let dir = self.dir.path().to_str().expect("UTF-8 temporary path");
        let mut cmd = self.command("postgres");
        cmd.arg("-D")
            .arg(self.data_dir())
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-k")
            .arg(dir)
            .args(["-c", "listen_addresses=127.0.0.1"])
            // A test cluster is thrown away: durability would only slow the tests down.
            .args(["-c", "fsync=off", "-c", "synchronous_commit=off"])
            .args(["-c", "full_page_writes=off"])
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let mut spawned = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start PostgreSQL ({e}); {INSTALL}"));
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(Some(status)) = spawned.try_wait() {
                panic!("PostgreSQL exited at start ({status}):\n{}", read_log(&log));
            }
            if self.accepts_connections() {
                break;
            }
            if Instant::now() > deadline {
                let _ = spawned.kill();
                let _ = spawned.wait();
                panic!(
                    "PostgreSQL did not accept connections within {READY_TIMEOUT:?}:\n{}",
                    read_log(&log)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        *child = Some(spawned);
    }

    /// Stops the server (a fast shutdown: clients are disconnected, data is kept) and waits
    /// for it to exit. Does nothing if it is stopped.
    pub fn stop(&self) {
        if let Some(child) = self.lock().take() {
            shut_down(child, "INT");
        }
    }

    fn initdb(&self) {
        let out = self
            .command("initdb")
            .arg("-D")
            .arg(self.data_dir())
            .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C"])
            .arg("--no-sync")
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run initdb ({e}); {INSTALL}"));
        assert!(
            out.status.success(),
            "initdb failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn accepts_connections(&self) -> bool {
        self.command("pg_isready")
            .args([
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-t",
                "1",
            ])
            .arg("-p")
            .arg(self.port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }

    /// A command for one of PostgreSQL's programs, run as the server's user.
    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin.join(program));
        if let Some((uid, gid)) = self.run_as {
            cmd.uid(uid).gid(gid);
        }
        cmd
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    fn lock(&self) -> MutexGuard<'_, Option<Child>> {
        self.child.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Default for PostgresServer {
    fn default() -> Self {
        PostgresServer::new()
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        // An immediate shutdown: the cluster is deleted next, nothing needs to be flushed.
        if let Some(child) = self.lock().take() {
            shut_down(child, "QUIT");
        }
    }
}

/// Sends `signal` to the postmaster and waits for it to exit, killing it if it takes too long.
fn shut_down(mut child: Child, signal: &str) {
    let sent = Command::new("kill")
        .args(["-s", signal, &child.id().to_string()])
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    let deadline = Instant::now() + STOP_TIMEOUT;
    while sent && Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The newest PostgreSQL in Debian's layout (`/usr/lib/postgresql/N/bin`), else the one on
/// `PATH`.
fn find_bin_dir() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            has_programs(&bin).then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return bin;
    }
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .find(|d| has_programs(d))
        .unwrap_or_else(|| panic!("PostgreSQL (initdb, postgres, pg_isready) not found; {INSTALL}"))
}

fn has_programs(dir: &Path) -> bool {
    ["initdb", "postgres", "pg_isready"]
        .iter()
        .all(|p| dir.join(p).is_file())
}

fn running_as_root() -> bool {
    // The owner of /proc/self is the process's effective user.
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// (uid, gid) of the `postgres` system user.
fn postgres_user() -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").expect("read /etc/passwd");
    passwd
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.len() > 3 && fields[0] == "postgres")
                .then(|| Some((fields[2].parse().ok()?, fields[3].parse().ok()?)))
                .flatten()
        })
        .unwrap_or_else(|| {
            panic!("running as root needs the postgres system user to run PostgreSQL; {INSTALL}")
        })
}

fn read_log(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| format!("(no log: {e})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(server: &PostgresServer, sql: &str) -> Option<String> {
        let out = server
            .command("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-tAc",
                sql,
            ])
            .arg("-p")
            .arg(server.port().to_string())
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    #[test]
    fn starts_stops_and_restarts_with_its_data() {
        let server = PostgresServer::new();
        assert_eq!(query(&server, "SELECT 40 + 2").as_deref(), Some("42"));
        query(
            &server,
            "CREATE TABLE kept (v int); INSERT INTO kept VALUES (7)",
        )
        .unwrap();
        server.stop();
        assert!(!server.is_running());
        assert_eq!(
            query(&server, "SELECT 1"),
            None,
            "stopped server refuses connections"
        );
        server.start();
        assert_eq!(query(&server, "SELECT v FROM kept").as_deref(), Some("7"));
        let dir = server.dir.path().to_path_buf();
        drop(server);
        assert!(!dir.exists(), "directory removed on drop");
    }
}
