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
