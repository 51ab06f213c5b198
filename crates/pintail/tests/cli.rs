//! The CLI's output, errors and exit codes, as snapshots.
//!
//! Every test runs the real binary from the repository root (so
//! `examples/data` paths work) with colours off. Paths of temporary
//! directories are filtered to `[TMP]` in the snapshots.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a failed unwrap is a failed test")]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use insta_cmd::{assert_cmd_snapshot, get_cargo_bin};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn pintail() -> Command {
    let mut c = Command::new(get_cargo_bin("pintail"));
    c.current_dir(root())
        .env("NO_COLOR", "1")
        .env_remove("PINTAIL_MEMORY_LIMIT")
        .env_remove("PINTAIL_THREADS")
        .env_remove("PINTAIL_TEMP_DIRECTORY")
        .stdin(Stdio::null());
    c
}

const CARS: &str = "SELECT origin, count(*) AS cars, round(avg(horsepower), 1) AS avg_hp \
                    FROM 'examples/data/cars.parquet' GROUP BY origin ORDER BY origin";

/// The repository root as a regex, so snapshots do not depend on where
/// the clone lives.
fn root_pattern() -> String {
    let root = root().canonicalize().unwrap().display().to_string();
    root.chars()
        .map(|c| if c.is_alphanumeric() || c == '/' { c.to_string() } else { format!("\\{c}") })
        .collect()
}

macro_rules! snapshot {
    ($cmd:expr) => {
        let root = root_pattern();
        insta::with_settings!({filters => vec![
            (root.as_str(), "[ROOT]"),
            (r"/tmp/[^\s']+", "[TMP]"),
            (r"Run Time: [0-9.]+ s", "Run Time: [T] s"),
        ]}, {
            assert_cmd_snapshot!($cmd);
        });
    };
}

#[test]
fn box_is_the_default() {
    snapshot!(pintail().args(["-c", CARS]));
}

#[test]
fn every_mode() {
    for mode in ["table", "csv", "tsv", "json", "jsonl", "markdown", "line"] {
        insta::with_settings!({snapshot_suffix => mode}, {
            assert_cmd_snapshot!(pintail().args(["-m", mode, "-c", CARS]));
        });
    }
}

#[test]
fn long_results_are_elided() {
    snapshot!(pintail().args([
        "-c",
        "SELECT date, weather, temp_max FROM 'examples/data/weather.csv' ORDER BY date",
        "--maxrows",
        "6"
    ]));
}

#[test]
fn nulls_types_and_nested_values() {
    snapshot!(pintail().args([
        "-c",
        "SELECT 1 AS i, NULL::varchar AS n, 2.5::double AS d, DATE '2024-02-29' AS day, \
         TIMESTAMP '2024-01-02 03:04:05' AS ts, [1, 2] AS list, {'a': 1, 'b': 'x'} AS st, 'héllo' AS utf8"
    ]));
}

#[test]
fn several_commands_and_statements() {
    snapshot!(pintail().args(["-m", "csv", "-c", "SELECT 1 AS a; SELECT 2 AS b", "-c", "SELECT 3 AS c"]));
}

#[test]
fn script_file_with_dot_commands() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("script.sql");
    std::fs::write(
        &script,
        "CREATE TABLE cars AS SELECT * FROM 'examples/data/cars.parquet';\n\
         .tables\n\
         .mode csv\n\
         SELECT count(*) AS n\n  FROM cars\n  WHERE origin = 'Japan';\n\
         .mode line\n\
         SELECT min(year) AS first, max(year) AS last FROM cars\n",
    )
    .unwrap();
    snapshot!(pintail().arg("-f").arg(&script));
}

#[test]
fn sql_on_stdin() {
    let mut c = pintail();
    c.args(["-m", "csv"]);
    snapshot!(c.pass_stdin("SELECT 40 + 2 AS answer;\n"));
}

#[test]
fn query_error_exits_1_and_stops() {
    snapshot!(pintail().args(["-c", "SELECT horsepowr FROM 'examples/data/cars.parquet'; SELECT 'not reached'"]));
}

#[test]
fn missing_file_error() {
    snapshot!(pintail().args(["-c", "SELECT * FROM 'examples/data/nope.parquet'"]));
}

#[test]
fn usage_errors_exit_2() {
    snapshot!(pintail().args(["--mode", "xml", "-c", "SELECT 1"]));
}

#[test]
fn unknown_dot_command_exits_2() {
    snapshot!(pintail().args(["-c", ".frobnicate"]));
}

#[test]
fn database_keeps_tables_between_runs() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cars.db");
    let made = pintail()
        .arg(&db)
        .args(["-c", "CREATE TABLE cars AS SELECT * FROM 'examples/data/cars.parquet'"])
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    snapshot!(pintail().arg(&db).args(["-m", "csv", "-c", ".tables", "-c", "SELECT origin, count(*) AS n FROM cars GROUP BY 1 ORDER BY 1"]));
    // read-only: reads work, writes are refused and change nothing
    snapshot!(pintail().arg(&db).args(["--read-only", "-c", "DELETE FROM cars"]));
    snapshot!(pintail().arg(&db).args(["-m", "csv", "-c", "SELECT count(*) AS n FROM cars"]));
}

#[test]
fn not_a_database_is_refused() {
    snapshot!(pintail().args(["examples/data", "-c", "SELECT 1"]));
}

#[test]
fn timer_goes_to_stderr() {
    snapshot!(pintail().args(["--timer", "-m", "csv", "-c", "SELECT 1 AS x"]));
}

#[test]
fn describe_and_summarize() {
    snapshot!(pintail().args(["-c", "DESCRIBE 'examples/data/weather/*/*.parquet'"]));
}

#[test]
fn output_file_parquet_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("result.parquet");
    let status = pintail().args(["-o"]).arg(&out).args(["-c", CARS]).status().unwrap();
    assert!(status.success());
    let query = format!("SELECT * FROM '{}'", out.display());
    let back = pintail().args(["-m", "csv", "-c", &query]).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&back.stdout),
        "origin,cars,avg_hp\nEurope,73,81.0\nJapan,79,79.8\nUSA,254,119.9\n"
    );
}

#[test]
fn output_file_csv_by_extension() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("result.csv");
    let status = pintail().args(["-o"]).arg(&out).args(["-c", CARS]).status().unwrap();
    assert!(status.success());
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "origin,cars,avg_hp\nEurope,73,81.0\nJapan,79,79.8\nUSA,254,119.9\n"
    );
}

#[test]
fn broken_pipe_exits_quietly() {
    let mut child = pintail()
        .args(["-m", "csv", "-c", "SELECT * FROM generate_series(1, 5000000)"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // read one line, then close the pipe as `head -1` would
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 6];
    std::io::Read::read_exact(&mut stdout, &mut first).unwrap();
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    assert_eq!(&first, b"value\n");
    assert_eq!(out.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}

#[test]
fn version_and_completions() {
    let v = pintail().arg("--version").output().unwrap();
    assert_eq!(String::from_utf8_lossy(&v.stdout), format!("pintail {}\n", env!("CARGO_PKG_VERSION")));
    for shell in ["bash", "zsh", "fish"] {
        let c = pintail().args(["completions", shell]).output().unwrap();
        assert!(c.status.success());
        assert!(String::from_utf8_lossy(&c.stdout).contains("maxrows"), "{shell}");
    }
}
