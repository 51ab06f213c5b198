//! `TIMESTAMP AS OF` a time between two commits reads the older one.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a failed unwrap is a failed test")]

use std::time::Duration;

use pintail_core::Session;

async fn run(session: &Session, sql: &str) -> Vec<i64> {
    if !sql.starts_with("SELECT") {
        session.sql(sql).await.unwrap().drain().await.unwrap();
        return Vec::new();
    }
    let batches = session.sql(sql).await.unwrap().collect().await.unwrap();
    batches
        .iter()
        .flat_map(|b| {
            let col = b.column(0).as_any().downcast_ref::<pintail_core::datafusion::arrow::array::Int64Array>().unwrap();
            col.values().to_vec()
        })
        .collect()
}

#[tokio::test]
async fn a_time_between_commits_reads_the_earlier_version() {
    let dir = tempfile::tempdir().unwrap();
    let session = Session::new().unwrap();
    pintail_storage::open(&session, &dir.path().join("tt.db")).unwrap();
    run(&session, "CREATE TABLE t AS SELECT 1 AS n").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let between = chrono::Utc::now().format("%Y-%m-%d %H:%M:%S%.3f").to_string();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    run(&session, "INSERT INTO t VALUES (2)").await;
    let then = run(&session, &format!("SELECT count(*) FROM t TIMESTAMP AS OF '{between}'")).await;
    assert_eq!(then, vec![1]);
    let now = run(&session, "SELECT count(*) FROM t").await;
    assert_eq!(now, vec![2]);
}
