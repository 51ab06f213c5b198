//! Renders Arrow record batches for people and programs.
//!
//! This crate owns the textual shapes of a result: the boxed table the CLI
//! prints by default, and the CSV, TSV, JSON, JSON lines, Markdown and line
//! modes. It knows nothing of SQL or sessions: a [`Renderer`] is fed batches
//! as they stream from a query and writes to any [`std::io::Write`]. The CLI,
//! the MCP server and the WebAssembly build share it, so a result looks the
//! same everywhere.

mod boxed;
mod logfmt;
mod text;
pub mod types;
mod value;

use std::fmt;
use std::io::{self, Write};
use std::str::FromStr;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

pub use boxed::{BoxStyle, group_digits};
pub use logfmt::logfmt;
pub use value::format_cell;

/// How a result is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputMode {
    /// A table drawn with Unicode box characters (the default).
    #[default]
    Box,
    /// A table drawn with ASCII `+`, `-` and `|`.
    Table,
    /// Comma-separated values with a header row.
    Csv,
    /// Tab-separated values with a header row.
    Tsv,
    /// One JSON array of objects.
    Json,
    /// One JSON object per line.
    Jsonl,
    /// A GitHub-flavoured Markdown table.
    Markdown,
    /// One `column = value` line per value, rows separated by a blank line.
    Line,
}

impl OutputMode {
    /// Every mode with its name, in the order `--help` lists them.
    pub const ALL: [(OutputMode, &'static str); 8] = [
        (OutputMode::Box, "box"),
        (OutputMode::Table, "table"),
        (OutputMode::Csv, "csv"),
        (OutputMode::Tsv, "tsv"),
        (OutputMode::Json, "json"),
        (OutputMode::Jsonl, "jsonl"),
        (OutputMode::Markdown, "markdown"),
        (OutputMode::Line, "line"),
    ];

    /// Whether the mode writes nothing until the whole result is in (the
    /// tables, which must see every row to fit and elide them); the others
    /// write as batches arrive.
    pub fn writes_at_end(self) -> bool {
        matches!(self, Self::Box | Self::Table)
    }

    /// The mode's name as written on the command line.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(mode, _)| *mode == self)
            .map_or("box", |(_, name)| name)
    }
}

impl fmt::Display for OutputMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The error for a mode name that is not one of [`OutputMode::ALL`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownMode(pub String);

impl fmt::Display for UnknownMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<_> = OutputMode::ALL.iter().map(|(_, n)| *n).collect();
        write!(f, "unknown output mode '{}' (expected one of: {})", self.0, names.join(", "))
    }
}

impl std::error::Error for UnknownMode {}

impl FromStr for OutputMode {
    type Err = UnknownMode;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        let lower = match lower.as_str() {
            "duckbox" => "box",
            "ascii" => "table",
            "md" => "markdown",
            "ndjson" => "jsonl",
            "tabs" => "tsv",
            other => other,
        };
        OutputMode::ALL
            .iter()
            .find(|(_, name)| *name == lower)
            .map(|(mode, _)| *mode)
            .ok_or_else(|| UnknownMode(s.to_string()))
    }
}

/// Limits for the table modes. Text modes (CSV, JSON, ...) write every row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableLimits {
    /// Rows shown before the middle of a long result is elided; 0 shows all.
    pub max_rows: usize,
    /// Width in terminal columns the table must fit in; `None` is unbounded.
    pub max_width: Option<usize>,
    /// Widest a single column may be before its values are cut with `…`.
    pub max_column_width: usize,
}

impl Default for TableLimits {
    fn default() -> Self {
        Self {
            max_rows: 40,
            max_width: None,
            max_column_width: 50,
        }
    }
}

/// Takes a result batch by batch and writes it in one [`OutputMode`].
pub trait Renderer {
    /// Adds one batch of the result.
    fn push(&mut self, batch: &RecordBatch) -> io::Result<()>;
    /// Writes whatever is still held and ends the output.
    fn finish(self: Box<Self>) -> io::Result<()>;
}

