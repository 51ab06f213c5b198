//! What there is to query: the session's tables and views, and the data
//! files under the allowed local roots, for `list_tables` and the
//! resources.
//!
//! Row counts are given where they are cheap: a table's `count(*)`, which
//! Delta and in-memory tables answer from their statistics (given up after
//! [`COUNT_TIME`]), and a Parquet file's footer. Views and other files are
//! not run to count them.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pintail_core::datafusion::datasource::TableType;
use pintail_core::datafusion::parquet::file::reader::{FileReader as _, SerializedFileReader};
use pintail_core::{MEMORY_CATALOG, MEMORY_SCHEMA, Result, Session, TableInfo};
use pintail_format::group_digits;

/// How long a table's row count may take.
const COUNT_TIME: Duration = Duration::from_millis(500);

/// Data files listed at most.
const MAX_FILES: usize = 200;

/// Directory entries looked at, at most, under each root (a root may be a
/// home directory).
const MAX_ENTRIES: usize = 50_000;

/// How deep below a root files are looked for.
const MAX_DEPTH: usize = 4;

/// The file endings Pintail reads, and the format each is.
const FORMATS: [(&str, &str); 14] = [
    (".parquet", "parquet"),
    (".csv", "csv"),
    (".csv.gz", "csv"),
    (".csv.zst", "csv"),
    (".tsv", "csv"),
    (".json", "json"),
    (".jsonl", "json"),
    (".ndjson", "json"),
    (".json.gz", "json"),
    (".jsonl.gz", "json"),
    (".arrow", "arrow"),
    (".feather", "arrow"),
    (".ipc", "arrow"),
    (".avro", "avro"),
];

/// A table's name as SQL refers to it from the session's current schema:
/// unqualified there, qualified elsewhere.
pub(crate) fn sql_name(session: &Session, t: &TableInfo) -> String {
    let (catalog, schema) = session.current_schema();
    let quote = |s: &str| {
        if s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') && !s.starts_with(|c: char| c.is_ascii_digit()) {
            s.to_owned()
        } else {
            format!("\"{}\"", s.replace('"', "\"\""))
        }
    };
    if t.catalog == catalog && t.schema == schema {
        quote(&t.name)
    } else if t.catalog == catalog {
        format!("{}.{}", quote(&t.schema), quote(&t.name))
    } else {
        format!("{}.{}.{}", quote(&t.catalog), quote(&t.schema), quote(&t.name))
    }
}

/// The tables and views an agent may query, without DataFusion's own
/// `information_schema`.
pub(crate) async fn tables(session: &Session) -> Result<Vec<TableInfo>> {
    let mut tables = session.tables().await?;
    tables.retain(|t| t.schema != "information_schema" && t.schema != "pg_catalog");
    Ok(tables)
}

fn kind(t: &TableInfo) -> &'static str {
    match t.table_type {
        TableType::View => "view",
        TableType::Temporary => "temporary table",
        TableType::Base => {
            if t.catalog == MEMORY_CATALOG && t.schema == MEMORY_SCHEMA {
                "table (in memory)"
            } else {
                "table"
            }
        }
    }
}

/// `list_tables`' reply: tables and views, then data files.
pub(crate) async fn list(session: &Session, roots: &[PathBuf], skip: Option<&Path>) -> Result<String> {
    let mut out = String::new();
    let tables = tables(session).await?;
    if tables.is_empty() {
        out.push_str("No tables or views.\n");
    } else {
        out.push_str("## Tables and views\n| name | kind | columns | rows |\n| --- | --- | ---: | ---: |\n");
        for t in &tables {
            let name = sql_name(session, t);
            let rows = if t.table_type == TableType::View { None } else { count(session, &name).await };
            let rows = rows.map_or_else(|| "?".to_owned(), group_digits);
            let _ = writeln!(out, "| {name} | {} | {} | {rows} |", kind(t), t.columns.fields().len());
        }
    }
    let files = files(roots, skip);
    if !files.is_empty() {
        out.push_str("\n## Data files (query with FROM 'path')\n| path | format | size | rows |\n| --- | --- | ---: | ---: |\n");
        for f in files.iter().take(MAX_FILES) {
            let rows = f.rows.map_or_else(|| "?".to_owned(), group_digits);
            let _ = writeln!(out, "| {} | {} | {} | {rows} |", f.shown, f.format, size(f.bytes));
        }
        if files.len() > MAX_FILES {
            let _ = writeln!(out, "\n({MAX_FILES} files listed; there are more: use a glob, FROM 'dir/**/*.parquet')");
        }
    }
    out.push_str("\nRows marked ? are not counted here (count(*) would read the data).");
    Ok(out)
}

