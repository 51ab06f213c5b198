//! A hash join's filter is applied to the rows of the Parquet scan on its
//! probe side (`RuntimeFilterExec`), paused when it keeps most rows, and
//! never changes an answer.

#![expect(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

use pintail_core::Session;
use pintail_core::datafusion::arrow::array::{Array, AsArray};
use pintail_core::datafusion::arrow::datatypes::Int64Type;
use pintail_core::datafusion::arrow::util::pretty::pretty_format_batches;

async fn run(session: &Session, sql: &str) -> String {
    let batches = session.sql(sql).await.unwrap().collect().await.unwrap();
    pretty_format_batches(&batches).unwrap().to_string()
}

async fn count(session: &Session, sql: &str) -> i64 {
    let batches = session.sql(sql).await.unwrap().collect().await.unwrap();
    let column = batches[0].column(0);
    assert!(!column.is_null(0), "{sql}");
    column.as_primitive::<Int64Type>().value(0)
}

/// The `name=value` metric of the `RuntimeFilterExec` line of `plan`.
fn metric(plan: &str, name: &str) -> u64 {
    let line = plan.lines().find(|l| l.contains("RuntimeFilterExec")).unwrap_or_else(|| panic!("no RuntimeFilterExec in\n{plan}"));
    let at = line.find(&format!("{name}=")).unwrap_or_else(|| panic!("no {name} in {line}"));
    let value: String = line[at + name.len() + 1..].chars().take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ' ' || *c == 'K' || *c == 'M').collect();
    let value = value.trim();
    let (number, scale) = match value.split_once(' ') {
        Some((n, "K")) => (n, 1e3),
        Some((n, "M")) => (n, 1e6),
        _ => (value, 1.0),
    };
    #[expect(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "a displayed row count")]
    let n = (number.parse::<f64>().unwrap() * scale) as u64;
    n
}

async fn session_with_tables() -> (Session, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let session = Session::new().unwrap();
    run(&session, "SET threads = 2").await;
    let fact = dir.path().join("fact.parquet").display().to_string();
    let dim = dir.path().join("dim.parquet").display().to_string();
    // 400,000 facts over 20,000 keys (one in 1,000 without a key), 20,000 dims
    run(&session, &format!(
        "COPY (SELECT CASE WHEN v % 1000 = 7 THEN NULL ELSE v % 20000 END AS k, v AS x FROM generate_series(0, 399999) AS t(v)) TO '{fact}'"
    )).await;
    run(&session, &format!("COPY (SELECT v AS k, v % 100 AS grp FROM generate_series(0, 19999) AS t(v)) TO '{dim}'")).await;
    run(&session, &format!("CREATE VIEW fact AS SELECT * FROM '{fact}'")).await;
    run(&session, &format!("CREATE VIEW dim AS SELECT * FROM '{dim}'")).await;
    (session, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_selective_join_drops_rows_at_the_scan() {
    let (session, _dir) = session_with_tables().await;
    // dims with grp = 3 are 1 in 100: 200 keys, 20 facts each, less the
    // facts without a key (v % 1000 = 7 never has v % 20000 % 100 = 3)
    // straight into the probe side, the join drops the rows as cheaply itself
    let sql = "SELECT count(*) FROM fact JOIN dim ON fact.k = dim.k WHERE dim.grp = 3";
    assert_eq!(count(&session, sql).await, 4000);
    assert!(!run(&session, &format!("EXPLAIN {sql}")).await.contains("RuntimeFilterExec"));

    // an aggregate of the probe side grouped by the key (TPC-H q17's shape)
    let sql = "SELECT count(*) FROM dim JOIN (SELECT k, sum(x) AS s FROM fact GROUP BY k) AS f ON f.k = dim.k WHERE dim.grp = 3";
    assert_eq!(count(&session, sql).await, 200);
    let plan = run(&session, &format!("EXPLAIN ANALYZE {sql}")).await;
    assert!(metric(&plan, "rows_dropped") >= 390_000, "{plan}");

    // with filters pushed into the Parquet reader, the scan applies them itself
    run(&session, "SET datafusion.execution.parquet.pushdown_filters = true").await;
    assert_eq!(count(&session, sql).await, 200);
    assert!(!run(&session, &format!("EXPLAIN {sql}")).await.contains("RuntimeFilterExec"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filter_that_keeps_most_rows_is_paused_and_answers_stay_right() {
    let (session, _dir) = session_with_tables().await;
    // every dim matches: the filter drops nothing and is paused (20 keys have
    // only facts without a key: v % 20000 = 7 means v % 1000 = 7)
    let sql = "SELECT count(*), sum(s) FROM dim JOIN (SELECT k, sum(x) AS s FROM fact GROUP BY k) AS f ON f.k = dim.k WHERE dim.grp >= 0";
    assert_eq!(run(&session, sql).await, run(&session, &sql.replace("dim.grp >= 0", "true")).await);
    assert!(run(&session, sql).await.contains("| 19980    | 79919997200 |"), "{}", run(&session, sql).await);
    let plan = run(&session, &format!("EXPLAIN ANALYZE {sql}")).await;
    assert!(metric(&plan, "batches_unfiltered") > 0, "{plan}");
    // a semi and an anti join over half the keys: the facts without a key
    // (v % 100 = 7) are in neither, NOT IN being unknown for them
    let semi = "SELECT count(*) FROM fact WHERE k IN (SELECT k FROM dim WHERE grp < 50)";
    assert_eq!(count(&session, semi).await, 199_600);
    let anti = "SELECT count(*) FROM fact WHERE k NOT IN (SELECT k FROM dim WHERE grp < 50)";
    assert_eq!(count(&session, anti).await, 200_000);
}
