//! A running query reports rows scanned and bytes read, for progress bars.

#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

use std::path::Path;

use pintail_core::Session;

fn example(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/data").join(name);
    path.canonicalize().unwrap().display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_counts_rows_and_bytes_of_each_query() {
    let session = Session::new().unwrap();
    // (file, a column, rows, whether the whole file is read)
    let files = [
        ("cars.csv", "name", 406, true),
        ("weather.csv", "weather", 1461, true),
        ("cars.parquet", "name", 406, false),
    ];
    for (file, column, rows, whole) in files {
        let path = example(file);
        let bytes = std::fs::metadata(&path).unwrap().len();
        let result = session.sql(&format!("SELECT max(length({column})) FROM '{path}'")).await.unwrap();
        let progress = result.progress();
        result.drain().await.unwrap();
        let done = progress.get();
        assert_eq!(done.rows_scanned, rows, "{file}");
        // counted per query: never the bytes of the queries before
        assert!(done.bytes_read > 0 && done.bytes_read <= 2 * bytes, "{file}: {done:?} of {bytes}");
        if whole {
            assert!(done.bytes_read >= bytes, "{file}: {done:?} of {bytes}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_without_a_plan_report_nothing() {
    let session = Session::new().unwrap();
    let result = session.sql("SET threads = 2").await.unwrap();
    assert_eq!(result.progress().get(), pintail_core::Progress::default());
}
