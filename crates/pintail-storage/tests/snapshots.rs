//! A session keeps each table's snapshot between statements and brings it
//! up to date with the commits made since; what it reads must still be the
//! table's latest version, whoever wrote it, and a table dropped and made
//! again must be read afresh, not as an update of the old one.

#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

mod common;

use common::{int, run, two_sessions};

#[tokio::test]
async fn a_kept_snapshot_sees_what_other_sessions_commit() {
    let (_dir, _db, a, b) = two_sessions("CREATE TABLE t (n BIGINT)").await;
    run(&a, "INSERT INTO t VALUES (1)").await;
    assert_eq!(int(&a, "SELECT sum(n) FROM t").await, 1);
    run(&b, "INSERT INTO t VALUES (2), (3)").await;
    assert_eq!(int(&a, "SELECT sum(n) FROM t").await, 6);
    run(&b, "UPDATE t SET n = n * 10 WHERE n > 1").await;
    run(&b, "DELETE FROM t WHERE n = 1").await;
    assert_eq!(int(&a, "SELECT sum(n) FROM t").await, 50);
    // an INSERT planned on the kept snapshot commits after b's commits, and
    // keeps them
    run(&a, "INSERT INTO t VALUES (4)").await;
    assert_eq!(int(&b, "SELECT sum(n) FROM t").await, 54);
    assert_eq!(int(&a, "SELECT count(*) FROM t").await, 3);
    // across a checkpoint (every 10 commits) written by the other session
    for i in 0..12 {
        run(&b, &format!("INSERT INTO t VALUES ({})", 100 + i)).await;
    }
    assert_eq!(int(&a, "SELECT count(*) FROM t").await, 15);
    run(&a, "INSERT INTO t VALUES (5)").await;
    assert_eq!(int(&b, "SELECT count(*) FROM t").await, 16);
}

#[tokio::test]
async fn a_table_dropped_and_made_again_is_read_afresh() {
    let (_dir, _db, a, b) = two_sessions("CREATE TABLE t (n BIGINT)").await;
    run(&a, "INSERT INTO t VALUES (1)").await;
    run(&a, "INSERT INTO t VALUES (2)").await;
    assert_eq!(int(&a, "SELECT sum(n) FROM t").await, 3);
    // the new table reaches the same version as the one a kept
    run(&b, "DROP TABLE t").await;
    run(&b, "CREATE TABLE t (n BIGINT)").await;
    run(&b, "INSERT INTO t VALUES (10)").await;
    run(&b, "INSERT INTO t VALUES (20)").await;
    assert_eq!(int(&a, "SELECT sum(n) FROM t").await, 30);
    // and an INSERT of a commits to the new table, on its files
    run(&a, "INSERT INTO t VALUES (300)").await;
    assert_eq!(int(&b, "SELECT sum(n) FROM t").await, 330);
    // fewer versions than the kept snapshot, and another schema
    run(&b, "DROP TABLE t").await;
    run(&b, "CREATE TABLE t (n BIGINT, m BIGINT)").await;
    run(&b, "INSERT INTO t VALUES (7, 8)").await;
    assert_eq!(int(&a, "SELECT sum(n + m) FROM t").await, 15);
    run(&b, "CREATE OR REPLACE TABLE t AS SELECT 40::BIGINT AS n").await;
    assert_eq!(int(&a, "SELECT sum(n) FROM t").await, 40);
}

#[tokio::test]
async fn a_transaction_keeps_its_snapshots_apart_from_the_sessions() {
    let (_dir, _db, a, b) = two_sessions("CREATE TABLE t (n BIGINT)").await;
    run(&a, "INSERT INTO t VALUES (1)").await;
    assert_eq!(int(&a, "SELECT count(*) FROM t").await, 1);
    run(&a, "BEGIN").await;
    run(&a, "INSERT INTO t VALUES (2)").await;
    run(&a, "INSERT INTO t VALUES (3)").await;
    assert_eq!(int(&a, "SELECT count(*) FROM t").await, 3);
    run(&a, "ROLLBACK").await;
    assert_eq!(int(&a, "SELECT count(*) FROM t").await, 1);
    run(&a, "BEGIN").await;
    run(&a, "INSERT INTO t VALUES (4)").await;
    assert_eq!(int(&a, "SELECT sum(n) FROM t").await, 5);
    run(&a, "COMMIT").await;
    assert_eq!(int(&a, "SELECT sum(n) FROM t").await, 5);
    assert_eq!(int(&b, "SELECT sum(n) FROM t").await, 5);
    // a later transaction starts from the committed table, not from what
    // the last one kept
    run(&b, "INSERT INTO t VALUES (20)").await;
    run(&a, "BEGIN").await;
    assert_eq!(int(&a, "SELECT sum(n) FROM t").await, 25);
    run(&a, "INSERT INTO t VALUES (100)").await;
    run(&a, "COMMIT").await;
    assert_eq!(int(&b, "SELECT sum(n) FROM t").await, 125);
}

fn commit_file(db: &std::path::Path, version: u64) -> std::path::PathBuf {
    db.join("main").join("t").join("_delta_log").join(format!("{version:020}.json"))
}

#[tokio::test]
async fn a_kept_snapshot_with_files_reads_only_the_commits_made_since() {
    let (_dir, db, a, b) = two_sessions("CREATE TABLE t (n BIGINT)").await;
    for i in 0..4 {
        run(&a, &format!("INSERT INTO t VALUES ({i})")).await;
    }
    assert_eq!(int(&a, "SELECT count(*) FROM t").await, 4);
    run(&b, "INSERT INTO t VALUES (10)").await;
    // an old commit emptied behind the session's back: read again, the log
    // would lose the row it added
    std::fs::write(commit_file(&db, 2), "{\"commitInfo\":{\"operation\":\"WRITE\"}}\n").unwrap();
    assert_eq!(int(&a, "SELECT count(*) FROM t").await, 5);
    assert_eq!(int(&common::open(&db), "SELECT count(*) FROM t").await, 4);
}

#[tokio::test]
async fn a_checkpoint_written_since_for_an_older_version_is_read_from() {
    let (_dir, db, a, b) = two_sessions("CREATE TABLE t (n BIGINT)").await;
    for i in 0..5 {
        run(&b, &format!("INSERT INTO t VALUES ({i})")).await;
    }
    assert_eq!(int(&a, "SELECT count(*) FROM t").await, 5);
    // another writer checkpoints version 3, late, and drops the commits
    // before it (expired, for a table with a short log retention)
    let url = url::Url::from_directory_path(db.join("main").join("t")).unwrap();
    let mut table = deltalake::DeltaTable::try_from_url(url).await.unwrap();
    table.load_version(3).await.unwrap();
    deltalake::checkpoints::create_checkpoint(&table, None).await.unwrap();
    for version in 0..3 {
        std::fs::remove_file(commit_file(&db, version)).unwrap();
    }
    assert_eq!(int(&a, "SELECT count(*) FROM t").await, 5);
    run(&a, "INSERT INTO t VALUES (5)").await;
    assert_eq!(int(&a, "SELECT sum(n) FROM t").await, 15);
}
