//! `pintail-bench`: the Pintail side of the benchmark harness in `bench/`.
//!
//! Registers each table of a data folder as a view over its Parquet file
//! (`CREATE VIEW lineitem AS SELECT * FROM 'dir/lineitem.parquet'`, the way
//! a user queries files in place), then runs each query file once to warm
//! up and N more times, timing from the SQL text to the last batch
//! collected; nothing is printed while timing. Prints one JSON object with
//! every run's seconds and row counts to stdout, and writes each query's
//! result as Parquet for `bench/run` to compare with DuckDB's. Settings
//! (`threads`, `memory_limit`, `temp_directory`) are applied before the
//! tables are registered, through `SET`, as a user would.
//!
//! With `--database DIR`, the tables are loaded instead into a new Pintail
//! database (Delta Lake tables) with `CREATE TABLE t AS SELECT * FROM
//! 'dir/t.parquet'`, each load timed and reported under `"load"`, and the
//! queries run against those tables.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use clap::Parser;
use pintail_core::datafusion::arrow::datatypes::{Schema, SchemaRef};
use pintail_core::datafusion::arrow::record_batch::RecordBatch;
use pintail_core::datafusion::parquet::arrow::ArrowWriter;
use pintail_core::{Session, split_statements};
use serde_json::{Map, Value, json};

