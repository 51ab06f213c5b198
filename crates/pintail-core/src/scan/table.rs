//! The table a scan becomes, once its files, format and schema are known.
//!
//! Usually one DataFusion `ListingTable`. A view over listing tables when
//! the scan needs more than DataFusion's listing gives:
//! - locations on different object stores (two globs, a local file and an
//!   `s3://` one): a listing table reads every path through the store of its
//!   first path, so each store gets its own table and the view unions them;
//! - `filename`: a column with each row's file, from DataFusion's
//!   `input_file_name()`, which the file scan replaces by the path of the
//!   file it reads, shown the way the location was written;
//! - `nullstr`: DataFusion's CSV reader honours `null_regex` only while
//!   inferring types, not while reading rows, so the files are read as text
//!   and each column becomes `CAST(nullif(col, nullstr) AS its type)`.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::catalog::view::ViewTable;
use datafusion::common::Column;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::datasource::provider_as_source;
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, cast, lit, when};

use super::location::{ScanUrl, Shown};
use crate::error::{Error, Result, from_datafusion};

/// What the table is made of, besides where its files are.
pub(crate) struct TableParts {
    /// format, extension and partition columns
    pub(crate) listing: ListingOptions,
    /// the columns of the files, with their types
    pub(crate) file_schema: SchemaRef,
    /// CSV text that stands for NULL
    pub(crate) nullstr: Option<String>,
    /// name of the column with each row's file
    pub(crate) filename: Option<String>,
}

/// Builds the table over `urls`.
pub(crate) fn build(urls: Vec<ScanUrl>, parts: &TableParts) -> Result<Arc<dyn TableProvider>> {
    // one group per object store, in scan order (and per way of showing
    // paths, when the `filename` column shows them)
    let mut groups: Vec<(String, Shown, Vec<ListingTableUrl>)> = Vec::new();
    for ScanUrl { url, shown } in urls {
        let store = url.object_store().as_str().to_string();
        let shown = if parts.filename.is_some() { shown } else { Shown::Absolute };
        match groups.iter_mut().find(|(s, sh, _)| *s == store && *sh == shown) {
            Some(group) => group.2.push(url),
            None => groups.push((store, shown, vec![url])),
        }
    }
    if let Some(name) = &parts.filename {
        check_filename(name, parts)?;
    }
    if let ([(_, _, paths)], None, None) = (groups.as_slice(), &parts.nullstr, &parts.filename) {
        return listing_table(paths.clone(), parts.listing.clone(), Arc::clone(&parts.file_schema));
    }

    let mut union: Option<LogicalPlanBuilder> = None;
    for (_, shown, paths) in groups {
        let plan = group_plan(paths, &shown, parts)?;
        union = Some(match union {
            None => LogicalPlanBuilder::from(plan),
            Some(b) => b.union(plan).map_err(|e| from_datafusion(e, None))?,
        });
    }
    let plan = union
        .ok_or_else(|| Error::internal("a scan without locations", None))?
        .build()
        .map_err(|e| from_datafusion(e, None))?;
    Ok(Arc::new(ViewTable::new(plan, None)))
}

fn listing_table(paths: Vec<ListingTableUrl>, listing: ListingOptions, schema: SchemaRef) -> Result<Arc<dyn TableProvider>> {
    let config = ListingTableConfig::new_with_multi_paths(paths)
        .with_listing_options(listing)
        .with_schema(schema);
    Ok(Arc::new(ListingTable::try_new(config).map_err(|e| from_datafusion(e, None))?))
}

/// The plan of one group's listing table: the file columns (typed from
/// text when `nullstr` is given), then `filename`, then partition columns.
fn group_plan(paths: Vec<ListingTableUrl>, shown: &Shown, parts: &TableParts) -> Result<LogicalPlan> {
    use datafusion::functions::expr_fn::nullif;

    let typed = &parts.file_schema;
    let read_schema = if parts.nullstr.is_some() {
        let text: Vec<Field> = typed.fields().iter().map(|f| Field::new(f.name(), DataType::Utf8, true)).collect();
        Arc::new(Schema::new(text))
    } else {
        Arc::clone(typed)
    };
    let partitions = parts.listing.table_partition_cols.clone();
    let table = listing_table(paths, parts.listing.clone(), read_schema)?;
    let column = |name: &str| Expr::Column(Column::from_name(name));
    let mut exprs: Vec<Expr> = typed
        .fields()
        .iter()
        .map(|f| match &parts.nullstr {
            Some(nullstr) => cast(nullif(column(f.name()), lit(nullstr.as_str())), f.data_type().clone()).alias(f.name()),
            None => column(f.name()),
        })
        .collect();
    if let Some(name) = &parts.filename {
        exprs.push(shown_path(shown)?.alias(name));
    }
    exprs.extend(partitions.iter().map(|(name, _)| column(name)));
    LogicalPlanBuilder::scan("files", provider_as_source(table), None)
        .and_then(|b| b.project(exprs))
        .and_then(LogicalPlanBuilder::build)
        .map_err(|e| from_datafusion(e, None))
}

/// The path of the file being read, as [`Shown::path`] shows it, in SQL.
fn shown_path(shown: &Shown) -> Result<Expr> {
    use datafusion::functions::core::expr_fn::input_file_name;
    use datafusion::functions::expr_fn::{concat, starts_with, substr};

    let file = input_file_name();
    match shown {
        Shown::Url(base) => Ok(concat(vec![lit(format!("{base}/")), file])),
        Shown::Absolute => Ok(concat(vec![lit("/"), file])),
        Shown::Relative(cwd) => {
            let after = i64::try_from(cwd.chars().count()).unwrap_or(i64::MAX - 1) + 1;
            when(starts_with(file.clone(), lit(cwd.as_str())), substr(file.clone(), lit(after)))
                .otherwise(concat(vec![lit("/"), file]))
                .map_err(|e| from_datafusion(e, None))
        }
    }
}

fn check_filename(name: &str, parts: &TableParts) -> Result<()> {
    let clash = parts.file_schema.field_with_name(name).is_ok()
        || parts.listing.table_partition_cols.iter().any(|(p, _)| p == name);
    if clash {
        return Err(Error::option("filename", format!("the files already have a column '{name}'"))
            .with_hint("name the file column another way, e.g. filename = 'source_file'"));
    }
    Ok(())
}
