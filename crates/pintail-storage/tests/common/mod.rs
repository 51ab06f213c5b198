//! Helpers shared by the database tests: sessions on one database, and
//! running SQL in them.

#![allow(clippy::unwrap_used, dead_code, reason = "test helpers; a failed unwrap is a failed test")]

use std::path::{Path, PathBuf};

use pintail_core::Session;
use tempfile::TempDir;

/// Runs `sql` to the end.
pub async fn run(session: &Session, sql: &str) {
    session.sql(sql).await.unwrap().drain().await.unwrap();
}

/// The first value of the first column of `sql`'s result, as an integer.
pub async fn int(session: &Session, sql: &str) -> i64 {
    use pintail_core::datafusion::arrow::{array::Int64Array, compute::cast, datatypes::DataType};
    let batches = session.sql(sql).await.unwrap().collect().await.unwrap();
    let column = cast(batches[0].column(0), &DataType::Int64).unwrap();
    column.as_any().downcast_ref::<Int64Array>().unwrap().value(0)
}

/// A session with the database at `db` open.
pub fn open(db: &Path) -> Session {
    let session = Session::new().unwrap();
    pintail_storage::open(&session, db).unwrap();
    session
}

/// A new database (in a directory dropped with the returned `TempDir`)
/// holding the table `create` makes, and two sessions on it.
pub async fn two_sessions(create: &str) -> (TempDir, PathBuf, Session, Session) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let (a, b) = (open(&db), open(&db));
    run(&a, create).await;
    (dir, db, a, b)
}
