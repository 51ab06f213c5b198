//! Results cut to fit an agent's context: at most so many rows and so many
//! characters, and a reply that says what was left out and how to narrow
//! the question.
//!
//! The first `max_rows` rows are kept; the rest of the result is run to its
//! end only to count it (within the call's time limit), so the reply can
//! say "37 of 1,000 rows". The kept rows are written as Markdown or CSV
//! (pintail-format's lines). When even one row with every column would take
//! too much of the budget, only the first columns that fit are shown, and
//! the others are named. Rows are then added while they fit in `max_chars`.
//! A single long value is cut at [`MAX_VALUE`] characters.

use std::fmt::Write as _;
use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use futures::StreamExt as _;
use pintail_core::{Error, QueryResult, Result};
use pintail_format::{OutputMode, group_digits, text_rows};
use tokio::time::Instant;

/// The longest a single value is shown, in characters.
pub const MAX_VALUE: usize = 400;

/// What is left for the note under a table (counts, names of columns left
/// out, the advice).
const NOTE: usize = 600;

/// How much of a result a reply may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Rows shown at most.
    pub max_rows: usize,
    /// Characters of the reply at most (about four to a token).
    pub max_chars: usize,
}

impl Budget {
    /// What a call gets when it asks for nothing: 100 rows, about 5,000
    /// tokens.
    pub const DEFAULT: Budget = Budget { max_rows: 100, max_chars: 20_000 };
    /// The most a call may ask for unless the server sets otherwise.
    pub const CEILING: Budget = Budget { max_rows: 1_000, max_chars: 100_000 };

    /// The budget of a call that asked for `rows` and `chars`, within
    /// `ceiling`; and a note when it asked for more than that.
    pub fn asked(rows: Option<u64>, chars: Option<u64>, ceiling: Budget) -> (Budget, Option<String>) {
        let pick = |asked: Option<u64>, default: usize, most: usize| {
            let want = asked.map_or(default, |n| usize::try_from(n).unwrap_or(usize::MAX)).max(1);
            (want.min(most), want > most)
        };
        let (max_rows, rows_capped) = pick(rows, Self::DEFAULT.max_rows, ceiling.max_rows);
        let (max_chars, chars_capped) = pick(chars, Self::DEFAULT.max_chars, ceiling.max_chars);
        // room for at least a header, a row and the note
        let max_chars = max_chars.max(NOTE * 2);
        let note = (rows_capped || chars_capped).then(|| {
            format!(
                "(this server returns at most {} rows and {} characters per call)",
                group_digits(ceiling.max_rows as u64),
                group_digits(ceiling.max_chars as u64)
            )
        });
        (Budget { max_rows, max_chars }, note)
    }
}

/// The text format of a table in a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// A GitHub-flavoured Markdown table (the default).
    #[default]
    Markdown,
    /// CSV with a header row: fewer characters for wide or numeric results.
    Csv,
}

impl Format {
    fn mode(self) -> OutputMode {
        match self {
            Format::Markdown => OutputMode::Markdown,
            Format::Csv => OutputMode::Csv,
        }
    }
}

/// The rows a result was read for: the first ones, and how many there
/// were in all.
pub(crate) struct Read {
    pub schema: SchemaRef,
    pub kept: Vec<RecordBatch>,
    /// Rows in the whole result, or at least this many when `counted` is
    /// false (the time limit came first).
    pub total: u64,
    pub counted: bool,
}

/// Reads `result`: its first `max_rows` rows, then (until `deadline`) the
/// number of the rest.
pub(crate) async fn read(mut result: QueryResult, max_rows: usize, deadline: Instant) -> Result<Read> {
    let schema = result.schema();
    let mut kept = Vec::new();
    let mut total: u64 = 0;
    let mut room = max_rows;
    loop {
        let next = if room > 0 {
            // the rows to show must arrive within the limit: the caller's
            // timeout ends the call
            result.next().await
        } else {
            match tokio::time::timeout_at(deadline, result.next()).await {
                Ok(next) => next,
                Err(_) => return Ok(Read { schema, kept, total, counted: false }),
            }
        };
        let Some(batch) = next else { break };
        let batch = batch?;
        total += batch.num_rows() as u64;
        if room > 0 {
            let take = room.min(batch.num_rows());
            kept.push(batch.slice(0, take));
            room -= take;
        }
    }
    Ok(Read { schema, kept, total, counted: true })
}

