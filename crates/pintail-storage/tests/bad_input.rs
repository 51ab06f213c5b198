//! Damaged databases and bad writes: each gives a clear error naming the
//! table and file, and nothing else in the database changes.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a failed unwrap is a failed test")]

use std::path::Path;

use pintail_core::{ErrorKind, Session};

async fn rows(session: &Session, sql: &str) -> Vec<String> {
    let batches = session.sql(sql).await.unwrap().collect().await.unwrap();
    let mut out = Vec::new();
    for b in &batches {
        for r in 0..b.num_rows() {
            let cells: Vec<String> =
                b.columns().iter().map(|c| pintail_format::format_cell(c.as_ref(), r).unwrap_or_default()).collect();
            out.push(cells.join(","));
        }
    }
    out
}

async fn error(session: &Session, sql: &str) -> pintail_core::Error {
    match session.sql(sql).await {
        Err(e) => e,
        Ok(r) => r.collect().await.expect_err(sql),
    }
}

async fn setup(dir: &Path) -> Session {
    let session = Session::new().unwrap();
    pintail_storage::open(&session, &dir.join("bad.db")).unwrap();
    for sql in [
        "CREATE TABLE t (id INT NOT NULL, name VARCHAR)",
        "INSERT INTO t VALUES (1, 'a')",
        "INSERT INTO t VALUES (2, 'b')",
        "CREATE TABLE other AS SELECT 42 AS answer",
    ] {
        session.sql(sql).await.unwrap().drain().await.unwrap();
    }
    session
}

#[tokio::test]
async fn damaged_log_entry() {
    let dir = tempfile::tempdir().unwrap();
    let session = setup(dir.path()).await;
    let log = dir.path().join("bad.db/main/t/_delta_log/00000000000000000002.json");
    std::fs::write(&log, "{ this is not json").unwrap();
    let e = error(&session, "SELECT * FROM t").await;
    assert_eq!(e.kind(), ErrorKind::Data, "{e}");
    assert!(e.message().contains("table 't'"), "{e}");
    assert!(e.message().contains("00000000000000000002.json"), "names the file: {e}");
    // an earlier version, and the rest of the database, still read
    assert_eq!(rows(&session, "SELECT * FROM t VERSION AS OF 1").await, vec!["1,a"]);
    assert_eq!(rows(&session, "SELECT * FROM other").await, vec!["42"]);
    // and a write to the damaged table is refused without touching the log
    let before = std::fs::read_dir(log.parent().unwrap()).unwrap().count();
    let e = error(&session, "INSERT INTO t VALUES (3, 'c')").await;
    assert!(e.message().contains("table 't'"), "{e}");
    assert_eq!(std::fs::read_dir(log.parent().unwrap()).unwrap().count(), before);
}

#[tokio::test]
async fn missing_data_file() {
    let dir = tempfile::tempdir().unwrap();
    let session = setup(dir.path()).await;
    let table = dir.path().join("bad.db/main/t");
    let file = std::fs::read_dir(&table)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "parquet"))
        .unwrap();
    std::fs::remove_file(&file).unwrap();
    let e = error(&session, "SELECT * FROM t").await;
    assert_eq!(e.kind(), ErrorKind::Io, "{e}");
    assert!(e.message().contains("is missing"), "{e}");
    assert!(e.message().contains("bad.db/main/t/"), "names the table's directory: {e}");
    let name = file.file_name().unwrap().to_string_lossy().to_string();
    assert!(e.message().contains(&name), "names the missing file {name}: {e}");
    assert_eq!(rows(&session, "SELECT * FROM other").await, vec!["42"]);
}

#[tokio::test]
async fn type_mismatch_on_insert_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let session = setup(dir.path()).await;
    let e = error(&session, "INSERT INTO t VALUES ('not a number', 'x')").await;
    assert!(e.message().contains("table 't'"), "{e}");
    assert!(e.message().contains("not a number"), "{e}");
    let e = error(&session, "INSERT INTO t VALUES (3)").await;
    assert!(e.message().contains("expected 2"), "{e}");
    assert_eq!(rows(&session, "SELECT count(*) FROM t").await, vec!["2"]);
    assert_eq!(rows(&session, "SELECT max(version) FROM (DESCRIBE HISTORY t)").await, vec!["2"]);
}
