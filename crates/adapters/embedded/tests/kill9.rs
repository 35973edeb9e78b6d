//! A real crash: a child process appends from many tasks and is killed with SIGKILL; every
//! record it saw acknowledged must be there, intact, when the log is reopened.

use oms_embedded::{FileLog, FileLogOptions};
use oms_ports::event_log::{EventLog, NewRecord};
use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

const DIR_VAR: &str = "OMS_KILL9_CHILD_DIR";
const TOPIC: &str = "crash";

/// The child: runs only when the parent test starts this binary with the directory set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_appender() {
    let Ok(dir) = std::env::var(DIR_VAR) else {
        return;
    };
    let log = FileLog::open(dir.as_ref(), FileLogOptions::default())
        .await
        .unwrap();
    log.ensure_topic(TOPIC, 2).await.unwrap();
    let tasks: Vec<_> = (0..16)
        .map(|t| {
            let log = log.clone();
            tokio::spawn(async move {
                for i in 0u64.. {
                    let value = format!("{t}:{i}:{}", "x".repeat((i % 50) as usize));
                    let rec = NewRecord {
                        key: format!("task-{t}").into_bytes(),
                        value: value.clone().into_bytes(),
                        headers: vec![],
                    };
                    let a = log.append(TOPIC, vec![rec]).await.unwrap()[0];
                    // Printed only once the append is acknowledged.
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "ACK {} {} {value}", a.partition, a.offset).unwrap();
                    out.flush().unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
}

#[test]
fn sigkill_loses_no_acknowledged_record() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_appender",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(DIR_VAR, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acked = Vec::new();
    while acked.len() < 2000 {
        let line = lines.next().expect("child output").unwrap();
        if let Some(rest) = line.strip_prefix("ACK ") {
            acked.push(rest.to_string());
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // Acknowledgements printed before the kill are still in the pipe.
    for line in lines {
        if let Some(rest) = line.unwrap().strip_prefix("ACK ") {
            acked.push(rest.to_string());
        }
    }

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let log = FileLog::open(dir.path(), FileLogOptions::default())
            .await
            .expect("reopen after SIGKILL");
        let mut stored = HashSet::new();
        for p in 0..2 {
            let end = log.end_offset(TOPIC, p).await.unwrap();
            let mut next = 0;
            while next < end {
                let page = log.read(TOPIC, p, next, 500).await.unwrap();
                for r in &page {
                    assert_eq!(r.offset, next, "dense offsets");
                    next += 1;
                    stored.insert(format!(
                        "{p} {} {}",
                        r.offset,
                        String::from_utf8(r.value.to_vec()).unwrap()
                    ));
                }
            }
        }
        let missing: Vec<&String> = acked.iter().filter(|a| !stored.contains(*a)).collect();
        assert!(
            missing.is_empty(),
            "{} of {} acknowledged records missing, e.g. {:?}",
            missing.len(),
            acked.len(),
            missing.first()
        );
        // The log still takes appends after recovery.
        log.append(
            TOPIC,
            vec![NewRecord {
                key: b"after".to_vec(),
                value: b"crash".to_vec(),
                headers: vec![],
            }],
        )
        .await
        .unwrap();
    });
}
