//! One value of an Arrow array as display text.
//!
//! Owns the text form of values (timestamps with a space as DuckDB prints
//! them, `NULL` for missing values in tables); callers decide the quoting.

use arrow::array::Array;
use arrow::util::display::{ArrayFormatter, FormatOptions};

/// How tables print a missing value.
pub const NULL_TEXT: &str = "NULL";

/// The display options every mode shares; `null` is the text for a null.
pub(crate) fn options(null: &str) -> FormatOptions<'_> {
    FormatOptions::new()
        .with_display_error(true)
        .with_null(null)
        .with_timestamp_format(Some("%Y-%m-%d %H:%M:%S%.f"))
        .with_timestamp_tz_format(Some("%Y-%m-%d %H:%M:%S%.f%:z"))
        .with_datetime_format(Some("%Y-%m-%d %H:%M:%S%.f"))
}

/// Formatters for every column of one batch, made once and reused per row.
pub(crate) struct RowFormatter<'a> {
    columns: Vec<ArrayFormatter<'a>>,
    arrays: Vec<&'a dyn Array>,
}

impl<'a> RowFormatter<'a> {
    pub(crate) fn new(arrays: &'a [std::sync::Arc<dyn Array>], opts: &FormatOptions<'a>) -> Self {
        let arrays: Vec<&dyn Array> = arrays.iter().map(AsRef::as_ref).collect();
        let columns = arrays
            .iter()
            .map(|a| {
                // with_display_error(true) makes construction infallible for
                // every type arrow can display; fall back to the type name.
                ArrayFormatter::try_new(*a, opts).ok()
            })
            .collect::<Option<Vec<_>>>()
            .unwrap_or_default();
        Self { columns, arrays }
    }

    /// The text of column `col` at `row`, or `None` when it is null.
    pub(crate) fn cell(&self, col: usize, row: usize) -> Option<String> {
        if self.arrays[col].is_null(row) {
            return None;
        }
        Some(match self.columns.get(col) {
            Some(f) => f.value(row).to_string(),
            None => format!("<{}>", self.arrays[col].data_type()),
        })
    }
}

/// The text of one value, `None` for null. Slow path for single cells.
pub fn format_cell(array: &dyn Array, row: usize) -> Option<String> {
    if array.is_null(row) {
        return None;
    }
    let opts = options(NULL_TEXT);
    Some(match ArrayFormatter::try_new(array, &opts) {
        Ok(f) => f.value(row).to_string(),
        Err(_) => format!("<{}>", array.data_type()),
    })
}
