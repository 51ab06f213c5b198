//! A session limited to allowed paths (`pintail serve --allow-path`):
//! every way SQL reaches a file is refused outside the roots, with the
//! same clear error, and works inside them; the database stays usable.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a failed unwrap is a failed test")]

mod common;

use std::path::{Path, PathBuf};

use common::{int, run};
use pintail_core::{AllowedPaths, ErrorKind, Session};

async fn error(session: &Session, sql: &str) -> pintail_core::Error {
    match session.sql(sql).await {
        Err(e) => e,
        Ok(r) => r.collect().await.expect_err(sql),
    }
}

/// `root/` (allowed, with `data.csv` and hive folders), `outside/` (not,
/// with `secret.csv`), a database under `root/`, and a session on it
/// limited to `root/`.
fn setup(dir: &Path) -> (PathBuf, PathBuf, Session) {
    let root = dir.join("root");
    let outside = dir.join("outside");
    std::fs::create_dir_all(root.join("hive/year=2024")).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(root.join("data.csv"), "id,name\n1,a\n2,b\n").unwrap();
    std::fs::write(root.join("hive/year=2024/part.csv"), "id\n7\n").unwrap();
    std::fs::write(outside.join("secret.csv"), "id,name\n99,top secret\n").unwrap();
    let session = Session::new().unwrap();
    pintail_storage::install(&session);
    pintail_storage::open(&session, &root.join("shop.db")).unwrap();
    session.allow_only(AllowedPaths::new([root.to_str().unwrap()]).unwrap());
    (root, outside, session)
}

fn assert_refused(e: &pintail_core::Error, path: &str) {
    assert_eq!(e.kind(), ErrorKind::NotAllowed, "{e}");
    assert!(e.message().contains("is outside the allowed paths") && e.message().contains(path), "{e}");
    assert!(e.hint().is_some_and(|h| h.contains("may read and write only under")), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_and_writes_stay_under_the_roots() {
    let dir = tempfile::tempdir().unwrap();
    let (root, outside, session) = setup(dir.path());
    let root_s = root.display();
    let outside_s = outside.display();

    // inside: files, functions, globs, hive folders, COPY, tables of the database
    assert_eq!(int(&session, &format!("SELECT count(*) FROM '{root_s}/data.csv'")).await, 2);
    assert_eq!(int(&session, &format!("SELECT sum(id) FROM read_csv('{root_s}/*.csv')")).await, 3);
    assert_eq!(int(&session, &format!("SELECT max(year) FROM '{root_s}/hive/*/*.csv'")).await, 2024);
    run(&session, &format!("COPY (SELECT 1 AS x) TO '{root_s}/out/x.parquet'")).await;
    assert_eq!(int(&session, &format!("SELECT x FROM '{root_s}/out/x.parquet'")).await, 1);
    run(&session, "CREATE TABLE t AS SELECT * FROM generate_series(1, 5) AS g(v)").await;
    run(&session, "INSERT INTO t VALUES (6)").await;
    assert_eq!(int(&session, "SELECT sum(v) FROM t").await, 21);

    // outside: each way of naming a file
    let secret = format!("{outside_s}/secret.csv");
    for sql in [
        format!("SELECT * FROM '{secret}'"),
        format!("SELECT * FROM read_csv('{secret}')"),
        format!("SELECT * FROM read_csv_auto('{secret}')"),
        format!("SELECT * FROM '{outside_s}/*.csv'"),
        format!("DESCRIBE '{secret}'"),
        format!("SUMMARIZE '{secret}'"),
        format!("SELECT * FROM '{root_s}/../outside/secret.csv'"),
        "SELECT * FROM '/etc/passwd'".to_owned(),
        "SELECT * FROM read_csv('/etc/passwd', header = false)".to_owned(),
    ] {
        let e = error(&session, &sql).await;
        assert_eq!(e.kind(), ErrorKind::NotAllowed, "{sql}: {e}");
        assert!(e.message().contains("outside the allowed paths"), "{sql}: {e}");
        // the refusal says nothing of what is there
        assert!(!e.to_string().contains("top secret"), "{sql}: {e}");
    }
    assert_refused(&error(&session, &format!("COPY (SELECT 1) TO '{outside_s}/leak.csv'")).await, "leak.csv");
    assert!(!outside.join("leak.csv").exists());
    assert_refused(&error(&session, &format!("CREATE EXTERNAL TABLE e STORED AS CSV LOCATION '{secret}'")).await, "secret.csv");
    assert_refused(&error(&session, &format!("ATTACH '{outside_s}/other.db' AS other")).await, "other.db");
    assert!(!outside.join("other.db").exists());
    assert_refused(&error(&session, &format!("SELECT * FROM delta_scan('{outside_s}')")).await, &outside_s.to_string());
    assert_refused(&error(&session, &format!("SET temp_directory = '{outside_s}/spill'")).await, "spill");
    assert_refused(&error(&session, &format!("SET datafusion.runtime.temp_directory = '{outside_s}/spill'")).await, "spill");
    // a bucket's endpoint cannot be pointed at another host
    let e = error(&session, "SELECT * FROM read_csv('s3://bucket/x.csv', endpoint = 'http://127.0.0.1:9')").await;
    assert_eq!(e.kind(), ErrorKind::NotAllowed, "{e}");
    assert!(e.message().contains("endpoint"), "{e}");
    // a URL is refused when no root is a URL
    let e = error(&session, "SELECT * FROM 'https://example.com/data.csv'").await;
    assert_eq!(e.kind(), ErrorKind::NotAllowed, "{e}");

    // the session still works, database included
    assert_eq!(int(&session, "SELECT count(*) FROM t").await, 6);
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_cannot_lead_out_of_a_root() {
    let dir = tempfile::tempdir().unwrap();
    let (root, outside, session) = setup(dir.path());
    std::os::unix::fs::symlink(outside.join("secret.csv"), root.join("innocent.csv")).unwrap();
    std::os::unix::fs::symlink(&outside, root.join("elsewhere")).unwrap();
    let e = error(&session, &format!("SELECT * FROM '{}/innocent.csv'", root.display())).await;
    assert_refused(&e, "innocent.csv");
    let e = error(&session, &format!("SELECT * FROM '{}/elsewhere/secret.csv'", root.display())).await;
    assert_refused(&e, "secret.csv");
    let e = error(&session, &format!("COPY (SELECT 1) TO '{}/elsewhere/leak.csv'", root.display())).await;
    assert_refused(&e, "leak.csv");
    assert!(!outside.join("leak.csv").exists());
    // a glob over the root skips what links lead out of it
    assert_eq!(int(&session, &format!("SELECT sum(id) FROM '{}/*.csv'", root.display())).await, 3);
}
