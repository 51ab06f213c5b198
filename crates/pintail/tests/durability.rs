//! Databases survive crashes and several writers: real `pintail` processes
//! are killed with SIGKILL mid-write, or write the same table at once, and
//! the database is checked with a fresh process afterwards.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a failed unwrap is a failed test")]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use insta_cmd::get_cargo_bin;

fn pintail(db: &Path) -> Command {
    let mut c = Command::new(get_cargo_bin("pintail"));
    c.arg(db)
        .args(["-m", "csv"])
        .env("NO_COLOR", "1")
        .env_remove("PINTAIL_MEMORY_LIMIT")
        .env_remove("PINTAIL_THREADS")
        .stdin(Stdio::null());
    c
}

fn run(db: &Path, sql: &[&str]) -> Output {
    let mut c = pintail(db);
    for s in sql {
        c.args(["-c", s]);
    }
    c.output().unwrap()
}

fn ok(db: &Path, sql: &[&str]) -> String {
    let out = run(db, sql);
    assert!(out.status.success(), "{sql:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// A small deterministic generator, so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

const ROWS: u64 = 500;

/// One batch of work: insert a batch of rows, update them all, then merge
/// over them; each acknowledged by a line once its statement returned.
fn batch_sql(seq: u64) -> Vec<String> {
    vec![
        format!("INSERT INTO t SELECT {seq} AS seq, value AS n, 'v0' AS payload FROM generate_series(1, {ROWS})"),
        format!("SELECT 'insert {seq}' AS ack"),
        format!("UPDATE t SET payload = 'v1' WHERE seq = {seq}"),
        format!("SELECT 'update {seq}' AS ack"),
        format!(
            "MERGE INTO t USING (SELECT {seq} AS seq, value AS n FROM generate_series(1, {ROWS})) AS s \
             ON t.seq = s.seq AND t.n = s.n WHEN MATCHED THEN UPDATE SET payload = 'v2'"
        ),
        format!("SELECT 'merge {seq}' AS ack"),
    ]
}

/// Per batch: rows, and the distinct payloads among them.
fn contents(db: &Path) -> BTreeMap<u64, (u64, BTreeSet<String>)> {
    let out = ok(db, &["SELECT seq, count(*) AS rows, string_agg(DISTINCT payload, '|') AS payloads FROM t GROUP BY seq"]);
    let mut map = BTreeMap::new();
    for line in out.lines().skip(1) {
        let mut parts = line.split(',');
        let seq = parts.next().unwrap().parse().unwrap();
        let rows = parts.next().unwrap().parse().unwrap();
        let payloads = parts.next().unwrap().split('|').map(str::to_string).collect();
        map.insert(seq, (rows, payloads));
    }
    map
}

#[test]
fn killed_writers_lose_nothing_acknowledged_and_leave_nothing_partial() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crash.db");
    ok(&db, &["CREATE TABLE t (seq BIGINT NOT NULL, n BIGINT NOT NULL, payload VARCHAR)"]);
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut acked: BTreeSet<String> = BTreeSet::new();
    let mut seq = 0;
    let kills = 60;
    let mut killed_mid_batch = 0;
    for round in 0..kills {
        // each process runs a few batches; the kill lands somewhere in them
        let mut sql = Vec::new();
        for _ in 0..4 {
            seq += 1;
            sql.extend(batch_sql(seq));
        }
        let mut c = pintail(&db);
        for s in &sql {
            c.args(["-c", s]);
        }
        let mut child = c.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let reader = {
            let lines = Arc::clone(&lines);
            let stdout = child.stdout.take().unwrap();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    lines.lock().unwrap().push(line);
                }
            })
        };
        std::thread::sleep(Duration::from_millis(rng.below(250)));
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        reader.join().unwrap();
        let seen: Vec<String> = lines.lock().unwrap().iter().filter(|l| !l.starts_with("ack") && !l.starts_with("count")).filter(|l| l.contains(' ')).cloned().collect();
        if !status.success() {
            killed_mid_batch += 1;
        }
        acked.extend(seen);

        // the database opens, everything acknowledged is there, nothing is half done
        let now = contents(&db);
        for (batch, (rows, payloads)) in &now {
            assert_eq!(*rows, ROWS, "round {round}: batch {batch} has {rows} rows: an insert was partly applied");
            assert_eq!(payloads.len(), 1, "round {round}: batch {batch} mixes payloads {payloads:?}: a change was partly applied");
        }
        for a in &acked {
            let (what, batch) = a.split_once(' ').unwrap();
            let batch: u64 = batch.parse().unwrap();
            let (_, payloads) = now.get(&batch).unwrap_or_else(|| panic!("round {round}: acknowledged '{a}' but batch {batch} is gone"));
            let payload = payloads.first().unwrap().as_str();
            let allowed: &[&str] = match what {
                "insert" => &["v0", "v1", "v2"],
                "update" => &["v1", "v2"],
                "merge" => &["v2"],
                other => panic!("unexpected line {other}"),
            };
            assert!(allowed.contains(&payload), "round {round}: '{a}' acknowledged but batch {batch} has {payload}");
        }
    }
    assert!(killed_mid_batch >= 50, "only {killed_mid_batch} of {kills} processes were killed before finishing");
    // and writing goes on
    ok(&db, &["INSERT INTO t VALUES (0, 0, 'after')", "OPTIMIZE t"]);
    let after = ok(&db, &["SELECT count(*) FROM t WHERE payload = 'after'"]);
    assert_eq!(after.lines().nth(1), Some("1"));
}

#[test]
fn concurrent_writers_keep_every_append() {
    let dir = tempfile::tempdir().unwrap();
    let db: PathBuf = dir.path().join("busy.db");
    ok(&db, &["CREATE TABLE t (writer INT, k INT, hits BIGINT)", "INSERT INTO t VALUES (0, 0, 0)"]);
    let writers = 4;
    let appends = 15;
    let children: Vec<_> = (1..=writers)
        .map(|w| {
            let mut c = pintail(&db);
            for k in 1..=appends {
                c.args(["-c", &format!("INSERT INTO t VALUES ({w}, {k}, 0)")]);
            }
            c.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap()
        })
        .collect();
    // updates of one row race with each other; each either commits or is
    // refused as a conflict, never lost silently
    let updaters: Vec<_> = (0..writers)
        .map(|_| {
            let mut c = pintail(&db);
            for _ in 0..5 {
                c.args(["-c", "UPDATE t SET hits = hits + 1 WHERE writer = 0"]);
            }
            c.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "an append failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let mut committed_updates = 0;
    for child in updaters {
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.success() {
            committed_updates += 5;
        } else {
            assert!(stderr.contains("conflict: table 't' was changed by another writer"), "unexpected error: {stderr}");
            assert!(stderr.contains("run the statement again"), "{stderr}");
            // the updates before the refused one committed; count them from the history below
        }
    }
    let rows = ok(&db, &["SELECT count(*) FROM t WHERE writer > 0"]);
    assert_eq!(rows.lines().nth(1), Some((writers * appends).to_string().as_str()), "an append was lost");
    let hits: u64 = ok(&db, &["SELECT hits FROM t WHERE writer = 0"]).lines().nth(1).unwrap().parse().unwrap();
    let update_commits: u64 = ok(&db, &["SELECT count(*) FROM (DESCRIBE HISTORY t) WHERE operation = 'UPDATE'"])
        .lines()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(hits, update_commits, "every committed update shows in the row, and no other");
    assert!(hits >= committed_updates as u64);
}
