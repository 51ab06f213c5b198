//! The boxed table: column names with their types under them, numbers
//! aligned right, the middle of long results elided, wide results fitted to
//! the terminal by hiding middle columns.
//!
//! Rows are held as (batch, index) pairs, never formatted until the end, so
//! a result of any length costs only the first and last `max_rows / 2` rows.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io::{self, Write};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use crate::types::{is_numeric, short_type_name};
use crate::value::{NULL_TEXT, RowFormatter, options};
use crate::{Renderer, TableLimits};

/// The characters a table is drawn with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoxStyle {
    /// `┌─┬─┐` and friends.
    Unicode,
    /// `+-+` and `|`.
    Ascii,
}

struct Glyphs {
    h: &'static str,
    v: &'static str,
    top: [&'static str; 3],
    mid: [&'static str; 3],
    bottom: [&'static str; 3],
    /// the junction where the footer row closes the columns
    close: [&'static str; 3],
    dot: &'static str,
    more: &'static str,
}

const UNICODE: Glyphs = Glyphs {
    h: "─",
    v: "│",
    top: ["┌", "┬", "┐"],
    mid: ["├", "┼", "┤"],
    bottom: ["└", "┴", "┘"],
    close: ["├", "┴", "┤"],
    dot: "·",
    more: "…",
};

const ASCII: Glyphs = Glyphs {
    h: "-",
    v: "|",
    top: ["+", "+", "+"],
    mid: ["+", "+", "+"],
    bottom: ["+", "+", "+"],
    close: ["+", "+", "+"],
    dot: ".",
    more: "...",
};

pub(crate) struct BoxRenderer<'w> {
    schema: SchemaRef,
    out: Box<dyn Write + 'w>,
    limits: TableLimits,
    glyphs: &'static Glyphs,
    head: Vec<(RecordBatch, usize)>,
    tail: VecDeque<(RecordBatch, usize)>,
    total: usize,
}

impl<'w> BoxRenderer<'w> {
    pub(crate) fn new(schema: SchemaRef, out: Box<dyn Write + 'w>, limits: TableLimits, style: BoxStyle) -> Self {
        Self {
            schema,
            out,
            limits,
            glyphs: match style {
                BoxStyle::Unicode => &UNICODE,
                BoxStyle::Ascii => &ASCII,
            },
            head: Vec::new(),
            tail: VecDeque::new(),
            total: 0,
        }
    }

    fn head_cap(&self) -> usize {
        if self.limits.max_rows == 0 { usize::MAX } else { self.limits.max_rows }
    }

    fn tail_cap(&self) -> usize {
        if self.limits.max_rows == 0 { 0 } else { self.limits.max_rows / 2 }
    }
}

impl Renderer for BoxRenderer<'_> {
    fn push(&mut self, batch: &RecordBatch) -> io::Result<()> {
        let (head_cap, tail_cap) = (self.head_cap(), self.tail_cap());
        for row in 0..batch.num_rows() {
            if self.head.len() < head_cap {
                self.head.push((batch.clone(), row));
            }
            if tail_cap > 0 {
                if self.tail.len() == tail_cap {
                    self.tail.pop_front();
                }
                self.tail.push_back((batch.clone(), row));
            }
            self.total += 1;
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> io::Result<()> {
        let elided = self.total > self.head.len();
        let shown: Vec<(RecordBatch, usize)> = if elided {
            let keep_head = self.limits.max_rows - self.tail_cap();
            let mut rows: Vec<_> = self.head.drain(..keep_head).collect();
            rows.extend(self.tail.drain(..));
            rows
        } else {
            std::mem::take(&mut self.head)
        };
        let table = Layout::build(&self, &shown, elided);
        let text = table.draw(self.glyphs);
        self.out.write_all(text.as_bytes())?;
        self.out.flush()
    }
}

/// Everything measured and cut, ready to draw.
struct Layout {
    /// indices of the schema's columns that are shown, in order
    columns: Vec<usize>,
    /// where the `…` column goes (an index into `columns`), if columns were hidden
    gap_at: Option<usize>,
    names: Vec<String>,
    types: Vec<String>,
    right: Vec<bool>,
    widths: Vec<usize>,
    /// `None` is the elision row
    rows: Vec<Option<Vec<String>>>,
    footer: Option<String>,
}

impl Layout {
    fn build(r: &BoxRenderer<'_>, shown: &[(RecordBatch, usize)], elided: bool) -> Self {
        let fields = r.schema.fields();
        let ncols = fields.len();
        let max_cell = r.limits.max_column_width.max(3);
        let opts = options(NULL_TEXT);
        let mut cells: Vec<Vec<String>> = Vec::with_capacity(shown.len());
        for (batch, row) in shown {
            let f = RowFormatter::new(batch.columns(), &opts);
            cells.push(
                (0..ncols)
                    .map(|c| truncate(&f.cell(c, *row).unwrap_or_else(|| NULL_TEXT.into()), max_cell))
                    .collect(),
            );
        }
        let names: Vec<String> = fields.iter().map(|f| truncate(f.name(), max_cell)).collect();
        let types: Vec<String> = fields.iter().map(|f| truncate(&short_type_name(f.data_type()), max_cell)).collect();
        let right: Vec<bool> = fields.iter().map(|f| is_numeric(f.data_type())).collect();
        let widths: Vec<usize> = (0..ncols)
            .map(|c| {
                let w = cells.iter().map(|row| row[c].width()).max().unwrap_or(0);
                w.max(names[c].width()).max(types[c].width()).max(1)
            })
            .collect();

        // Fit the width: drop columns from the middle until the table fits.
        let mut columns: Vec<usize> = (0..ncols).collect();
        let mut gap_at = None;
        if let Some(max_width) = r.limits.max_width {
            let more_w = r.glyphs.more.width();
            let table_width = |cols: &[usize], gap: bool| -> usize {
                let inner: usize = cols.iter().map(|&c| widths[c] + 3).sum();
                inner + 1 + if gap { more_w + 3 } else { 0 }
            };
            while columns.len() > 1 && table_width(&columns, gap_at.is_some()) > max_width {
                let mid = columns.len() / 2;
                columns.remove(mid);
                gap_at = Some(mid);
            }
            // the gap goes where the shown column indices jump
            if gap_at.is_some() {
                gap_at = columns.windows(2).position(|w| w[1] != w[0] + 1).map(|i| i + 1);
            }
        }

        let mut rows: Vec<Option<Vec<String>>> = cells.into_iter().map(Some).collect();
        if elided {
            let at = r.limits.max_rows - r.tail_cap();
            rows.insert(at, None);
        }

        let mut notes = Vec::new();
        if elided {
            notes.push(format!("{} rows ({} shown)", group(r.total), group(shown.len())));
        }
        if columns.len() < ncols {
            notes.push(format!("{} columns ({} shown)", group(ncols), group(columns.len())));
        }
        let footer = (!notes.is_empty()).then(|| notes.join("  "));

        Self {
            names: columns.iter().map(|&c| names[c].clone()).collect(),
            types: columns.iter().map(|&c| types[c].clone()).collect(),
            right: columns.iter().map(|&c| right[c]).collect(),
            widths: columns.iter().map(|&c| widths[c]).collect(),
            rows: rows
                .into_iter()
                .map(|row| row.map(|cells| columns.iter().map(|&c| cells[c].clone()).collect()))
                .collect(),
            columns,
            gap_at,
            footer,
        }
    }

    /// The drawn cells of one line: the shown columns, with the gap column spliced in.
    fn splice<T: Clone>(&self, items: Vec<T>, gap: T) -> Vec<T> {
        let mut items = items;
        if let Some(at) = self.gap_at {
            items.insert(at, gap);
        }
        items
    }

    fn draw(&self, g: &Glyphs) -> String {
        let mut widths = self.splice(self.widths.clone(), g.more.width());
        // a narrow table widens its last column so the footer fits
        if let (Some(text), Some(last)) = (&self.footer, widths.len().checked_sub(1)) {
            let inner = widths.iter().map(|w| w + 3).sum::<usize>() - 1;
            let need = text.width() + 2;
            if need > inner {
                widths[last] += need - inner;
            }
        }
        let border = |[l, m, r]: [&str; 3]| -> String {
            let segs: Vec<String> = widths.iter().map(|w| g.h.repeat(w + 2)).collect();
            format!("{l}{}{r}\n", segs.join(m))
        };
        let line = |cells: Vec<String>, right: &[bool], center: bool| -> String {
            let mut s = String::from(g.v);
            for ((cell, w), r) in cells.iter().zip(&widths).zip(right) {
                let pad = w.saturating_sub(cell.width());
                let (lpad, rpad) = if center {
                    (pad / 2, pad - pad / 2)
                } else if *r {
                    (pad, 0)
                } else {
                    (0, pad)
                };
                s.push(' ');
                s.push_str(&" ".repeat(lpad));
                s.push_str(cell);
                s.push_str(&" ".repeat(rpad));
                s.push(' ');
                s.push_str(g.v);
            }
            s.push('\n');
            s
        };
        let right = self.splice(self.right.clone(), false);
        let mut out = border(g.top);
        out += &line(self.splice(self.names.clone(), g.more.into()), &right, true);
        out += &line(self.splice(self.types.clone(), g.more.into()), &right, true);
        out += &border(g.mid);
        for row in &self.rows {
            match row {
                Some(cells) => out += &line(self.splice(cells.clone(), g.more.into()), &right, false),
                None => {
                    for _ in 0..3 {
                        let dots = vec![g.dot.to_string(); self.columns.len()];
                        out += &line(self.splice(dots, String::new()), &vec![false; right.len()], true);
                    }
                }
            }
        }
        match &self.footer {
            None => out += &border(g.bottom),
            Some(text) => {
                out += &border(g.close);
                let inner = widths.iter().map(|w| w + 3).sum::<usize>() - 1;
                let text = truncate(text, inner.saturating_sub(2).max(1));
                let pad = inner.saturating_sub(text.width() + 2);
                let [l, _, r] = g.bottom;
                let _ = writeln!(out, "{v} {text}{} {v}", " ".repeat(pad), v = g.v);
                let _ = writeln!(out, "{l}{}{r}", g.h.repeat(inner));
            }
        }
        out
    }
}

/// Cuts `s` to at most `max` terminal columns, ending in `…` when cut;
/// newlines and tabs are shown as `\n` and `\t` so rows stay one line.
fn truncate(s: &str, max: usize) -> String {
    let s = if s.contains(['\n', '\r', '\t']) {
        s.replace('\n', "\\n").replace('\r', "\\r").replace('\t', "\\t")
    } else {
        s.to_string()
    };
    if s.width() <= max {
        return s;
    }
    let mut out = String::new();
    let mut w = 0;
    for ch in s.chars() {
        let cw = ch.width().unwrap_or(0);
        if w + cw + 1 > max {
            break;
        }
        out.push(ch);
        w += cw;
    }
    out.push('…');
    out
}

fn group(n: usize) -> String {
    group_digits(u64::try_from(n).unwrap_or(u64::MAX))
}

/// `1234567` as `1,234,567`.
pub fn group_digits(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{OutputMode, render_to_string};
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    fn batch(n: i64) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
        ]));
        let ids = Int64Array::from_iter_values(0..n);
        let names: StringArray = (0..n).map(|i| (i % 3 != 0).then(|| format!("n{i}"))).collect();
        RecordBatch::try_new(schema, vec![Arc::new(ids), Arc::new(names)]).unwrap()
    }

