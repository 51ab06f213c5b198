//! The streaming text modes: CSV/TSV, JSON/JSON lines, Markdown, line.
//!
//! Each writes rows as batches arrive, so memory stays flat however long the
//! result. JSON is arrow-json's writer (nested types and nulls included); the
//! others quote the display text of each value.

use std::io::{self, Write};

use arrow::datatypes::SchemaRef;
use arrow::json::writer::{JsonArray, LineDelimited, WriterBuilder};
use arrow::json::Writer;
use arrow::record_batch::RecordBatch;
use unicode_width::UnicodeWidthStr;

use crate::Renderer;
use crate::types::is_numeric;
use crate::value::{NULL_TEXT, RowFormatter, options};

fn to_io(e: arrow::error::ArrowError) -> io::Error {
    match e {
        arrow::error::ArrowError::IoError(_, err) => err,
        other => io::Error::other(other),
    }
}

/// CSV or TSV with a header row; nulls are empty fields.
pub(crate) struct DelimitedRenderer<'w> {
    out: Box<dyn Write + 'w>,
    delim: u8,
}

impl<'w> DelimitedRenderer<'w> {
    pub(crate) fn new(schema: &SchemaRef, mut out: Box<dyn Write + 'w>, delim: u8) -> Self {
        // a write error here reappears on the first push
        let _ = writeln!(out, "{}", delimited_header(schema, delim));
        Self { out, delim }
    }
}

fn quote(s: &str, delim: u8) -> String {
    let needs = s.contains(delim as char) || s.contains(['"', '\n', '\r']) || s.starts_with(' ') || s.ends_with(' ');
    if needs { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

pub(crate) fn delimited_header(schema: &SchemaRef, delim: u8) -> String {
    let header: Vec<String> = schema.fields().iter().map(|f| quote(f.name(), delim)).collect();
    header.join(&(delim as char).to_string())
}

/// Row `row` of the values `cell` gives (NULL as an empty field).
pub(crate) fn delimited_row(cell: impl Fn(usize) -> Option<String>, columns: usize, delim: u8) -> String {
    let line: Vec<String> = (0..columns).map(|c| cell(c).map(|v| quote(&v, delim)).unwrap_or_default()).collect();
    line.join(&(delim as char).to_string())
}

impl Renderer for DelimitedRenderer<'_> {
    fn push(&mut self, batch: &RecordBatch) -> io::Result<()> {
        let opts = options("");
        let f = RowFormatter::new(batch.columns(), &opts);
        for row in 0..batch.num_rows() {
            writeln!(self.out, "{}", delimited_row(|c| f.cell(c, row), batch.num_columns(), self.delim))?;
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> io::Result<()> {
        self.out.flush()
    }
}

enum JsonWriter<'w> {
    Array(Writer<Box<dyn Write + 'w>, JsonArray>),
    Lines(Writer<Box<dyn Write + 'w>, LineDelimited>),
}

/// A JSON array of objects, or one object per line; nulls are explicit.
pub(crate) struct JsonRenderer<'w> {
    writer: JsonWriter<'w>,
}

impl<'w> JsonRenderer<'w> {
    pub(crate) fn new(out: Box<dyn Write + 'w>, lines: bool) -> Self {
        let b = WriterBuilder::new().with_explicit_nulls(true);
        let writer = if lines {
            JsonWriter::Lines(b.build::<_, LineDelimited>(out))
        } else {
            JsonWriter::Array(b.build::<_, JsonArray>(out))
        };
        Self { writer }
    }
}

impl Renderer for JsonRenderer<'_> {
    fn push(&mut self, batch: &RecordBatch) -> io::Result<()> {
        match &mut self.writer {
            JsonWriter::Array(w) => w.write(batch),
            JsonWriter::Lines(w) => w.write(batch),
        }
        .map_err(to_io)
    }

    fn finish(self: Box<Self>) -> io::Result<()> {
        match self.writer {
            JsonWriter::Array(mut w) => {
                w.finish().map_err(to_io)?;
                let mut out = w.into_inner();
                // arrow writes `[]` only once something was written; an empty
                // result is still a JSON array
                out.write_all(b"\n")?;
                out.flush()
            }
            JsonWriter::Lines(mut w) => {
                w.finish().map_err(to_io)?;
                w.into_inner().flush()
            }
        }
    }
}

/// A GitHub-flavoured Markdown table.
pub(crate) struct MarkdownRenderer<'w> {
    out: Box<dyn Write + 'w>,
}

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', "<br>")
}

impl<'w> MarkdownRenderer<'w> {
    pub(crate) fn new(schema: &SchemaRef, mut out: Box<dyn Write + 'w>) -> Self {
        let _ = writeln!(out, "{}", markdown_header(schema));
        Self { out }
    }
}

