//! A query over a database table is planned as the same query over the
//! table's data as plain Parquet files, so that it is as fast: the same
//! operators and join order, Parquet row filtering only when the session
//! asks for it, and statistics for every column. Tables that need
//! deltalake's own scan node (partitioned ones, say) keep it, and all give
//! the same rows as the files.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a failed unwrap is a failed test")]

mod common;

use std::path::Path;
use std::sync::Arc;

use common::{open, run};
use deltalake::parquet::arrow::ArrowWriter;
use deltalake::parquet::file::reader::{FileReader, SerializedFileReader};
use pintail_core::datafusion::arrow::array::{
    ArrayRef, Int64Array, RecordBatch, TimestampMicrosecondArray, TimestampMillisecondArray,
};
use pintail_core::datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use pintail_core::Session;
use pintail_core::datafusion::common::stats::Precision;
use pintail_core::datafusion::datasource::physical_plan::{FileSource, ParquetSource};
use pintail_core::datafusion::datasource::source::DataSourceExec;
use pintail_core::datafusion::physical_plan::{ExecutionPlan, displayable};

const FACTS: &str = "SELECT i AS id, i % 100 AS key, i * 0.5 AS value, DATE '2020-01-01' + CAST(i % 1000 AS INT) AS day, \
                     'row ' || i AS label FROM generate_series(1, 300000) AS t(i)";
const DIMS: &str = "SELECT k AS key, 'name ' || k AS name, k % 5 AS region FROM generate_series(0, 99) AS t(k)";

/// A database with tables `facts` and `dims`, and the same rows in
/// `facts.parquet` and `dims.parquet` beside it, read by the views
/// `memory.main.facts` and `memory.main.dims`.
async fn setup(dir: &Path) -> Session {
    let session = open(&dir.join("s.db"));
    for (name, query) in [("facts", FACTS), ("dims", DIMS)] {
        let file = dir.join(format!("{name}.parquet"));
        run(&session, &format!("COPY ({query}) TO '{}'", file.display())).await;
        run(&session, &format!("CREATE TABLE {name} AS SELECT * FROM '{}'", file.display())).await;
        run(&session, &format!("CREATE VIEW memory.main.{name} AS SELECT * FROM '{}'", file.display())).await;
    }
    session
}

/// `sql` over the tables, and over the files instead.
fn both(sql: &str) -> (String, String) {
    let files = sql.replace("FROM ", "FROM memory.main.").replace("JOIN ", "JOIN memory.main.");
    (sql.to_string(), files)
}

async fn plan(session: &Session, sql: &str) -> Arc<dyn ExecutionPlan> {
    session.context().sql(sql).await.unwrap().create_physical_plan().await.unwrap()
}