/// `read` as a table in `format` within `budget`, with a note on what was
/// left out.
pub(crate) fn table(read: &Read, budget: Budget, format: Format) -> Result<String> {
    let batch = arrow::compute::concat_batches(&read.schema, &read.kept).map_err(|e| Error::internal(e.to_string(), None))?;
    let columns = batch.num_columns();
    if columns == 0 {
        return Ok("OK: the statement ran (it returns no rows)".to_owned());
    }
    let room = budget.max_chars.saturating_sub(NOTE);
    let lines = |batch: &RecordBatch| text_rows(format.mode(), batch, MAX_VALUE).ok_or_else(|| Error::internal("no text rows", None));
    // as many columns as let one row take at most half the room
    let fits = |k: usize| -> Result<bool> {
        let first = lines(&project(&batch.slice(0, batch.num_rows().min(1)), k)?)?;
        Ok(first.header.len() + first.rows.first().map_or(0, String::len) <= room / 2)
    };
    let shown_columns = if fits(columns)? {
        columns
    } else {
        // the most that fit, by bisection; at least one
        let (mut fit, mut over) = (1, columns);
        while over - fit > 1 {
            let mid = fit + (over - fit) / 2;
            if fits(mid)? { fit = mid } else { over = mid }
        }
        fit
    };
    let all = lines(&project(&batch, shown_columns)?)?;
    let mut out = all.header.clone();
    let mut shown_rows = 0usize;
    for row in &all.rows {
        if out.len() + 1 + row.len() > room {
            break;
        }
        out.push('\n');
        out.push_str(row);
        shown_rows += 1;
    }
    out.push('\n');
    out.push_str(&note(read, shown_rows, shown_columns, all.cut_values));
    Ok(out)
}

/// The first `k` columns of `batch`.
fn project(batch: &RecordBatch, k: usize) -> Result<RecordBatch> {
    batch.project(&(0..k).collect::<Vec<_>>()).map_err(|e| Error::internal(e.to_string(), None))
}

/// What a table shows and what it left out, and how to narrow.
fn note(read: &Read, rows: usize, columns: usize, cut_values: usize) -> String {
    let all_columns = read.schema.fields().len();
    let total = if read.counted { group_digits(read.total) } else { format!("at least {}", group_digits(read.total)) };
    let rows_left = read.total.saturating_sub(rows as u64);
    let mut parts = Vec::new();
    if rows_left == 0 && read.counted && columns == all_columns {
        parts.push(format!("({} {})", group_digits(read.total), if read.total == 1 { "row" } else { "rows" }));
    } else {
        let shown_columns = if columns < all_columns { format!(" and {columns} of {all_columns} columns") } else { String::new() };
        parts.push(format!("Showing {} of {total} rows{shown_columns}.", group_digits(rows as u64)));
        let mut left = Vec::new();
        if rows_left > 0 || !read.counted {
            let more = if read.counted { "" } else { "at least " };
            left.push(format!("{more}{} rows", group_digits(rows_left)));
        }
        if columns < all_columns {
            let names: Vec<&str> = read.schema.fields()[columns..].iter().map(|f| f.name().as_str()).collect();
            let mut listed = names.iter().take(20).copied().collect::<Vec<_>>().join(", ");
            if names.len() > 20 {
                let _ = write!(listed, ", ... ({} more)", names.len() - 20);
            }
            left.push(format!("{} columns ({listed})", all_columns - columns));
        }
        parts.push(format!("Left out: {}.", left.join(" and ")));
        if !read.counted {
            parts.push("(The time limit came before the rest was counted.)".to_owned());
        }
        let mut advice = Vec::new();
        if rows_left > 0 || !read.counted {
            advice.push("filter with WHERE, add LIMIT, or aggregate with GROUP BY");
        }
        if columns < all_columns {
            advice.push("select fewer columns");
        }
        if advice.is_empty() {
            advice.push("select fewer or shorter columns");
        }
        parts.push(format!("To narrow: {}.", advice.join("; ")));
    }
    if cut_values > 0 {
        parts.push(format!("({cut_values} long values were cut at {MAX_VALUE} characters.)"));
    }
    parts.join(" ")
}

/// Text cut to `max_chars` characters, saying so.
pub(crate) fn text(text: String, max_chars: usize) -> String {
    let shown = max_chars.saturating_sub(NOTE);
    match text.char_indices().nth(shown) {
        None => text,
        Some((end, _)) => {
            let total = text.chars().count();
            format!("{}\n... (cut: {} of {} characters shown)", &text[..end], group_digits(shown as u64), group_digits(total as u64))
        }
    }
}
