//! `oms accounts`: the operator's commands on embedded storage hold to the admin API's rules
//! (they call the same checks), refusing with the option at fault.

use std::process::{Command, Output};

fn oms(data: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_oms"))
        .args(args)
        .env("OMS_SERVER__DATA_DIR", data)
        .env_remove("OMS_CONFIG")
        .output()
        .expect("run oms")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn refused(out: &Output, expected: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "accepted, expected {expected:?}");
    assert!(stderr.contains(expected), "{stderr}");
}

#[test]
fn account_commands_apply_the_admin_api_rules() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    refused(
        &oms(data, &["accounts", "create", "--name", "  "]),
        "--name:",
    );
    let long = "x".repeat(65);
    refused(
        &oms(data, &["accounts", "create", "--name", &long]),
        "--name:",
    );
    let created = ok(&oms(data, &["accounts", "create", "--name", " desk1 "]));
    assert!(created.contains("(desk1) created"), "{created}");
    refused(
        &oms(data, &["accounts", "create", "--name", "desk1"]),
        "exists already",
    );
    let id = created
        .split_whitespace()
        .nth(1)
        .expect("the account id")
        .to_string();

    let key = ok(&oms(
        data,
        &["accounts", "key", "--account", &id, "--read-only"],
    ));
    assert!(key.starts_with("read-only API key for account"), "{key}");

    let deposit = |asset: &str, amount: &str, reference: &str| {
        oms(
            data,
            &[
                "accounts",
                "deposit",
                "--account",
                &id,
                "--asset",
                asset,
                "--amount",
                amount,
                "--reference",
                reference,
            ],
        )
    };
    refused(&deposit("XYZ", "1", "r1"), "--asset:");
    refused(&deposit("USD", "0", "r1"), "--amount:");
    refused(&deposit("USD", "1000000000001", "r1"), "--amount:");
    refused(&deposit("USD", "0.0000000000001", "r1"), "--amount:");
    refused(&deposit("USD", "1", "a b"), "--reference:");
    let credited = ok(&deposit("USD", "250000", "wire-1"));
    assert!(
        credited.contains("reference wire-1, asset USD"),
        "{credited}"
    );

    // Once the credit is recorded (as the processor of a running `oms serve` would), the
    // reference with another amount is refused; the same amount is not.
    record_credit(data, id.parse().unwrap(), "wire-1:USD", "250000");
    refused(&deposit("USD", "250001", "wire-1"), "credited");
    ok(&deposit("USD", "250000.00", "wire-1"));
}

fn record_credit(data: &std::path::Path, account: u64, reference: &str, amount: &str) {
    use oms_ports::order_store::{DepositRecord, OrderStore, StoreBatch};
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = oms_embedded::SqliteStore::open(&data.join("oms.db"), Default::default())
            .await
            .unwrap();
        let batch = StoreBatch {
            deposits: vec![DepositRecord {
                account: oms_domain::ids::AccountId(account),
                reference: reference.into(),
                asset: oms_domain::ids::Asset::new("USD"),
                amount: amount.parse().unwrap(),
                credited_at: oms_domain::ids::Timestamp(1),
            }],
            ..StoreBatch::default()
        };
        store.apply(batch).await.unwrap();
    });
}
