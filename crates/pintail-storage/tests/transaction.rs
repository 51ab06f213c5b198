//! Transactions against other writers: a transaction that only inserted
//! commits after a concurrent writer; one that updated fails with a
//! retryable conflict if another writer changed the table since it began,
//! and leaves no files behind; one rolled back leaves no files behind.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a failed unwrap is a failed test")]

mod common;

use std::path::Path;

use common::{int, open, run, two_sessions};
use pintail_core::ErrorKind;

/// The Parquet files in the table's directory.
fn data_files(db: &Path, table: &str) -> usize {
    std::fs::read_dir(db.join("main").join(table))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "parquet"))
        .count()
}

#[tokio::test]
async fn an_inserting_transaction_commits_after_a_concurrent_insert() {
    let (_dir, _, a, b) = two_sessions("CREATE TABLE t (n INT)").await;
    run(&a, "BEGIN").await;
    run(&a, "INSERT INTO t VALUES (1), (2)").await;
    run(&b, "INSERT INTO t VALUES (10)").await;
    assert_eq!(int(&b, "SELECT count(*) FROM t").await, 1);
    // an append that read nothing of the table conflicts with nothing
    run(&a, "COMMIT").await;
    assert_eq!(int(&b, "SELECT sum(n) FROM t").await, 13);
    assert_eq!(int(&a, "SELECT max(version) FROM (DESCRIBE HISTORY t)").await, 2);
}

#[tokio::test]
async fn an_updating_transaction_conflicts_with_a_concurrent_update() {
    let (_dir, db, a, b) = two_sessions("CREATE TABLE t (id INT, n INT)").await;
    run(&a, "INSERT INTO t VALUES (1, 0), (2, 0)").await;
    let before = data_files(&db, "t");
    run(&a, "BEGIN").await;
    run(&a, "UPDATE t SET n = n + 1 WHERE id = 1").await;
    run(&a, "INSERT INTO t VALUES (3, 0)").await;
    run(&b, "UPDATE t SET n = n + 100 WHERE id = 1").await;
    // the transaction's rewrite and insert, and the other writer's rewrite
    assert_eq!(data_files(&db, "t"), before + 3);
    let err = a.sql("COMMIT").await.err().expect("the commit must conflict");
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert!(err.message().contains("the transaction was rolled back"), "{err}");
    assert!(err.hint().unwrap_or_default().contains("run the transaction again"), "{err:?}");
    // only the other writer's change is there, and the transaction's files are gone
    assert_eq!(int(&a, "SELECT sum(n) FROM t").await, 100);
    assert_eq!(int(&a, "SELECT count(*) FROM t").await, 2);
    assert_eq!(data_files(&db, "t"), before + 1);
    // the session is out of the transaction and writes again
    run(&a, "UPDATE t SET n = n + 1 WHERE id = 1").await;
    assert_eq!(int(&b, "SELECT sum(n) FROM t").await, 101);
}

#[tokio::test]
async fn an_inserting_transaction_commits_after_a_concurrent_update() {
    let (_dir, _, a, b) = two_sessions("CREATE TABLE t (id INT, n INT)").await;
    run(&a, "INSERT INTO t VALUES (1, 0)").await;
    run(&a, "BEGIN").await;
    run(&a, "INSERT INTO t VALUES (2, 7)").await;
    run(&b, "UPDATE t SET n = 5 WHERE id = 1").await;
    // an append reads nothing, so nothing another writer did conflicts
    run(&a, "COMMIT").await;
    assert_eq!(int(&b, "SELECT sum(n) FROM t").await, 12);
}

#[tokio::test]
async fn an_updating_transaction_conflicts_with_a_concurrent_append() {
    let (_dir, _, a, b) = two_sessions("CREATE TABLE t (id INT, n INT)").await;
    run(&a, "INSERT INTO t VALUES (1, 0)").await;
    run(&a, "BEGIN").await;
    assert_eq!(int(&a, "SELECT count(*) FROM t").await, 1);
    run(&a, "UPDATE t SET n = 0 WHERE id = 1").await;
    run(&b, "INSERT INTO t VALUES (2, 7)").await;
    // the transaction keeps reading the version it started from
    assert_eq!(int(&a, "SELECT count(*) FROM t").await, 1);
    // it read the whole table, which has rows it did not see (Delta's
    // default isolation, Serializable)
    let err = a.sql("COMMIT").await.err().expect("the commit must conflict");
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert_eq!(int(&b, "SELECT sum(n) FROM t").await, 7);
}