/// Makes the renderer for `mode` that writes a result of `schema` to `out`.
pub fn renderer<'w>(
    mode: OutputMode,
    schema: SchemaRef,
    out: Box<dyn Write + 'w>,
    limits: TableLimits,
) -> Box<dyn Renderer + 'w> {
    match mode {
        OutputMode::Box => Box::new(boxed::BoxRenderer::new(schema, out, limits, BoxStyle::Unicode)),
        OutputMode::Table => Box::new(boxed::BoxRenderer::new(schema, out, limits, BoxStyle::Ascii)),
        OutputMode::Csv => Box::new(text::DelimitedRenderer::new(&schema, out, b',')),
        OutputMode::Tsv => Box::new(text::DelimitedRenderer::new(&schema, out, b'\t')),
        OutputMode::Json => Box::new(text::JsonRenderer::new(out, false)),
        OutputMode::Jsonl => Box::new(text::JsonRenderer::new(out, true)),
        OutputMode::Markdown => Box::new(text::MarkdownRenderer::new(&schema, out)),
        OutputMode::Line => Box::new(text::LineRenderer::new(&schema, out)),
    }
}

/// A batch as text lines of `mode`, for a caller that fits a result into
/// a budget line by line (the MCP server): the header, and one line per
/// row, each value cut to `max_value` characters (ending in `…`). Markdown,
/// CSV and TSV only; a value's line breaks stay inside its line (`<br>` in
/// Markdown, quoted in CSV).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextRows {
    /// The header: column names (and, in Markdown, the rule under them).
    pub header: String,
    /// Each row's line, without a line break.
    pub rows: Vec<String>,
    /// How many values were cut to `max_value` characters.
    pub cut_values: usize,
}

/// [`TextRows`] of `batch` in `mode`; `None` for modes other than
/// Markdown, CSV and TSV.
pub fn text_rows(mode: OutputMode, batch: &RecordBatch, max_value: usize) -> Option<TextRows> {
    let schema = batch.schema();
    let (null, header) = match mode {
        OutputMode::Markdown => (value::NULL_TEXT, text::markdown_header(&schema)),
        OutputMode::Csv => ("", text::delimited_header(&schema, b',')),
        OutputMode::Tsv => ("", text::delimited_header(&schema, b'\t')),
        _ => return None,
    };
    let opts = value::options(null);
    let f = value::RowFormatter::new(batch.columns(), &opts);
    let cut = std::cell::Cell::new(0);
    let rows = (0..batch.num_rows())
        .map(|row| {
            let cell = |c: usize| {
                f.cell(c, row).map(|v| match v.char_indices().nth(max_value) {
                    Some((end, _)) => {
                        cut.set(cut.get() + 1);
                        format!("{}…", &v[..end])
                    }
                    None => v,
                })
            };
            match mode {
                OutputMode::Markdown => text::markdown_row(cell, batch.num_columns()),
                OutputMode::Tsv => text::delimited_row(cell, batch.num_columns(), b'\t'),
                _ => text::delimited_row(cell, batch.num_columns(), b','),
            }
        })
        .collect();
    Some(TextRows { header, rows, cut_values: cut.get() })
}

/// Renders whole batches to a string; handy for tests and small results.
pub fn render_to_string(
    mode: OutputMode,
    schema: SchemaRef,
    batches: &[RecordBatch],
    limits: TableLimits,
) -> io::Result<String> {
    let mut buf = Vec::new();
    {
        let mut r = renderer(mode, schema, Box::new(&mut buf), limits);
        for b in batches {
            r.push(b)?;
        }
        r.finish()?;
    }
    String::from_utf8(buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_names_round_trip() {
        for (mode, name) in OutputMode::ALL {
            assert_eq!(name.parse::<OutputMode>(), Ok(mode));
            assert_eq!(mode.to_string(), name);
        }
        assert_eq!("MD".parse::<OutputMode>(), Ok(OutputMode::Markdown));
        let err = "xml".parse::<OutputMode>().unwrap_err();
        assert!(err.to_string().contains("unknown output mode 'xml'"));
    }
}
