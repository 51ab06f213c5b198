//! A running query reports rows scanned and bytes read, for progress bars.

#![expect(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_are_counted_once_when_a_file_is_read_in_ranges() {
    let session = Session::new().unwrap();
    session.sql("SET threads = 4").await.unwrap().drain().await.unwrap();
    session.sql("SET datafusion.optimizer.repartition_file_min_size = 1").await.unwrap().drain().await.unwrap();
    let path = example("weather.csv");
    let bytes = std::fs::metadata(&path).unwrap().len();
    for skip in [0, 1] {
        let sql = format!("SELECT count(*) FROM read_csv('{path}', skip = {skip}, header = {}) WHERE random() >= 0", skip == 0);
        let result = session.sql(&sql).await.unwrap();
        let progress = result.progress();
        let batches = result.collect().await.unwrap();
        assert_eq!(batches[0].num_rows(), 1);
        let done = progress.get();
        // every byte at least once; at most twice, since a local file handed
        // out whole counts the range asked for, and DataFusion asks from a
        // range's start to the end of the file to find a line break; plus
        // the first look at the file for `skip`
        let first_look = if skip > 0 { bytes.min(64 * 1024) } else { 0 };
        assert!(done.bytes_read >= bytes, "skip {skip}: {done:?} of {bytes}");
        assert!(done.bytes_read <= 2 * bytes + first_look, "skip {skip}: {done:?} of {bytes}");
    }
}