/// Runs benchmark queries through pintail-core and reports their timings.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Folder with one `<table>.parquet` per table.
    #[arg(long, required_unless_present = "insert_latency")]
    data: Option<PathBuf>,
    /// Query files to run (`q1.sql` ...), in order.
    #[arg(required_unless_present = "insert_latency")]
    queries: Vec<PathBuf>,
    /// Timed runs per query, after one warm-up run.
    #[arg(long, default_value_t = 3)]
    iterations: usize,
    /// Skip the warm-up run.
    #[arg(long)]
    no_warmup: bool,
    /// Folder to write each query's result to, as `<query>.parquet`.
    #[arg(long)]
    results: Option<PathBuf>,
    /// `SET name = value` before anything runs (repeatable), e.g. `threads=2`.
    #[arg(long = "set", value_name = "NAME=VALUE")]
    settings: Vec<String>,
    /// Load the tables into a new database at this path (which must not
    /// exist) and query them there, instead of querying the files.
    #[arg(long)]
    database: Option<PathBuf>,
    /// Instead of queries: time ROWS single-row INSERTs into a new table in
    /// `--database`, then the same rows in one transaction and in one
    /// multi-row INSERT, scanning the table before and after OPTIMIZE.
    #[arg(long, value_name = "ROWS", requires = "database")]
    insert_latency: Option<usize>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args).await {
        Ok(report) => {
            #[expect(clippy::print_stdout, reason = "the report is this program's output")]
            {
                println!("{report}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            #[expect(clippy::print_stderr, reason = "the error is reported to the caller")]
            {
                eprintln!("pintail-bench: {e}");
            }
            ExitCode::FAILURE
        }
    }
}

async fn run(args: &Args) -> Result<Value, String> {
    let session = Session::new().map_err(|e| e.to_string())?;
    for setting in &args.settings {
        let (name, value) = setting.split_once('=').ok_or_else(|| format!("--set {setting}: expected NAME=VALUE"))?;
        let value = value.replace('\'', "''");
        run_sql(&session, &format!("SET {name} = '{value}'")).await?;
    }
    if let (Some(rows), Some(db)) = (args.insert_latency, &args.database) {
        return insert_latency(&session, db, rows).await;
    }
    let data = args.data.as_deref().ok_or("--data is needed to run queries")?;
    let mut load = Map::new();
    match &args.database {
        None => register_tables(&session, data, None).await?,
        Some(db) => {
            if db.exists() {
                return Err(format!("--database {}: already exists; give a new path", db.display()));
            }
            pintail_storage::open(&session, db).map_err(|e| e.to_string())?;
            register_tables(&session, data, Some(&mut load)).await?;
        }
    }
    let mut queries = Map::new();
    for path in &args.queries {
        let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let sql = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        // a query that fails is reported in its slot and the others still run
        let entry = match time_query(&session, &sql, args).await {
            Ok((times, (schema, batches))) => {
                let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
                if let Some(dir) = &args.results {
                    write_parquet(&dir.join(format!("{name}.parquet")), schema, &batches)?;
                }
                json!({ "times": times, "rows": rows })
            }
            Err(e) => json!({ "error": e.lines().next().unwrap_or_default() }),
        };
        queries.insert(name, entry);
    }
    Ok(json!({ "engine": "pintail", "version": env!("CARGO_PKG_VERSION"), "queries": queries, "load": load }))
}

/// Single-row `INSERT` latency on a database table: `rows` INSERTs each
/// committed on its own, a scan of the table they made (one file and one
/// commit each), the same number of rows in one transaction (each INSERT
/// timed too) and in one multi-row INSERT, then `OPTIMIZE` and the scan again. `bench/engine.py
/// --insert-latency` runs the same statements in DuckDB.
async fn insert_latency(session: &Session, db: &Path, rows: usize) -> Result<Value, String> {
    if db.exists() {
        return Err(format!("--database {}: already exists; give a new path", db.display()));
    }
    pintail_storage::open(session, db).map_err(|e| e.to_string())?;
    let timed = async |sql: &str| -> Result<f64, String> {
        let started = Instant::now();
        run_sql(session, sql).await?;
        Ok(started.elapsed().as_secs_f64())
    };
    let row = |i: usize| format!("({i}, 'name-{i}', {})", i as f64 * 0.5);
    timed("CREATE TABLE events (id BIGINT, name VARCHAR, amount DOUBLE)").await?;
    let mut single = Vec::with_capacity(rows);
    for i in 0..rows {
        single.push(timed(&format!("INSERT INTO events VALUES {}", row(i))).await?);
    }
    let scan = "SELECT count(*), sum(amount) FROM events";
    let scan_before = timed(scan).await?;
    let started = Instant::now();
    timed("BEGIN").await?;
    let mut in_transaction = Vec::with_capacity(rows);
    for i in 0..rows {
        in_transaction.push(timed(&format!("INSERT INTO events VALUES {}", row(rows + i))).await?);
    }
    let commit = timed("COMMIT").await?;
    let transaction = started.elapsed().as_secs_f64();
    let values: Vec<String> = (0..rows).map(|i| row(2 * rows + i)).collect();
    let multirow = timed(&format!("INSERT INTO events VALUES {}", values.join(", "))).await?;
    let optimize = timed("OPTIMIZE events").await?;
    let scan_after = timed(scan).await?;
    Ok(json!({
        "engine": "pintail",
        "version": env!("CARGO_PKG_VERSION"),
        "inserts": {
            "single": single,
            "scan": scan_before,
            "transaction": transaction,
            "in_transaction": in_transaction,
            "commit": commit,
            "multirow": multirow,
            "optimize": optimize,
            "scan_optimized": scan_after,
        },
    }))
}

/// Runs `sql` once to warm up (unless told not to), then times
/// `args.iterations` runs; returns the seconds and the last result.
async fn time_query(session: &Session, sql: &str, args: &Args) -> Result<(Vec<f64>, (SchemaRef, Vec<RecordBatch>)), String> {
    if !args.no_warmup {
        run_sql(session, sql).await?;
    }
    let mut times = Vec::new();
    let mut last = (Arc::new(Schema::empty()), Vec::new());
    for _ in 0..args.iterations.max(1) {
        let started = Instant::now();
        last = run_sql(session, sql).await?;
        times.push(started.elapsed().as_secs_f64());
    }
    Ok((times, last))
}

/// One view per `<table>.parquet` file in `dir`; or, with `load`, one
/// database table per file, made by `CREATE TABLE AS` and timed into `load`.
async fn register_tables(session: &Session, dir: &Path, mut load: Option<&mut Map<String, Value>>) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    let mut found = 0;
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "parquet") {
            let table = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            let location = path.display().to_string().replace('\'', "''");
            match load.as_deref_mut() {
                None => {
                    run_sql(session, &format!("CREATE VIEW {table} AS SELECT * FROM '{location}'")).await?;
                }
                Some(load) => {
                    let started = Instant::now();
                    run_sql(session, &format!("CREATE TABLE {table} AS SELECT * FROM '{location}'")).await?;
                    load.insert(table, json!(started.elapsed().as_secs_f64()));
                }
            }
            found += 1;
        }
    }
    if found == 0 {
        return Err(format!("no .parquet files in {}", dir.display()));
    }
    Ok(())
}

/// Runs every statement of `sql`, returning the last one's result.
async fn run_sql(session: &Session, sql: &str) -> Result<(SchemaRef, Vec<RecordBatch>), String> {
    let mut last = (Arc::new(Schema::empty()), Vec::new());
    for statement in split_statements(sql).map_err(|e| e.to_string())? {
        let result = session.execute(&statement).await.map_err(|e| e.to_string())?;
        let schema = result.schema();
        last = (schema, result.collect().await.map_err(|e| e.to_string())?);
    }
    Ok(last)
}

fn write_parquet(path: &Path, schema: SchemaRef, batches: &[RecordBatch]) -> Result<(), String> {
    let bad = |e: &dyn std::fmt::Display| format!("cannot write {}: {e}", path.display());
    let file = File::create(path).map_err(|e| bad(&e))?;
    let mut writer = ArrowWriter::try_new(file, schema, None).map_err(|e| bad(&e))?;
    for batch in batches {
        writer.write(batch).map_err(|e| bad(&e))?;
    }
    writer.close().map_err(|e| bad(&e))?;
    Ok(())
}