/// A table's rows, if its statistics tell them quickly.
async fn count(session: &Session, name: &str) -> Option<u64> {
    let counted = async {
        let result = session.sql(&format!("SELECT count(*) FROM {name}")).await.ok()?;
        let batches = result.collect().await.ok()?;
        let column = batches.first()?.column(0);
        pintail_format::format_cell(column.as_ref(), 0)?.parse::<u64>().ok()
    };
    tokio::time::timeout(COUNT_TIME, counted).await.ok().flatten()
}

/// A data file found under a root.
struct DataFile {
    /// As SQL names it: relative to the current directory where it is
    /// under it.
    shown: String,
    format: &'static str,
    bytes: u64,
    rows: Option<u64>,
}

/// The data files under `roots` (up to one more than [`MAX_FILES`]), not
/// looking inside `skip` (the database, whose files are its tables),
/// hidden directories or Delta tables.
fn files(roots: &[PathBuf], skip: Option<&Path>) -> Vec<DataFile> {
    let cwd = std::env::current_dir().ok();
    let skip = skip.and_then(|p| p.canonicalize().ok());
    let mut found = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for root in roots {
        let Ok(root) = root.canonicalize() else { continue };
        let mut entries = MAX_ENTRIES;
        walk(&root, 0, skip.as_deref(), &mut |path, bytes| {
            entries = entries.saturating_sub(1);
            if found.len() > MAX_FILES || entries == 0 {
                return false;
            }
            let name = path.file_name().map(|n| n.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
            let Some((_, format)) = FORMATS.iter().find(|(end, _)| name.ends_with(end)) else { return true };
            if !seen.insert(path.to_path_buf()) {
                return true;
            }
            let shown = cwd
                .as_deref()
                .and_then(|c| path.strip_prefix(c).ok())
                .unwrap_or(path)
                .to_string_lossy()
                .into_owned();
            let rows = (*format == "parquet").then(|| parquet_rows(path)).flatten();
            found.push(DataFile { shown, format, bytes, rows });
            true
        });
    }
    found.sort_by(|a, b| a.shown.cmp(&b.shown));
    found
}

/// Calls `visit` with each file under `dir` and its size, until it
/// returns false; returns false then.
fn walk(dir: &Path, depth: usize, skip: Option<&Path>, visit: &mut dyn FnMut(&Path, u64) -> bool) -> bool {
    if depth > MAX_DEPTH || Some(dir) == skip || dir.join("_delta_log").is_dir() {
        return true;
    }
    let Ok(entries) = std::fs::read_dir(dir) else { return true };
    let mut entries: Vec<_> = entries.flatten().collect();
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for entry in entries {
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let Ok(meta) = entry.metadata() else { continue };
        let path = entry.path();
        let go_on = if meta.is_dir() {
            walk(&path, depth + 1, skip, visit)
        } else {
            !meta.is_file() || visit(&path, meta.len())
        };
        if !go_on {
            return false;
        }
    }
    true
}

/// A Parquet file's row count, from its footer.
fn parquet_rows(path: &Path) -> Option<u64> {
    let file = std::fs::File::open(path).ok()?;
    let reader = SerializedFileReader::new(file).ok()?;
    u64::try_from(reader.metadata().file_metadata().num_rows()).ok()
}

fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A table's columns as Markdown, for its resource.
pub(crate) fn schema_text(session: &Session, t: &TableInfo) -> String {
    let mut out = format!("# {} ({})\n\n| column | type | nullable |\n| --- | --- | --- |\n", sql_name(session, t), kind(t));
    for f in t.columns.fields() {
        let nullable = if f.is_nullable() { "yes" } else { "no" };
        let _ = writeln!(out, "| {} | {} | {nullable} |", f.name(), pintail_format::types::sql_type_name(f.data_type()));
    }
    out
}