/// The header of a Markdown table: names, then the rule (numbers right
/// aligned).
pub(crate) fn markdown_header(schema: &SchemaRef) -> String {
    let names: Vec<String> = schema.fields().iter().map(|f| md_escape(f.name())).collect();
    let rules: Vec<&str> =
        schema.fields().iter().map(|f| if is_numeric(f.data_type()) { "---:" } else { "---" }).collect();
    format!("| {} |\n| {} |", names.join(" | "), rules.join(" | "))
}

/// A Markdown table row of the values `cell` gives.
pub(crate) fn markdown_row(cell: impl Fn(usize) -> Option<String>, columns: usize) -> String {
    let cells: Vec<String> = (0..columns).map(|c| md_escape(&cell(c).unwrap_or_else(|| NULL_TEXT.into()))).collect();
    format!("| {} |", cells.join(" | "))
}

impl Renderer for MarkdownRenderer<'_> {
    fn push(&mut self, batch: &RecordBatch) -> io::Result<()> {
        let opts = options(NULL_TEXT);
        let f = RowFormatter::new(batch.columns(), &opts);
        for row in 0..batch.num_rows() {
            writeln!(self.out, "{}", markdown_row(|c| f.cell(c, row), batch.num_columns()))?;
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> io::Result<()> {
        self.out.flush()
    }
}

/// `name = value` lines, names right-aligned, a blank line between rows.
pub(crate) struct LineRenderer<'w> {
    out: Box<dyn Write + 'w>,
    names: Vec<String>,
    width: usize,
    rows: usize,
}

impl<'w> LineRenderer<'w> {
    pub(crate) fn new(schema: &SchemaRef, out: Box<dyn Write + 'w>) -> Self {
        let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
        let width = names.iter().map(|n| n.width()).max().unwrap_or(0);
        Self { out, names, width, rows: 0 }
    }
}

impl Renderer for LineRenderer<'_> {
    fn push(&mut self, batch: &RecordBatch) -> io::Result<()> {
        let opts = options(NULL_TEXT);
        let f = RowFormatter::new(batch.columns(), &opts);
        for row in 0..batch.num_rows() {
            if self.rows > 0 {
                writeln!(self.out)?;
            }
            for (c, name) in self.names.iter().enumerate() {
                let pad = self.width - name.width();
                let value = f.cell(c, row).unwrap_or_else(|| NULL_TEXT.into());
                writeln!(self.out, "{}{name} = {value}", " ".repeat(pad))?;
            }
            self.rows += 1;
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use crate::{OutputMode, TableLimits, render_to_string};
    use arrow::array::{Float64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use arrow::record_batch::RecordBatch;
    use std::sync::Arc;

    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("x", DataType::Float64, true),
            Field::new("s", DataType::Utf8, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Float64Array::from(vec![Some(1.5), None])),
                Arc::new(StringArray::from(vec![Some("a,\"b\""), Some("p|q")])),
            ],
        )
        .unwrap()
    }

    fn render(mode: OutputMode) -> String {
        let b = batch();
        render_to_string(mode, b.schema(), &[b], TableLimits::default()).unwrap()
    }

    #[test]
    fn csv_quotes_and_leaves_nulls_empty() {
        assert_eq!(render(OutputMode::Csv), "x,s\n1.5,\"a,\"\"b\"\"\"\n,p|q\n");
        assert_eq!(render(OutputMode::Tsv), "x\ts\n1.5\t\"a,\"\"b\"\"\"\n\tp|q\n");
    }

    #[test]
    fn json_has_explicit_nulls() {
        assert_eq!(render(OutputMode::Jsonl), "{\"x\":1.5,\"s\":\"a,\\\"b\\\"\"}\n{\"x\":null,\"s\":\"p|q\"}\n");
        let json = render(OutputMode::Json);
        assert!(json.starts_with("[{\"x\":1.5"), "{json}");
        assert!(json.trim_end().ends_with(']'), "{json}");
    }

    #[test]
    fn markdown_and_line() {
        assert_eq!(
            render(OutputMode::Markdown),
            "| x | s |\n| ---: | --- |\n| 1.5 | a,\"b\" |\n| NULL | p\\|q |\n"
        );
        assert_eq!(render(OutputMode::Line), "x = 1.5\ns = a,\"b\"\n\nx = NULL\ns = p|q\n");
    }

    #[test]
    fn text_rows_are_one_line_each_with_long_values_cut() {
        let rows = crate::text_rows(OutputMode::Markdown, &batch(), 2).expect("markdown");
        assert_eq!(rows.header, "| x | s |\n| ---: | --- |");
        // NULL is no value to cut
        assert_eq!(rows.rows, vec!["| 1.… | a,… |", "| NULL | p\\|… |"]);
        assert_eq!(rows.cut_values, 3);
        let rows = crate::text_rows(OutputMode::Csv, &batch(), 100).expect("csv");
        assert_eq!((rows.header.as_str(), rows.rows.as_slice()), ("x,s", ["1.5,\"a,\"\"b\"\"\"".to_owned(), ",p|q".to_owned()].as_slice()));
        assert_eq!(rows.cut_values, 0);
        assert!(crate::text_rows(OutputMode::Box, &batch(), 100).is_none());
    }
}
