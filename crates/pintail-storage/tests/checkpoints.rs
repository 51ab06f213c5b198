//! Tables written by many small INSERTs get checkpoints, so statements do
//! not replay an ever longer log; inside a transaction too, where the
//! checkpoints stay with the staged commits and never reach the table.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a failed unwrap is a failed test")]

mod common;

use std::path::Path;

use common::{int as count, open, run};

fn checkpoints(db: &Path, table: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(db.join("main").join(table).join("_delta_log"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".checkpoint."))
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn single_row_inserts_write_a_checkpoint_every_ten_commits() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    let session = open(&db);
    run(&session, "CREATE TABLE t (n INT)").await;
    for i in 0..25 {
        run(&session, &format!("INSERT INTO t VALUES ({i})")).await;
    }
    // versions 0 (the CREATE) to 25: checkpoints after 10 and 20 commits
    assert_eq!(
        checkpoints(&db, "t"),
        ["00000000000000000009.checkpoint.parquet", "00000000000000000019.checkpoint.parquet"]
    );
    assert_eq!(count(&session, "SELECT count(*) FROM t").await, 25);
}

#[tokio::test]
async fn a_transaction_keeps_its_checkpoints_to_itself() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    let session = open(&db);
    run(&session, "CREATE TABLE t (n INT)").await;
    run(&session, "BEGIN").await;
    for i in 0..25 {
        run(&session, &format!("INSERT INTO t VALUES ({i})")).await;
    }
    assert_eq!(count(&session, "SELECT count(*) FROM t").await, 25);
    assert!(checkpoints(&db, "t").is_empty());
    run(&session, "COMMIT").await;
    assert!(checkpoints(&db, "t").is_empty());
    assert_eq!(count(&session, "SELECT count(*) FROM t").await, 25);
    assert_eq!(count(&session, "SELECT max(version) FROM (DESCRIBE HISTORY t)").await, 1);
}

/// The names of the files in the log of table `table`.
fn log_entries(db: &Path, table: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(db.join("main").join(table).join("_delta_log"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| Path::new(n).extension().is_some_and(|x| x == "json") || n.contains(".checkpoint."))
        .collect();
    names.sort();
    names
}

/// Makes table `main.t (n INT)` in `db` with deltalake, whose log entries
/// expire at once, and with expired-log cleanup on or off.
async fn table_with_expiring_log(db: &Path, cleanup: bool) {
    use deltalake::TableProperty;
    use deltalake::kernel::{DataType, StructField};
    let dir = db.join("main").join("t");
    std::fs::create_dir_all(&dir).unwrap();
    deltalake::operations::create::CreateBuilder::new()
        .with_location(dir.to_str().unwrap())
        .with_columns([StructField::new("n", DataType::INTEGER, true)])
        .with_configuration_property(TableProperty::CheckpointInterval, Some("10"))
        .with_configuration_property(TableProperty::LogRetentionDuration, Some("interval 0 seconds"))
        .with_configuration_property(TableProperty::EnableExpiredLogCleanup, Some(cleanup.to_string()))
        .await
        .unwrap();
}

#[tokio::test]
async fn expired_log_entries_are_dropped_when_a_checkpoint_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    let session = open(&db);
    table_with_expiring_log(&db, true).await;
    for i in 1..=8 {
        run(&session, &format!("INSERT INTO t VALUES ({i})")).await;
    }
    // no checkpoint yet, so the whole log is kept (expired entries go only
    // up to a checkpoint)
    assert_eq!(log_entries(&db, "t").len(), 9);
    run(&session, "INSERT INTO t VALUES (9)").await;
    // version 9 is the tenth commit: its checkpoint, then the entries
    // before it, all expired, are dropped
    assert_eq!(
        log_entries(&db, "t"),
        ["00000000000000000009.checkpoint.parquet", "00000000000000000009.json"]
    );
    run(&session, "INSERT INTO t VALUES (10)").await;
    assert_eq!(count(&session, "SELECT count(*) FROM t").await, 10);
    assert_eq!(count(&session, "SELECT sum(n) FROM t").await, 55);
}

#[tokio::test]
async fn a_table_that_turns_log_cleanup_off_keeps_its_log() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    let session = open(&db);
    table_with_expiring_log(&db, false).await;
    for i in 1..=12 {
        run(&session, &format!("INSERT INTO t VALUES ({i})")).await;
    }
    let entries = log_entries(&db, "t");
    assert_eq!(entries.len(), 13 + 1, "{entries:?}");
    assert!(entries.contains(&"00000000000000000009.checkpoint.parquet".to_string()));
    assert_eq!(count(&session, "SELECT count(*) FROM t VERSION AS OF 3").await, 3);
}

#[tokio::test]
async fn a_transaction_keeps_every_statement_of_a_table_whose_log_expires_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    let session = open(&db);
    table_with_expiring_log(&db, true).await;
    run(&session, "BEGIN").await;
    for i in 1..=12 {
        run(&session, &format!("INSERT INTO t VALUES ({i})")).await;
    }
    // deltalake's UPDATE cleans up expired log entries after its commit,
    // here the transaction's staged ones, before its staged checkpoint
    run(&session, "UPDATE t SET n = n * 10 WHERE n = 1").await;
    run(&session, "COMMIT").await;
    assert_eq!(count(&session, "SELECT count(*) FROM t").await, 12);
    assert_eq!(count(&session, "SELECT sum(n) FROM t").await, 10 + (2..=12).sum::<i64>());
}

#[tokio::test]
async fn a_table_with_checkpoint_protection_keeps_its_log() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    let session = open(&db);
    table_with_expiring_log(&db, true).await;
    // version 1, as a writer that turns on the `checkpointProtection`
    // writer feature (Databricks, say) would commit it
    let log = db.join("main").join("t").join("_delta_log");
    let first = std::fs::read_to_string(log.join(format!("{:020}.json", 0))).unwrap();
    let mut metadata: serde_json::Value = first
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .find(|action| action.get("metaData").is_some())
        .unwrap();
    metadata["metaData"]["configuration"]["delta.requireCheckpointProtectionBeforeVersion"] = "1".into();
    let protocol = serde_json::json!({"protocol": {
        "minReaderVersion": 1, "minWriterVersion": 7, "writerFeatures": ["checkpointProtection"]
    }});
    std::fs::write(log.join(format!("{:020}.json", 1)), format!("{protocol}\n{metadata}\n")).unwrap();
    for i in 2..=9 {
        run(&session, &format!("INSERT INTO t VALUES ({i})")).await;
    }
    let entries = log_entries(&db, "t");
    assert!(entries.contains(&"00000000000000000009.checkpoint.parquet".to_string()), "{entries:?}");
    assert_eq!(entries.len(), 10 + 1, "{entries:?}");
    assert_eq!(count(&session, "SELECT sum(n) FROM t").await, (2..=9).sum::<i64>());
}