#[tokio::test]
async fn upserts_in_two_transactions_conflict() {
    let (_dir, _, a, b) = two_sessions("CREATE TABLE t (id INT, n INT)").await;
    let upsert = "MERGE INTO t USING (VALUES (1, 1)) AS s(id, n) ON t.id = s.id \
                  WHEN MATCHED THEN UPDATE SET n = t.n + s.n WHEN NOT MATCHED THEN INSERT (id, n) VALUES (s.id, s.n)";
    run(&a, "BEGIN").await;
    run(&b, "BEGIN").await;
    // both only insert, having found no row 1: the second must not commit
    run(&a, upsert).await;
    run(&b, upsert).await;
    run(&a, "COMMIT").await;
    let err = b.sql("COMMIT").await.err().expect("the second upsert must conflict");
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert_eq!(int(&a, "SELECT count(*) FROM t").await, 1);
}

#[tokio::test]
async fn time_travel_inside_a_transaction_stops_at_its_version() {
    let (_dir, _, a, b) = two_sessions("CREATE TABLE t (id INT)").await;
    run(&a, "BEGIN").await;
    run(&a, "DELETE FROM t WHERE id = 1").await;
    run(&b, "INSERT INTO t VALUES (5)").await;
    assert_eq!(int(&a, "SELECT count(*) FROM t VERSION AS OF 0").await, 0);
    let err = a.sql("SELECT count(*) FROM t VERSION AS OF 1").await.err().expect("a later version is refused");
    assert!(err.message().contains("inside this transaction"), "{err}");
}

#[tokio::test]
async fn an_inserting_transaction_that_read_the_table_conflicts_with_a_concurrent_delete() {
    let (_dir, _, a, b) = two_sessions("CREATE TABLE t (id INT)").await;
    run(&a, "INSERT INTO t VALUES (1)").await;
    run(&a, "BEGIN").await;
    // "insert 2 unless there is a 1" decided on rows another writer deletes
    assert_eq!(int(&a, "SELECT count(*) FROM t WHERE id = 1").await, 1);
    run(&a, "INSERT INTO t VALUES (3)").await;
    run(&b, "DELETE FROM t WHERE id = 1").await;
    let err = a.sql("COMMIT").await.err().expect("the commit must conflict");
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert_eq!(int(&b, "SELECT count(*) FROM t").await, 0);
}

#[tokio::test]
async fn rollback_deletes_the_files_the_transaction_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let a = open(&db);
    run(&a, "CREATE TABLE t (id INT, n INT)").await;
    run(&a, "INSERT INTO t VALUES (1, 0), (2, 0)").await;
    let before = data_files(&db, "t");
    run(&a, "BEGIN").await;
    run(&a, "INSERT INTO t VALUES (3, 0)").await;
    run(&a, "UPDATE t SET n = 1").await;
    assert!(data_files(&db, "t") > before);
    run(&a, "ROLLBACK").await;
    assert_eq!(data_files(&db, "t"), before);
    assert_eq!(int(&a, "SELECT count(*) FROM t").await, 2);
    assert_eq!(int(&a, "SELECT sum(n) FROM t").await, 0);
}

#[tokio::test]
async fn a_failed_statement_aborts_the_transaction_even_mid_stream() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let a = open(&db);
    run(&a, "CREATE TABLE t (n INT NOT NULL)").await;
    run(&a, "BEGIN").await;
    run(&a, "INSERT INTO t VALUES (1)").await;
    // the NOT NULL violation surfaces while the result is read, not when planned
    let result = a.sql("INSERT INTO t SELECT CASE WHEN x > 1 THEN NULL ELSE x END FROM (VALUES (1), (2)) v(x)").await;
    let failed = match result {
        Ok(r) => r.drain().await.is_err(),
        Err(_) => true,
    };
    assert!(failed);
    let err = a.sql("COMMIT").await.err().expect("an aborted transaction cannot commit");
    assert!(err.message().contains("rolled back"), "{err}");
    assert_eq!(int(&a, "SELECT count(*) FROM t").await, 0);
}
