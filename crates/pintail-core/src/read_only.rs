//! Read-only sessions: what a server (`pintail serve --read-only`) or an
//! agent's MCP server lets its clients run.
//!
//! An allowlist, not a denylist, checked twice. Each statement's kind must
//! be one that only reads: a query (`SELECT`, `WITH`, `VALUES`, `FROM`,
//! `TABLE`), `EXPLAIN`, `DESCRIBE`, `SHOW` or `SUMMARIZE`; `COPY`, `SET`,
//! `ATTACH`, DDL and DML are refused before anything runs. Then every plan
//! DataFusion makes for the session is walked, and a plan that writes
//! (`INSERT`, `UPDATE`, `DELETE`, `CREATE`, `COPY`) or changes the session
//! anywhere in it is refused: so is `EXPLAIN ANALYZE INSERT ...`, which
//! would run the insert, or a write hidden in a view.

use async_trait::async_trait;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::logical_expr::{DdlStatement, LogicalPlan};
use datafusion::logical_expr::Statement as PlanStatement;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::Token;

use crate::error::{Error, ErrorKind, Result};
use crate::extension::Extension;
use crate::result::QueryResult;
use crate::session::Session;
use crate::statement::{Statement, StatementKind};

/// The read-only rule, as a session [`Extension`]. Install it before any
/// other extension, so that it sees statements first.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadOnly {
    transactions: bool,
}

impl ReadOnly {
    /// Queries, `EXPLAIN`, `DESCRIBE`, `SHOW` and `SUMMARIZE` only.
    pub fn new() -> Self {
        Self::default()
    }

    /// Also `BEGIN`, `COMMIT`, `ROLLBACK` and savepoints, which Postgres
    /// drivers send around reads on their own (psycopg, JDBC outside
    /// autocommit); they change nothing here.
    pub fn with_transactions() -> Self {
        Self { transactions: true }
    }

    /// An error if `statement` is not of a kind that only reads.
    pub fn check(&self, statement: &Statement) -> Result<()> {
        let first = statement.tokens().first().map(|t| &t.token);
        let allowed = match statement.kind() {
            StatementKind::Describe | StatementKind::Summarize | StatementKind::Show => true,
            StatementKind::Copy | StatementKind::Set | StatementKind::Reset => false,
            StatementKind::Other => match first {
                Some(Token::LParen) => true,
                Some(Token::Word(w)) => match w.keyword {
                    Keyword::SELECT | Keyword::WITH | Keyword::VALUES | Keyword::FROM | Keyword::TABLE | Keyword::EXPLAIN => true,
                    Keyword::BEGIN
                    | Keyword::START
                    | Keyword::COMMIT
                    | Keyword::END
                    | Keyword::ROLLBACK
                    | Keyword::ABORT
                    | Keyword::SAVEPOINT
                    | Keyword::RELEASE => self.transactions,
                    _ => false,
                },
                _ => false,
            },
        };
        if allowed {
            return match writing_cte(statement) {
                Some(verb) => Err(refused(&format!("WITH ... {verb} statements are refused"))),
                None => Ok(()),
            };
        }
        let verb = match first {
            Some(Token::Word(w)) => w.value.to_uppercase(),
            _ => "this".to_owned(),
        };
        Err(refused(&format!("{verb} statements are refused")))
    }
}

/// The write in a statement that starts with `WITH`, if it has one: its
/// main statement (the first `INSERT`, `UPDATE`, `DELETE` or `MERGE`
/// outside the common table expressions' parentheses), or a common table
/// expression that is one (Postgres' `WITH x AS (DELETE ... RETURNING *)`).
/// DataFusion plans neither, but a read-only session refuses them by what
/// they are, before any planner sees them.
fn writing_cte(statement: &Statement) -> Option<String> {
    let mut tokens = statement.tokens().iter().map(|t| &t.token);
    if !matches!(tokens.next(), Some(Token::Word(w)) if w.keyword == Keyword::WITH) {
        return None;
    }
    let mut depth = 0usize;
    let mut after_open = false;
    for token in tokens {
        match token {
            Token::LParen => {
                depth += 1;
                after_open = true;
                continue;
            }
            Token::RParen => depth = depth.saturating_sub(1),
            Token::Word(w)
                if matches!(w.keyword, Keyword::INSERT | Keyword::UPDATE | Keyword::DELETE | Keyword::MERGE)
                    && (depth == 0 || after_open) =>
            {
                return Some(w.value.to_uppercase());
            }
            Token::Word(w) if depth == 0 && matches!(w.keyword, Keyword::SELECT | Keyword::VALUES | Keyword::TABLE) => return None,
            _ => {}
        }
        after_open = false;
    }
    None
}

/// The error for what a read-only session refuses.
fn refused(what: &str) -> Error {
    Error::new(ErrorKind::ReadOnly, format!("read-only: {what}"))
        .with_hint("this session runs queries, EXPLAIN, DESCRIBE, SHOW and SUMMARIZE only")
}

/// What in `plan` would write or change the session, if anything.
fn writes(plan: &LogicalPlan, transactions: bool) -> Option<&'static str> {
    let mut found = None;
    let _ = plan.apply_with_subqueries(|node| {
        found = match node {
            LogicalPlan::Dml(_) => Some("writes (INSERT, UPDATE, DELETE)"),
            LogicalPlan::Copy(_) => Some("COPY"),
            LogicalPlan::Ddl(ddl) => Some(match ddl {
                DdlStatement::DropTable(_) | DdlStatement::DropView(_) | DdlStatement::DropCatalogSchema(_) | DdlStatement::DropFunction(_) => "DROP",
                _ => "CREATE",
            }),
            LogicalPlan::Statement(PlanStatement::TransactionStart(_) | PlanStatement::TransactionEnd(_)) if transactions => None,
            LogicalPlan::Statement(_) => Some("statements that change the session"),
            _ => None,
        };
        Ok(if found.is_some() { TreeNodeRecursion::Stop } else { TreeNodeRecursion::Continue })
    });
    found
}

