//! SQL cursors, as psycopg's server-side cursors (`conn.cursor(name)`) and
//! psql scripts use them: `DECLARE name CURSOR [WITH HOLD] FOR query`,
//! `FETCH [FORWARD] [n | ALL] FROM name`, `MOVE`, `CLOSE name | ALL`.
//!
//! A cursor is its query running on the query runtime, read as far as it
//! has been fetched: nothing is read ahead of the fetches but what the
//! runtime's channel holds, so a cursor over a large result holds little
//! memory. Each `FETCH` reads its rows before it ends (a simple query's
//! later statements run before its rows are sent, and must find the
//! cursor past them), sends them in its own format (text or binary, from
//! its Bind), and runs under its own stop (cancel, time limit, shutdown);
//! `FETCH ALL` holds the rest of the result in memory. As in Postgres:
//! - a cursor without `WITH HOLD` is declared only inside a transaction
//!   and closed when the transaction ends; one `WITH HOLD` stays until
//!   `CLOSE` or the end of the connection;
//! - a cursor declared through the extended protocol is also a portal
//!   of that name, so `Describe` tells its columns (psycopg asks so).
//!
//! Cursors read forward only: `SCROLL`, `BINARY` and backward fetches are
//! refused with a clear error. A `FETCH` cut short (cancelled, or its
//! rows not all read) leaves the cursor unusable, since rows it read were
//! never delivered.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use futures::{Stream, StreamExt, stream};
use pintail_core::datafusion::sql::sqlparser::keywords::Keyword;
use pintail_core::datafusion::sql::sqlparser::tokenizer::Token;
use pintail_core::{Error, ErrorKind, Result, Statement, split_statements};

use crate::work::Running;

/// A cursor statement.
#[derive(Debug)]
pub(crate) enum Command {
    Declare { name: String, hold: bool, query: Statement },
    Fetch { name: String, count: Count },
    Move { name: String, count: Count },
    /// `None`: `CLOSE ALL`.
    Close { name: Option<String> },
}

/// How many rows a `FETCH` or `MOVE` goes forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Count {
    Rows(usize),
    All,
}

/// `statement` as a cursor statement; `None` for any other statement.
pub(crate) fn parse(statement: &Statement) -> Result<Option<Command>> {
    let tokens: Vec<&Token> = statement.tokens().iter().map(|t| &t.token).collect();
    let Some(Token::Word(first)) = tokens.first() else { return Ok(None) };
    if first.quote_style.is_some() {
        return Ok(None);
    }
    match first.value.to_ascii_uppercase().as_str() {
        "DECLARE" => declare(statement, &tokens).map(Some),
        "FETCH" => {
            let (name, count) = direction(statement, &tokens[1..])?;
            Ok(Some(Command::Fetch { name, count }))
        }
        "MOVE" => {
            let (name, count) = direction(statement, &tokens[1..])?;
            Ok(Some(Command::Move { name, count }))
        }
        "CLOSE" => match &tokens[1..] {
            [Token::Word(w)] if w.quote_style.is_none() && w.keyword == Keyword::ALL => Ok(Some(Command::Close { name: None })),
            [name] => Ok(Some(Command::Close { name: Some(cursor_name(statement, name)?) })),
            _ => Err(syntax(statement, "CLOSE name | CLOSE ALL")),
        },
        _ => Ok(None),
    }
}

