//! Runs every `tests/slt/*.slt` file (or those whose names contain an
//! argument). `cargo test -p pintail-sqllogictest --test slt -- --complete`
//! rewrites the expected results from what Pintail returns now.

#![expect(clippy::print_stdout, clippy::print_stderr, reason = "a test binary reports on the console")]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use pintail_sqllogictest::PintailDb;
use pintail_sqllogictest::servers::Server;
use sqllogictest::{Runner, default_column_validator, default_normalizer, default_validator, strict_column_validator};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Starts the object store servers the chosen files need: moto for
/// `s3.slt`, azurite for `azure.slt`. A file whose server is not installed is
/// skipped, unless `PINTAIL_REQUIRE_SERVERS=1` (as `scripts/test` sets).
fn start_servers(files: &mut Vec<PathBuf>) -> Result<Vec<(&'static str, Server)>, String> {
    let require = std::env::var("PINTAIL_REQUIRE_SERVERS").is_ok_and(|v| v == "1");
    let mut servers = Vec::new();
    for (file, name, start) in [
        ("s3.slt", "moto_server (PyPI moto[server])", pintail_sqllogictest::s3::start as fn() -> _),
        ("azure.slt", "azurite-blob (npm azurite)", pintail_sqllogictest::azure::start),
    ] {
        if !files.iter().any(|f| f.ends_with(file)) {
            continue;
        }
        match start()? {
            Some(server) => servers.push((file, server)),
            None if require => {
                return Err(format!("{name} not found, and PINTAIL_REQUIRE_SERVERS=1: scripts/test installs it"));
            }
            None => {
                files.retain(|f| !f.ends_with(file));
                println!("skipped tests/slt/{file}: {name} not found (scripts/test installs it)");
            }
        }
    }
    Ok(servers)
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
    let servers = match start_servers(&mut files) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    #[expect(unsafe_code, reason = "the environment is set once, before any other thread starts")]
    // SAFETY: no other thread exists yet that could read the environment
    unsafe {
        std::env::set_var("PINTAIL_TEST_HTTP", &server.url);
        for (file, s) in &servers {
            if *file == "s3.slt" {
                std::env::set_var("PINTAIL_TEST_S3", &s.endpoint);
                std::env::set_var("AWS_ENDPOINT_URL", &s.endpoint);
                std::env::set_var("AWS_ACCESS_KEY_ID", "pintail");
                std::env::set_var("AWS_SECRET_ACCESS_KEY", "pintail-secret");
                std::env::set_var("AWS_REGION", "us-east-1");
            } else {
                std::env::set_var("AZURE_STORAGE_USE_EMULATOR", "true");
                std::env::set_var("AZURITE_BLOB_STORAGE_URL", &s.endpoint);
            }
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