#[async_trait]
impl Extension for ReadOnly {
    fn name(&self) -> &'static str {
        "read_only"
    }

    async fn statement(&self, _session: &Session, statement: &Statement) -> Result<Option<QueryResult>> {
        self.check(statement)?;
        Ok(None)
    }

    fn check_plan(&self, _session: &Session, plan: &LogicalPlan) -> Result<()> {
        match writes(plan, self.transactions) {
            Some(what) => Err(refused(&format!("{what} refused"))),
            None => Ok(()),
        }
    }

    async fn ddl(&self, _session: &Session, ddl: &DdlStatement, _text: &str) -> Result<Option<QueryResult>> {
        Err(refused(&format!("{} refused", ddl.name())))
    }
}

#[cfg(all(test, feature = "native"))]
mod tests {
    #![allow(clippy::expect_used, reason = "a failed expect is a failed test")]
    use std::sync::Arc;

    use datafusion::arrow::array::RecordBatch;

    use super::*;

    async fn run(session: &Session, sql: &str) -> Result<usize> {
        let batches = session.sql(sql).await?.collect().await?;
        Ok(batches.iter().map(RecordBatch::num_rows).sum())
    }

    async fn read_only_session(rule: ReadOnly) -> Session {
        let session = Session::new().expect("session");
        run(&session, "CREATE TABLE t AS SELECT 1 AS x").await.expect("table");
        session.add_extension(Arc::new(rule));
        session
    }

    #[tokio::test]
    async fn reads_run_and_everything_else_is_refused() {
        let session = read_only_session(ReadOnly::new()).await;
        for sql in [
            "SELECT * FROM t",
            "WITH a AS (SELECT x FROM t) SELECT * FROM a",
            "VALUES (1)",
            "(SELECT 1)",
            "EXPLAIN SELECT * FROM t",
            "DESCRIBE t",
            "SHOW TABLES",
            "SUMMARIZE t",
            "-- a comment first\nSELECT 1",
        ] {
            assert!(run(&session, sql).await.is_ok(), "{sql} should run");
        }
        for (sql, says) in [
            ("INSERT INTO t VALUES (2)", "INSERT statements are refused"),
            ("UPDATE t SET x = 2", "UPDATE statements are refused"),
            ("DELETE FROM t", "DELETE statements are refused"),
            ("CREATE TABLE u (y INT)", "CREATE statements are refused"),
            ("DROP TABLE t", "DROP statements are refused"),
            ("COPY t TO '/tmp/pintail-read-only-never.csv'", "COPY statements are refused"),
            ("COPY (SELECT 1) TO '/tmp/pintail-read-only-never.csv'", "COPY statements are refused"),
            ("SET threads = 1", "SET statements are refused"),
            ("RESET threads", "RESET statements are refused"),
            ("ATTACH 'other.db'", "ATTACH statements are refused"),
            ("BEGIN", "BEGIN statements are refused"),
            // a write in a query's clothing is caught in its plan
            ("EXPLAIN ANALYZE INSERT INTO t VALUES (2)", "writes (INSERT, UPDATE, DELETE) refused"),
            // hidden after a semicolon or behind a comment
            ("SELECT 1; DROP TABLE t", "DROP statements are refused"),
            ("/* SELECT */ DELETE FROM t", "DELETE statements are refused"),
        ] {
            let e = run(&session, sql).await.expect_err(sql);
            assert_eq!(e.kind(), ErrorKind::ReadOnly, "{sql}: {e:?}");
            assert!(e.message().contains(says), "{sql}: {}", e.message());
        }
        assert!(!std::path::Path::new("/tmp/pintail-read-only-never.csv").exists());
        // a write behind common table expressions, or one of them
        for sql in [
            "WITH a AS (SELECT 2 AS x) INSERT INTO t SELECT x FROM a",
            "WITH a AS (SELECT 2 AS x), b AS (SELECT 3) DELETE FROM t",
            "WITH gone AS (DELETE FROM t RETURNING *) SELECT * FROM gone",
            "WITH RECURSIVE a(n) AS (SELECT 1) UPDATE t SET x = 3",
        ] {
            let e = run(&session, sql).await.expect_err(sql);
            assert_eq!(e.kind(), ErrorKind::ReadOnly, "{sql}: {e:?}");
            assert!(e.message().contains("WITH ..."), "{sql}: {}", e.message());
        }
        // and a query that only names such words runs
        assert!(run(&session, "WITH a AS (SELECT 'DELETE' AS update_time) SELECT * FROM a").await.is_ok());
        // nothing was written
        assert_eq!(run(&session, "SELECT * FROM t").await.expect("read"), 1);
    }

    #[test]
    fn transaction_control_is_allowed_when_asked_for() {
        let statements = crate::split_statements("BEGIN; START TRANSACTION; SAVEPOINT s; ROLLBACK TO s; COMMIT; ROLLBACK").expect("split");
        for s in &statements {
            assert!(ReadOnly::with_transactions().check(s).is_ok(), "{}", s.text());
            assert_eq!(ReadOnly::new().check(s).map_err(|e| e.kind()), Err(ErrorKind::ReadOnly), "{}", s.text());
        }
        let insert = crate::split_statements("INSERT INTO t VALUES (1)").expect("split");
        assert!(ReadOnly::with_transactions().check(&insert[0]).is_err());
    }
}