/// `DECLARE name [BINARY] [ASENSITIVE | INSENSITIVE] [[NO] SCROLL] CURSOR
/// [{WITH | WITHOUT} HOLD] FOR query`.
fn declare(statement: &Statement, tokens: &[&Token]) -> Result<Command> {
    const FORM: &str = "DECLARE name [NO SCROLL] CURSOR [WITH HOLD] FOR query";
    let name = cursor_name(statement, tokens.get(1).copied().ok_or_else(|| syntax(statement, FORM))?)?;
    let mut hold = false;
    let mut i = 2;
    let mut scroll = false;
    while let Some(Token::Word(w)) = tokens.get(i) {
        match w.value.to_ascii_uppercase().as_str() {
            "BINARY" => {
                return Err(Error::new(ErrorKind::NotSupported, "BINARY cursors are not supported")
                    .with_hint("declare the cursor without BINARY; a client reads binary rows by asking FETCH for them"));
            }
            "ASENSITIVE" | "INSENSITIVE" | "CURSOR" | "WITHOUT" | "HOLD" => {}
            "NO" => {
                i += 1;
            }
            "SCROLL" => scroll = true,
            "WITH" => hold = true,
            "FOR" => break,
            _ => return Err(syntax(statement, FORM)),
        }
        i += 1;
    }
    if scroll {
        return Err(Error::new(ErrorKind::NotSupported, "SCROLL cursors are not supported: cursors read forward only")
            .with_hint("declare it NO SCROLL (or without SCROLL)"));
    }
    if tokens.get(i).is_none() || i + 1 >= tokens.len() {
        return Err(syntax(statement, FORM));
    }
    let query = &statement.text()[statement.token_range(i + 1, tokens.len() - 1)];
    let mut statements = split_statements(query)?;
    match (statements.pop(), statements.is_empty()) {
        (Some(query), true) => Ok(Command::Declare { name, hold, query }),
        _ => Err(syntax(statement, FORM)),
    }
}

/// `[NEXT | FORWARD [n | ALL] | n | ALL] [FROM | IN] name`.
fn direction(statement: &Statement, tokens: &[&Token]) -> Result<(String, Count)> {
    const FORM: &str = "FETCH [FORWARD] [n | ALL] FROM name";
    let Some((name, rest)) = tokens.split_last() else { return Err(syntax(statement, FORM)) };
    let name = cursor_name(statement, name)?;
    let rest = match rest.split_last() {
        Some((Token::Word(w), rest)) if w.quote_style.is_none() && matches!(w.keyword, Keyword::FROM | Keyword::IN) => rest,
        _ => rest,
    };
    let words: Vec<String> = rest
        .iter()
        .map(|t| match t {
            Token::Word(w) if w.quote_style.is_none() => w.value.to_ascii_uppercase(),
            Token::Number(n, _) => n.clone(),
            other => other.to_string(),
        })
        .collect();
    let number = |n: &str| n.parse::<usize>().map(Count::Rows).map_err(|_| syntax(statement, FORM));
    match words.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        [] | ["NEXT" | "FORWARD"] => Ok((name, Count::Rows(1))),
        ["ALL"] | ["FORWARD", "ALL"] => Ok((name, Count::All)),
        [n] | ["FORWARD", n] if n.bytes().all(|b| b.is_ascii_digit()) => Ok((name, number(n)?)),
        [first, ..] if matches!(*first, "PRIOR" | "FIRST" | "LAST" | "ABSOLUTE" | "RELATIVE" | "BACKWARD" | "-") => {
            Err(Error::new(ErrorKind::NotSupported, format!("cursor \"{name}\" can only scan forward"))
                .with_hint("FETCH [FORWARD] n or ALL; declare the cursor again to read from the start"))
        }
        _ => Err(syntax(statement, FORM)),
    }
}

/// A cursor's name: Postgres folds unquoted names to lower case.
fn cursor_name(statement: &Statement, token: &Token) -> Result<String> {
    match token {
        Token::Word(w) if w.quote_style.is_some() => Ok(w.value.clone()),
        Token::Word(w) => Ok(w.value.to_lowercase()),
        _ => Err(syntax(statement, "a cursor name")),
    }
}

fn syntax(statement: &Statement, form: &str) -> Error {
    Error::new(ErrorKind::Syntax, format!("cannot read this cursor statement: {}", statement.text())).with_hint(format!("write it as {form}"))
}

/// The error for a cursor the connection does not have.
pub(crate) fn missing(name: &str) -> Error {
    Error::new(ErrorKind::Plan, format!("cursor \"{name}\" does not exist"))
}

/// One declared cursor.
pub(crate) struct Cursor {
    schema: SchemaRef,
    /// Whether it outlives its transaction.
    hold: bool,
    rows: tokio::sync::Mutex<Rows>,
    /// Set while a `FETCH` reads it; left set if one was cut short.
    busy: AtomicBool,
}

struct Rows {
    running: Running,
    /// The rest of a batch of which a `FETCH` took only the first rows.
    rest: Option<RecordBatch>,
}