/// The operators of `plan`, one per line and indented as in EXPLAIN, with
/// each join's mode and keys: what decides how fast it runs, without the
/// file names and predicates that differ between a table and its files.
fn shape(plan: &Arc<dyn ExecutionPlan>) -> String {
    displayable(plan.as_ref())
        .indent(false)
        .to_string()
        .lines()
        .map(|line| {
            let depth = line.len() - line.trim_start().len();
            let line = line.trim_start();
            let name = line.split([':', ',']).next().unwrap_or(line);
            let detail = if name == "HashJoinExec" {
                line.split(", ").filter(|p| p.starts_with("mode=") || p.starts_with("on=")).collect::<Vec<_>>().join(" ")
            } else {
                String::new()
            };
            format!("{}{name} {detail}", " ".repeat(depth))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

async fn rows(session: &Session, sql: &str) -> Vec<String> {
    let batches = session.sql(sql).await.unwrap().collect().await.unwrap();
    let text = pintail_core::datafusion::arrow::util::pretty::pretty_format_batches(&batches).unwrap().to_string();
    text.lines().map(str::to_string).collect()
}

/// The Parquet scans in `plan`.
fn parquet_scans(plan: &Arc<dyn ExecutionPlan>) -> Vec<Arc<dyn ExecutionPlan>> {
    let mut found = Vec::new();
    let mut todo = vec![Arc::clone(plan)];
    while let Some(node) = todo.pop() {
        if node.downcast_ref::<DataSourceExec>().is_some_and(|s| s.downcast_to_file_source::<ParquetSource>().is_some()) {
            found.push(Arc::clone(&node));
        }
        todo.extend(node.children().into_iter().cloned());
    }
    found
}

const QUERIES: [&str; 4] = [
    "SELECT key, count(*) AS n, sum(value) AS s FROM facts WHERE day BETWEEN DATE '2020-03-01' AND DATE '2020-06-30' AND value > 1000 GROUP BY key ORDER BY key",
    "SELECT d.name, sum(f.value) AS s FROM facts f JOIN dims d ON f.key = d.key WHERE d.region = 2 AND f.day < DATE '2021-01-01' GROUP BY d.name ORDER BY d.name",
    "SELECT d.region, count(*) AS n FROM dims d JOIN facts f ON f.key = d.key WHERE f.label LIKE 'row 1%' GROUP BY d.region ORDER BY d.region",
    "SELECT min(id) AS lo, max(label) AS hi, count(*) AS n FROM facts",
];

#[tokio::test]
async fn a_table_is_planned_and_answers_as_its_parquet_files() {
    let dir = tempfile::tempdir().unwrap();
    let session = setup(dir.path()).await;
    for query in QUERIES {
        let (tables, files) = both(query);
        let (over_tables, over_files) = (plan(&session, &tables).await, plan(&session, &files).await);
        assert_eq!(shape(&over_tables), shape(&over_files), "{query}");
        assert!(!shape(&over_tables).contains("DeltaScanExec"), "{query}");
        assert_eq!(rows(&session, &tables).await, rows(&session, &files).await, "{query}");
    }
}

#[tokio::test]
async fn parquet_row_filtering_follows_the_session_setting() {
    let dir = tempfile::tempdir().unwrap();
    let session = setup(dir.path()).await;
    let query = QUERIES[0];
    let pushdown = |plan: &Arc<dyn ExecutionPlan>| {
        let scans = parquet_scans(plan);
        assert_eq!(scans.len(), 1);
        let (_, parquet) = scans[0].downcast_ref::<DataSourceExec>().unwrap().downcast_to_file_source::<ParquetSource>().unwrap();
        // either way the scan has the filter, to skip row groups and pages
        assert!(parquet.filter().is_some());
        parquet.table_parquet_options().global.pushdown_filters
    };
    let off = rows(&session, query).await;
    assert!(!pushdown(&plan(&session, query).await));
    run(&session, "SET datafusion.execution.parquet.pushdown_filters = true").await;
    assert!(pushdown(&plan(&session, query).await));
    assert_eq!(rows(&session, query).await, off);
}

#[tokio::test]
async fn every_column_of_a_table_has_statistics() {
    let dir = tempfile::tempdir().unwrap();
    let session = setup(dir.path()).await;
    let plan = plan(&session, "SELECT id, label, key FROM facts").await;
    let scans = parquet_scans(&plan);
    let (config, _) = scans[0].downcast_ref::<DataSourceExec>().unwrap().downcast_to_file_source::<ParquetSource>().unwrap();
    let stats = config.statistics();
    assert_eq!(stats.num_rows, Precision::Exact(300_000));
    let schema = config.file_schema();
    for column in ["id", "label", "key"] {
        let i = schema.index_of(column).unwrap();
        let column_stats = &stats.column_statistics[i];
        assert!(!matches!(column_stats.min_value, Precision::Absent), "{column}: {column_stats:?}");
        assert!(!matches!(column_stats.max_value, Precision::Absent), "{column}: {column_stats:?}");
        assert_eq!(column_stats.null_count, Precision::Exact(0), "{column}");
    }
}

/// The live data files of the Delta table in `table`.
async fn live_files(table: &Path) -> Vec<std::path::PathBuf> {
    let url = url::Url::from_directory_path(table).unwrap();
    let delta = deltalake::open_table(url).await.unwrap();
    delta
        .get_file_uris()
        .unwrap()
        .map(|uri| match url::Url::parse(&uri) {
            Ok(url) => url.to_file_path().unwrap(),
            Err(_) => table.join(uri),
        })
        .collect()
}

/// The row counts of the row groups of the live files of `table`.
async fn row_groups(table: &Path) -> Vec<i64> {
    let mut groups = Vec::new();
    for path in live_files(table).await {
        let reader = SerializedFileReader::new(std::fs::File::open(&path).unwrap()).unwrap();
        groups.extend(reader.metadata().row_groups().iter().map(deltalake::parquet::file::metadata::RowGroupMetaData::num_rows));
    }
    groups
}

#[tokio::test]
async fn tables_are_written_in_row_groups_small_enough_to_skip_and_share() {
    let dir = tempfile::tempdir().unwrap();
    let session = setup(dir.path()).await;
    let table = dir.path().join("s.db/main/facts");
    let small = |groups: &[i64]| groups.len() >= 3 && groups.iter().all(|&n| n <= 122_880);
    let groups = row_groups(&table).await;
    assert_eq!(groups.iter().sum::<i64>(), 300_000);
    assert!(small(&groups), "CREATE TABLE AS: {groups:?}");
    // INSERT writes with the same settings
    run(&session, "CREATE TABLE copied AS SELECT * FROM facts WHERE false").await;
    let file = dir.path().join("facts.parquet");
    run(&session, &format!("INSERT INTO copied SELECT * FROM '{}'", file.display())).await;
    let copied = row_groups(&dir.path().join("s.db/main/copied")).await;
    assert_eq!(copied.iter().sum::<i64>(), 300_000);
    assert!(small(&copied), "INSERT: {copied:?}");
    // so do UPDATE, DELETE, MERGE and OPTIMIZE, which rewrite files
    run(&session, "UPDATE facts SET value = value + 1 WHERE key = 7").await;
    assert!(small(&row_groups(&table).await), "UPDATE");
    run(&session, "DELETE FROM facts WHERE key = 8").await;
    assert!(small(&row_groups(&table).await), "DELETE");
    run(&session, "MERGE INTO facts USING dims ON facts.id = dims.key WHEN MATCHED THEN UPDATE SET value = 0").await;
    assert!(small(&row_groups(&table).await), "MERGE");
    run(&session, "INSERT INTO facts SELECT * FROM facts WHERE key = 9").await;
    run(&session, "OPTIMIZE facts").await;
    let groups = row_groups(&table).await;
    assert_eq!(groups.iter().sum::<i64>(), 300_000 - 3000 + 3000);
    assert!(small(&groups), "OPTIMIZE: {groups:?}");
    assert_eq!(live_files(&table).await.len(), 1, "OPTIMIZE compacts");
}

fn write_parquet(path: &Path, batch: &RecordBatch) -> u64 {
    let mut writer = ArrowWriter::try_new(std::fs::File::create(path).unwrap(), batch.schema(), None).unwrap();
    writer.write(batch).unwrap();
    writer.close().unwrap();
    std::fs::metadata(path).unwrap().len()
}

/// A table whose files store its timestamp column in different units, as
/// when Spark wrote the first files and another tool the later ones: its
/// bounds come out right, also where they are answered from statistics.
#[tokio::test]
async fn files_storing_a_column_as_another_type_give_right_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let session = open(&db);
    let table = db.join("main/t");
    std::fs::create_dir_all(table.join("_delta_log")).unwrap();
    let batch = |unit: TimeUnit, id: i64, ts: ArrayRef| {
        let schema = Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("ts", DataType::Timestamp(unit, Some("UTC".into())), true),
        ]);
        RecordBatch::try_new(Arc::new(schema), vec![Arc::new(Int64Array::from(vec![id])), ts]).unwrap()
    };
    // 2030-01-01 in milliseconds, 2020-01-01 in microseconds
    let ms = batch(TimeUnit::Millisecond, 1, Arc::new(TimestampMillisecondArray::from(vec![1_893_456_000_000]).with_timezone("UTC")));
    let us = batch(TimeUnit::Microsecond, 2, Arc::new(TimestampMicrosecondArray::from(vec![1_577_836_800_000_000]).with_timezone("UTC")));
    let sizes = [write_parquet(&table.join("a.parquet"), &ms), write_parquet(&table.join("b.parquet"), &us)];
    let schema = r#"{"type":"struct","fields":[{"name":"id","type":"long","nullable":true,"metadata":{}},{"name":"ts","type":"timestamp","nullable":true,"metadata":{}}]}"#;
    let mut log = vec![
        r#"{"protocol":{"minReaderVersion":1,"minWriterVersion":2}}"#.to_string(),
        format!(
            r#"{{"metaData":{{"id":"6ba4c3a3-1c1a-4b4a-9c55-3e4a3f2b9a10","format":{{"provider":"parquet","options":{{}}}},"schemaString":{},"partitionColumns":[],"configuration":{{}},"createdTime":0}}}}"#,
            serde_json::to_string(schema).unwrap()
        ),
    ];
    for (name, size) in ["a.parquet", "b.parquet"].iter().zip(sizes) {
        log.push(format!(r#"{{"add":{{"path":"{name}","partitionValues":{{}},"size":{size},"modificationTime":0,"dataChange":true}}}}"#));
    }
    std::fs::write(table.join("_delta_log/00000000000000000000.json"), log.join("\n") + "\n").unwrap();

    // each alone, so that the optimizer may answer it from statistics
    let hi = rows(&session, "SELECT CAST(max(ts) AS DATE) AS hi FROM t").await;
    assert_eq!(hi[3], "| 2030-01-01 |", "{hi:?}");
    let lo = rows(&session, "SELECT CAST(min(ts) AS DATE) AS lo FROM t").await;
    assert_eq!(lo[3], "| 2020-01-01 |", "{lo:?}");
    let newest = rows(&session, "SELECT id FROM t ORDER BY ts DESC LIMIT 1").await;
    assert_eq!(newest[3], "| 1  |", "{newest:?}");
}