    #[test]
    fn small_result_has_types_and_right_aligned_numbers() {
        let b = batch(3);
        let s = render_to_string(OutputMode::Box, b.schema(), &[b], TableLimits::default()).unwrap();
        assert_eq!(
            s,
            "┌───────┬─────────┐\n\
             │  id   │  name   │\n\
             │ int64 │ varchar │\n\
             ├───────┼─────────┤\n\
             │     0 │ NULL    │\n\
             │     1 │ n1      │\n\
             │     2 │ n2      │\n\
             └───────┴─────────┘\n"
        );
    }

    #[test]
    fn long_result_is_elided_with_counts() {
        let b = batch(1000);
        let limits = TableLimits { max_rows: 4, ..TableLimits::default() };
        let s = render_to_string(OutputMode::Box, b.schema(), &[b.slice(0, 500), b.slice(500, 500)], limits).unwrap();
        assert!(s.contains("│     0 │"), "{s}");
        assert!(s.contains("│     1 │"), "{s}");
        assert!(s.contains("│   998 │"), "{s}");
        assert!(s.contains("│   999 │"), "{s}");
        assert!(!s.contains("│     2 │"), "{s}");
        assert!(s.contains("1,000 rows (4 shown)"), "{s}");
    }

    #[test]
    fn wide_result_hides_middle_columns() {
        let fields: Vec<Field> = (0..20).map(|i| Field::new(format!("column_{i}"), DataType::Int64, false)).collect();
        let schema = Arc::new(Schema::new(fields));
        let cols = (0..20).map(|_| Arc::new(Int64Array::from(vec![1])) as _).collect();
        let b = RecordBatch::try_new(schema.clone(), cols).unwrap();
        let limits = TableLimits { max_width: Some(80), ..TableLimits::default() };
        let s = render_to_string(OutputMode::Box, schema, &[b], limits).unwrap();
        for line in s.lines() {
            assert!(line.width() <= 80, "{line}");
        }
        assert!(s.contains("column_0") && s.contains("column_19") && s.contains('…'), "{s}");
        assert!(s.contains("20 columns"), "{s}");
    }

    #[test]
    fn grouping_and_truncation() {
        assert_eq!(group_digits(0), "0");
        assert_eq!(group_digits(1_234_567), "1,234,567");
        assert_eq!(group_digits(999), "999");
        assert_eq!(group_digits(1000), "1,000");
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("a\nb", 10), "a\\nb");
    }
}