impl Cursor {
    pub(crate) fn new(running: Running, hold: bool) -> Self {
        Self {
            schema: running.schema(),
            hold,
            rows: tokio::sync::Mutex::new(Rows { running, rest: None }),
            busy: AtomicBool::new(false),
        }
    }

    pub(crate) fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    /// The next `count` rows of the cursor `name`, read as the stream is
    /// polled.
    pub(crate) fn rows(self: &Arc<Self>, name: &str, count: Count) -> Result<impl Stream<Item = Result<RecordBatch>> + Send + 'static> {
        if self.busy.swap(true, Ordering::AcqRel) {
            return Err(Error::new(
                ErrorKind::Execution,
                format!("cursor \"{name}\" lost its place: a FETCH from it was cut short before its rows were all read"),
            )
            .with_hint(format!("CLOSE {name} and DECLARE it again")));
        }
        let wanted = match count {
            Count::Rows(n) => n,
            Count::All => usize::MAX,
        };
        Ok(stream::unfold((Arc::clone(self), wanted, false), |(cursor, wanted, failed)| async move {
            if failed {
                return None;
            }
            if wanted == 0 {
                cursor.busy.store(false, Ordering::Release);
                return None;
            }
            match cursor.next(wanted).await {
                None => {
                    cursor.busy.store(false, Ordering::Release);
                    None
                }
                Some(Ok(batch)) => {
                    let left = wanted - batch.num_rows();
                    Some((Ok(batch), (cursor, left, false)))
                }
                Some(Err(e)) => Some((Err(e), (cursor, 0, true))),
            }
        }))
    }

    /// The next batch of at most `wanted` rows; `None` at the end.
    async fn next(&self, wanted: usize) -> Option<Result<RecordBatch>> {
        let mut rows = self.rows.lock().await;
        let batch = match rows.rest.take() {
            Some(batch) => batch,
            None => loop {
                match rows.running.next().await? {
                    Ok(batch) if batch.num_rows() == 0 => {}
                    Ok(batch) => break batch,
                    Err(e) => return Some(Err(e)),
                }
            },
        };
        if batch.num_rows() > wanted {
            rows.rest = Some(batch.slice(wanted, batch.num_rows() - wanted));
            return Some(Ok(batch.slice(0, wanted)));
        }
        Some(Ok(batch))
    }
}

/// The cursors of one connection, by name.
#[derive(Default)]
pub(crate) struct Cursors(Mutex<Open>);

#[derive(Default)]
struct Open {
    cursors: HashMap<String, Arc<Cursor>>,
    /// Cursors closed whose portals may still be in the client's portal
    /// store.
    closed: Vec<String>,
}

impl Cursors {
    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn get(&self, name: &str) -> Result<Arc<Cursor>> {
        self.lock().cursors.get(name).cloned().ok_or_else(|| missing(name))
    }

    /// Keeps `cursor` as `name`, unless the connection has one of that name.
    pub(crate) fn declare(&self, name: &str, cursor: Cursor) -> Result<()> {
        let mut open = self.lock();
        if open.cursors.contains_key(name) {
            return Err(Error::new(ErrorKind::Plan, format!("cursor \"{name}\" already exists")).with_hint(format!("CLOSE {name} first")));
        }
        open.cursors.insert(name.to_owned(), Arc::new(cursor));
        Ok(())
    }

    /// Closes the cursor `name`, or all of them.
    pub(crate) fn close(&self, name: Option<&str>) -> Result<()> {
        let mut open = self.lock();
        let Open { cursors, closed } = &mut *open;
        match name {
            None => closed.extend(cursors.drain().map(|(name, _)| name)),
            Some(name) => {
                cursors.remove(name).ok_or_else(|| missing(name))?;
                closed.push(name.to_owned());
            }
        }
        Ok(())
    }

    /// Closes the cursors that end with their transaction.
    pub(crate) fn end_transaction(&self) {
        let mut open = self.lock();
        let Open { cursors, closed } = &mut *open;
        cursors.retain(|name, cursor| {
            if !cursor.hold {
                closed.push(name.clone());
            }
            cursor.hold
        });
    }

    /// The names of the cursors closed since the last call.
    pub(crate) fn take_closed(&self) -> Vec<String> {
        std::mem::take(&mut self.lock().closed)
    }
}
