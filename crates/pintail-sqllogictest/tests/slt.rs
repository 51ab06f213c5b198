//! Runs every `tests/slt/*.slt` file (or those whose names contain an
//! argument). `cargo test -p pintail-sqllogictest --test slt -- --complete`
//! rewrites the expected results from what Pintail returns now.

#![expect(clippy::print_stdout, clippy::print_stderr, reason = "a test binary reports on the console")]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use pintail_sqllogictest::PintailDb;
use sqllogictest::{Runner, default_column_validator, default_normalizer, default_validator, strict_column_validator};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let complete = args.iter().any(|a| a == "--complete");
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let root = root();
    if let Err(e) = std::env::set_current_dir(&root) {
        eprintln!("cannot enter {}: {e}", root.display());
        return ExitCode::FAILURE;
    }
    let mut files: Vec<PathBuf> = match std::fs::read_dir("tests/slt") {
        Ok(dir) => dir
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "slt"))
            .filter(|p| filters.is_empty() || filters.iter().any(|f| p.to_string_lossy().contains(f.as_str())))
            .collect(),
        Err(e) => {
            eprintln!("cannot list tests/slt: {e}");
            return ExitCode::FAILURE;
        }
    };
    files.sort();
    // http.slt reads the repository's files through this server
    let server = match pintail_sqllogictest::http::serve(root.clone()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cannot start the test HTTP server: {e}");
            return ExitCode::FAILURE;
        }
    };
    // s3.slt talks to moto, if it can be started
    let s3 = match pintail_sqllogictest::s3::start() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let require_s3 = std::env::var("PINTAIL_REQUIRE_S3").is_ok_and(|v| v == "1");
    if s3.is_none() {
        if require_s3 {
            eprintln!("moto_server not found, and PINTAIL_REQUIRE_S3=1: install moto[server] (scripts/test does)");
            return ExitCode::FAILURE;
        }
        files.retain(|f| !f.ends_with("s3.slt"));
        println!("skipped tests/slt/s3.slt: moto_server not found (scripts/test installs it)");
    }
    #[expect(unsafe_code, reason = "the environment is set once, before any other thread starts")]
    // SAFETY: no other thread exists yet that could read the environment
    unsafe {
        std::env::set_var("PINTAIL_TEST_HTTP", &server.url);
        if let Some(s3) = &s3 {
            std::env::set_var("PINTAIL_TEST_S3", &s3.endpoint);
            std::env::set_var("AWS_ENDPOINT_URL", &s3.endpoint);
            std::env::set_var("AWS_ACCESS_KEY_ID", "pintail");
            std::env::set_var("AWS_SECRET_ACCESS_KEY", "pintail-secret");
            std::env::set_var("AWS_REGION", "us-east-1");
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start tokio: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut failed = 0;
    for file in &files {
        let outcome = runtime.block_on(async {
            let mut runner = Runner::new(|| async { PintailDb::new() });
            runner.with_column_validator(strict_column_validator);
            if complete {
                runner
                    .update_test_file(file, " ", default_validator, default_normalizer, default_column_validator)
                    .await
                    .map_err(|e| e.to_string())
            } else {
                runner.run_file_async(file).await.map_err(|e| e.display(true).to_string())
            }
        });
        match outcome {
            Ok(()) => println!("ok      {}", file.display()),
            Err(e) => {
                failed += 1;
                println!("FAILED  {}\n{e}\n", file.display());
            }
        }
    }
    let http_files = files.iter().any(|f| f.ends_with("http.slt"));
    if http_files && server.range_requests.load(std::sync::atomic::Ordering::Relaxed) == 0 {
        println!("FAILED  http.slt read Parquet over HTTP without a single range request");
        failed += 1;
    }
    println!("{} files, {} failed", files.len(), failed);
    if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
