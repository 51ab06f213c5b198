//! Turning a [`ScanRequest`] into a table: which files, which format, which
//! columns.
//!
//! Locations are expanded (`{a,b}` braces, `~`), listed once to learn the
//! format and compression from file names, the `key=value` folders of hive
//! partitioning (with types inferred from their values), and the schema (of
//! the first file, or merged over all files with `union_by_name`). The result
//! is a DataFusion `ListingTable` that does the reading, or a view over
//! several (see `table`); nothing here reads rows.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::datasource::file_format::FileFormat as DFFileFormat;
use datafusion::datasource::file_format::arrow::ArrowFormat;
use datafusion::datasource::file_format::csv::CsvFormat;
use datafusion::datasource::file_format::file_compression_type::FileCompressionType;
use datafusion::datasource::file_format::json::JsonFormat;
use datafusion::datasource::listing::ListingOptions;
use datafusion::execution::context::SessionState;
use datafusion::execution::object_store::ObjectStoreUrl;
use futures::TryStreamExt;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};

use super::location::{self, ScanUrl};
use super::table;
use super::options::{Compression, FileFormat, ScanOptions, ScanRequest};
use crate::error::{Error, Result, from_datafusion};
use crate::stores::Stores;

/// DuckDB's default number of rows sampled to infer CSV column types.
const DEFAULT_CSV_SAMPLE_ROWS: usize = 20_480;

/// Resolves `req` into a table provider that reads its files.
pub(crate) async fn resolve(state: &SessionState, stores: &Stores, req: &ScanRequest) -> Result<Arc<dyn TableProvider>> {
    let opts = &req.options;
    let mut urls = Vec::new();
    for location in &req.locations {
        for pattern in location::expand_braces(location)? {
            let url = location::table_url(state, stores, &pattern, opts)?;
            urls.push((pattern, url));
        }
    }

    // List every location once: format, compression, partitions and schema
    // all come from the file names and the first file.
    let mut files: Vec<(usize, ObjectMeta)> = Vec::new();
    for (i, (pattern, url)) in urls.iter().enumerate() {
        let store = state.runtime_env().object_store(&url.url).map_err(|e| from_datafusion(e, None))?;
        let listed: Vec<ObjectMeta> = url
            .url
            .list_all_files(state, store.as_ref(), "")
            .await
            .map_err(|e| from_datafusion(e, Some(format!("cannot list '{pattern}'"))))?
            .try_collect()
            .await
            .map_err(|e| from_datafusion(e, Some(format!("cannot list '{pattern}'"))))?;
        let before = files.len();
        files.extend(listed.into_iter().filter(|m| !location::is_hidden(m)).map(|m| (i, m)));
        if files.len() == before {
            return Err(location::no_files(pattern));
        }
    }
    files.sort_by(|a, b| a.1.location.cmp(&b.1.location));

    let detected = detect_files(&files.iter().map(|(_, m)| m).collect::<Vec<_>>(), opts, &req.locations)?;
    check_skip(opts, &detected, &req.locations)?;
    let store = state.runtime_env().object_store(&urls[files[0].0].1.url).map_err(|e| from_datafusion(e, None))?;

    let format: Arc<dyn DFFileFormat> = match detected.format {
        FileFormat::Csv => Arc::new(csv_format(state, opts, &detected)),
        FileFormat::Json => {
            let newline = match opts.newline_delimited {
                Some(b) => b,
                None => !starts_with_bracket(store.as_ref(), &files[0].1, detected.compression).await,
            };
            let mut o = state.table_options().json.clone();
            o.schema_infer_max_rec = Some(opts.csv.sample_size.unwrap_or(DEFAULT_CSV_SAMPLE_ROWS));
            Arc::new(
                JsonFormat::default()
                    .with_options(o)
                    .with_newline_delimited(newline)
                    .with_file_compression_type(compression_type(detected.compression)),
            )
        }
        FileFormat::Arrow => Arc::new(ArrowFormat),
        FileFormat::Parquet => parquet_format(state)?,
        FileFormat::Avro => avro_format()?,
    };

    let partitions = hive_partitions(&urls, &files, opts)?;
    let listing = ListingOptions::new(Arc::clone(&format))
        .with_file_extension(detected.extension.clone())
        .with_table_partition_cols(partitions.clone());

    // Schema: the first file's (DuckDB's default), or all files merged.
    let non_empty = files.iter().filter(|(_, m)| m.size > 0);
    let schema_files: Vec<&(usize, ObjectMeta)> =
        if opts.union_by_name { non_empty.collect() } else { non_empty.take(1).collect() };
    let file_schema = if let (FileFormat::Csv, Some(columns)) = (detected.format, &opts.csv.columns) {
        let mut fields = Vec::new();
        for (name, ty) in columns {
            fields.push(Field::new(name, parse_type(state, "columns", ty).await?, true));
        }
        Arc::new(Schema::new(fields))
    } else if schema_files.is_empty() {
        return Err(Error::new(
            crate::ErrorKind::Data,
            format!("every file matching '{}' is empty", req.locations.join("', '")),
        ));
    } else {
        let schema = infer_schema(state, format.as_ref(), &urls, &schema_files, &req.locations).await?;
        let schema = apply_types(state, schema, opts).await?;
        if files.len() > 1 {
            // a column can be missing from some files, so every column may be null
            nullable(&schema)
        } else {
            schema
        }
    };
    check_partition_names(&file_schema, &partitions)?;

    let parts = table::TableParts {
        listing,
        file_schema,
        nullstr: opts.csv.nullstr.clone().filter(|_| detected.format == FileFormat::Csv),
        filename: opts.filename.clone(),
    };
    table::build(urls.into_iter().map(|(_, u)| u).collect(), &parts)
}

/// The schema of `files`, each read through its own store; the schemas of
/// several stores merged.
async fn infer_schema(
    state: &SessionState,
    format: &dyn DFFileFormat,
    urls: &[(String, ScanUrl)],
    files: &[&(usize, ObjectMeta)],
    locations: &[String],
) -> Result<SchemaRef> {
    let mut by_store: Vec<(ObjectStoreUrl, Vec<&(usize, ObjectMeta)>)> = Vec::new();
    for file in files {
        let store_url = urls[file.0].1.url.object_store();
        match by_store.iter_mut().find(|(u, _)| *u == store_url) {
            Some((_, group)) => group.push(file),
            None => by_store.push((store_url, vec![file])),
        }
    }
    let mut schemas = Vec::new();
    for (store_url, group) in by_store {
        let store = state.runtime_env().object_store(&store_url).map_err(|e| from_datafusion(e, None))?;
        let metas: Vec<ObjectMeta> = group.iter().map(|(_, m)| m.clone()).collect();
        let schema = format.infer_schema(state, &store, &metas).await.map_err(|e| {
            let (i, first) = group[0];
            let shown = urls[*i].1.shown.path(first.location.as_ref());
            let e = from_datafusion(e, Some(format!("cannot read the schema of '{shown}'")));
            e.replace_in_message(first.location.as_ref(), &shown)
        })?;
        schemas.push(Arc::unwrap_or_clone(schema));
    }
    Schema::try_merge(schemas).map(Arc::new).map_err(|e| {
        Error::plan(format!("the files of '{}' have columns of different types: {e}", locations.join("', '")))
    })
}

/// `skip` cuts lines from the bytes as stored: CSV only, uncompressed only.
fn check_skip(opts: &ScanOptions, detected: &Detected, locations: &[String]) -> Result<()> {
    if opts.csv.skip == 0 {
        return Ok(());
    }
    let what = locations.join("', '");
    if detected.format != FileFormat::Csv {
        return Err(Error::option("skip", format!("'{what}' is read as {}, and skip is for CSV files", detected.format.name())));
    }
    if detected.compression != Compression::None {
        return Err(Error::new(
            crate::ErrorKind::NotSupported,
            format!("skip cannot be used on compressed files yet ('{what}')"),
        )
        .with_hint("decompress the files first, or use comment = '#' if the leading lines are comments"));
    }
    Ok(())
}

/// A scan's format and how its files are named.
#[derive(Debug)]
struct Detected {
    format: FileFormat,
    compression: Compression,
    /// suffix every file of the scan ends with (`.csv.gz`), or `""`
    extension: String,
    tsv: bool,
}

/// The format and compression a file name implies, and the suffix that says so.
fn detect_name(name: &str) -> (Option<FileFormat>, Compression, String, bool) {
    let lower = name.rsplit('/').next().unwrap_or(name).to_ascii_lowercase();
    let (stem, compression, comp_ext) = [
        (".gz", Compression::Gzip),
        (".gzip", Compression::Gzip),
        (".zst", Compression::Zstd),
        (".zstd", Compression::Zstd),
        (".bz2", Compression::Bzip2),
        (".xz", Compression::Xz),
    ]
    .iter()
    .find_map(|(ext, c)| lower.strip_suffix(ext).map(|s| (s.to_string(), *c, *ext)))
    .unwrap_or((lower.clone(), Compression::None, ""));
    let Some((_, ext)) = stem.rsplit_once('.') else {
        return (None, compression, String::new(), false);
    };
    let format = match ext {
        "parquet" | "parq" | "pq" => Some(FileFormat::Parquet),
        "csv" | "tsv" | "tab" | "txt" | "dat" => Some(FileFormat::Csv),
        "json" | "jsonl" | "ndjson" | "geojson" => Some(FileFormat::Json),
        "arrow" | "feather" | "ipc" | "arrows" => Some(FileFormat::Arrow),
        "avro" => Some(FileFormat::Avro),
        _ => None,
    };
    (format, compression, format!(".{ext}{comp_ext}"), matches!(ext, "tsv" | "tab"))
}

/// What a file name says: format name, compression, extension, tab-separated.
type NameKey = (String, u8, String, bool);

fn detect_files(files: &[&ObjectMeta], opts: &ScanOptions, locations: &[String]) -> Result<Detected> {
    let what = locations.join("', '");
    // (format, compression, extension, tsv) -> (format, compression, how many files)
    let mut seen: BTreeMap<NameKey, (Option<FileFormat>, Compression, usize)> = BTreeMap::new();
    for f in files {
        let (format, compression, ext, tsv) = detect_name(f.location.as_ref());
        let format_key = format.map_or("", FileFormat::name).to_string();
        let entry = seen.entry((format_key, compression as u8, ext, tsv)).or_insert((format, compression, 0));
        entry.2 += 1;
    }
    let known: Vec<_> = seen.iter().filter(|(_, (f, _, _))| f.is_some()).collect();

    if let Some(format) = opts.format {
        // an explicit format reads every file listed, whatever its name
        let compression = opts.compression.unwrap_or_else(|| {
            if seen.len() == 1 { seen.values().next().map_or(Compression::None, |v| v.1) } else { Compression::None }
        });
        let extension = if seen.len() == 1 { seen.keys().next().map(|k| k.2.clone()).unwrap_or_default() } else { String::new() };
        let tsv = seen.keys().all(|k| k.3) && !seen.is_empty();
        return Ok(Detected { format, compression, extension, tsv });
    }
    match known.as_slice() {
        [] => Err(Error::plan(format!("cannot tell the file format of '{what}' from its name"))
            .with_hint("use read_csv, read_parquet, read_json or read_arrow, or pass format = 'csv'")),
        [((_, _, ext, tsv), (Some(format), compression, _))] => Ok(Detected {
            format: *format,
            compression: opts.compression.unwrap_or(*compression),
            extension: ext.clone(),
            tsv: *tsv,
        }),
        many => {
            let exts: Vec<String> = many.iter().map(|((_, _, ext, _), _)| format!("{ext} ({})", ext.trim_start_matches('.'))).collect();
            let formats: std::collections::BTreeSet<&str> =
                many.iter().filter_map(|(_, (f, _, _))| f.map(FileFormat::name)).collect();
            if formats.len() > 1 {
                Err(Error::plan(format!("'{what}' matches files of different formats: {}", exts.join(", ")))
                    .with_hint("narrow the pattern, e.g. 'dir/*.parquet'"))
            } else {
                Err(Error::plan(format!("'{what}' matches files with different extensions or compressions: {}", exts.join(", ")))
                    .with_hint("narrow the pattern so every file is named alike, e.g. 'dir/*.csv.gz'"))
            }
        }
    }
}

fn compression_type(c: Compression) -> FileCompressionType {
    match c {
        Compression::None => FileCompressionType::UNCOMPRESSED,
        Compression::Gzip => FileCompressionType::GZIP,
        Compression::Zstd => FileCompressionType::ZSTD,
        Compression::Bzip2 => FileCompressionType::BZIP2,
        Compression::Xz => FileCompressionType::XZ,
    }
}

fn csv_format(state: &SessionState, opts: &ScanOptions, detected: &Detected) -> CsvFormat {
    let c = &opts.csv;
    let mut o = state.table_options().csv.clone();
    o.has_header = Some(c.header.unwrap_or(true));
    o.delimiter = c.delim.unwrap_or(if detected.tsv { b'\t' } else { b',' });
    o.quote = c.quote.unwrap_or(b'"');
    o.escape = c.escape;
    o.comment = c.comment;
    o.null_value.clone_from(&c.nullstr);
    if let Some(nullstr) = &c.nullstr {
        // DataFusion reads nulls by regex; match the text exactly
        o.null_regex = Some(format!("^{}$", regex_escape(nullstr)));
    }
    o.newlines_in_values = c.newlines_in_values;
    o.schema_infer_max_rec = Some(c.sample_size.unwrap_or(DEFAULT_CSV_SAMPLE_ROWS));
    CsvFormat::default()
        .with_options(o)
        .with_file_compression_type(compression_type(detected.compression))
}

fn regex_escape(s: &str) -> String {
    let mut out = String::new();
    for ch in s.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(ch) {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

#[cfg(feature = "native")]
#[expect(clippy::unnecessary_wraps, reason = "the build without native features returns an error here")]
fn parquet_format(state: &SessionState) -> Result<Arc<dyn DFFileFormat>> {
    use datafusion::datasource::file_format::parquet::ParquetFormat;
    Ok(Arc::new(ParquetFormat::default().with_options(state.table_options().parquet.clone())))
}

#[cfg(not(feature = "native"))]
fn parquet_format(_state: &SessionState) -> Result<Arc<dyn DFFileFormat>> {
    Err(Error::new(crate::ErrorKind::NotSupported, "Parquet is not in this build"))
}

#[cfg(feature = "native")]
#[expect(clippy::unnecessary_wraps, reason = "the build without native features returns an error here")]
fn avro_format() -> Result<Arc<dyn DFFileFormat>> {
    use datafusion::datasource::file_format::avro::AvroFormat;
    Ok(Arc::new(AvroFormat))
}

#[cfg(not(feature = "native"))]
fn avro_format() -> Result<Arc<dyn DFFileFormat>> {
    Err(Error::new(crate::ErrorKind::NotSupported, "Avro is not in this build"))
}

/// Whether a JSON file is one array (`[ {...}, ... ]`) rather than lines.
async fn starts_with_bracket(store: &dyn ObjectStore, file: &ObjectMeta, compression: Compression) -> bool {
    if compression != Compression::None {
        return false;
    }
    let end = file.size.min(4096);
    match store.get_range(&file.location, 0..end).await {
        Ok(bytes) => bytes
            .iter()
            .find(|b| !b.is_ascii_whitespace() && **b != 0xEF && **b != 0xBB && **b != 0xBF)
            .is_some_and(|b| *b == b'['),
        Err(_) => false,
    }
}

/// The partition columns of hive-style paths (`year=2024/month=1/x.parquet`).
fn hive_partitions(
    urls: &[(String, ScanUrl)],
    files: &[(usize, ObjectMeta)],
    opts: &ScanOptions,
) -> Result<Vec<(String, DataType)>> {
    if opts.hive_partitioning == Some(false) {
        return Ok(vec![]);
    }
    let mut keys: Option<Vec<String>> = None;
    let mut values: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (i, meta) in files {
        let url = &urls[*i].1.url;
        let Some(segments) = url.strip_prefix(&meta.location) else {
            continue;
        };
        let segments: Vec<&str> = segments.collect();
        let dirs = &segments[..segments.len().saturating_sub(1)];
        // DataFusion reads partition values from the leading folders only
        let pairs: Vec<(&str, &str)> = dirs.iter().map_while(|s| s.split_once('=')).collect();
        let these: Vec<String> = pairs.iter().map(|(k, _)| (*k).to_string()).collect();
        match &keys {
            None => keys = Some(these),
            Some(k) if *k == these => {}
            Some(k) => {
                if opts.hive_partitioning == Some(true) {
                    return Err(Error::plan(format!(
                        "files have different hive partition folders: [{}] and [{}] (in '{}')",
                        k.join(", "),
                        these.join(", "),
                        meta.location
                    )));
                }
                return Ok(vec![]);
            }
        }
        for (k, v) in pairs {
            values.entry(k.to_string()).or_default().push(v.to_string());
        }
    }
    let keys = keys.unwrap_or_default();
    Ok(keys
        .into_iter()
        .map(|k| {
            let ty = infer_partition_type(values.get(&k).map_or(&[][..], Vec::as_slice));
            (k, ty)
        })
        .collect())
}

/// The narrowest type every partition value parses as: BIGINT, DOUBLE, DATE
/// or VARCHAR (DuckDB's order).
fn infer_partition_type(values: &[String]) -> DataType {
    let decoded: Vec<String> = values
        .iter()
        .map(|v| percent_decode(v))
        .filter(|v| !v.is_empty() && v != "__HIVE_DEFAULT_PARTITION__")
        .collect();
    if decoded.len() < values.len() {
        // a null partition can only be read as text by DataFusion
        return DataType::Utf8;
    }
    if decoded.is_empty() {
        return DataType::Utf8;
    }
    let all = |f: &dyn Fn(&str) -> bool| decoded.iter().all(|v| f(v));
    if all(&|v| v.parse::<i64>().is_ok() && !(v.len() > 1 && v.starts_with('0'))) {
        DataType::Int64
    } else if all(&|v| v.parse::<f64>().is_ok_and(f64::is_finite) && v.contains('.')) {
        DataType::Float64
    } else if all(&is_date) {
        DataType::Date32
    } else {
        DataType::Utf8
    }
}

fn is_date(v: &str) -> bool {
    let b = v.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter().enumerate().all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
        && v[5..7].parse::<u32>().is_ok_and(|m| (1..=12).contains(&m))
        && v[8..10].parse::<u32>().is_ok_and(|d| (1..=31).contains(&d))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| s.to_string())
}

fn check_partition_names(schema: &Schema, partitions: &[(String, DataType)]) -> Result<()> {
    for (name, _) in partitions {
        if schema.field_with_name(name).is_ok() {
            return Err(Error::plan(format!(
                "column '{name}' is both in the files and a hive partition folder ({name}=...)"
            ))
            .with_hint("turn folder columns off with hive_partitioning = false"));
        }
    }
    Ok(())
}

fn nullable(schema: &SchemaRef) -> SchemaRef {
    let fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone().with_nullable(true)).collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// Applies `types = {'col': 'TYPE'}` to an inferred schema.
async fn apply_types(state: &SessionState, schema: SchemaRef, opts: &ScanOptions) -> Result<SchemaRef> {
    if opts.csv.types.is_empty() {
        return Ok(schema);
    }
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    for (name, ty) in &opts.csv.types {
        let ty = parse_type(state, "types", ty).await?;
        let Some(field) = fields.iter_mut().find(|f| f.name() == name) else {
            let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
            let mut e = Error::option("types", format!("no column '{name}' in the file"));
            if let Some(c) = crate::error::closest(name, &names) {
                e = e.with_hint(format!("did you mean '{c}'?"));
            }
            return Err(e);
        };
        *field = field.clone().with_data_type(ty);
    }
    Ok(Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone())))
}

/// Parses SQL type text (`INTEGER`, `DECIMAL(10,2)`) the way DataFusion does.
pub(crate) async fn parse_type(state: &SessionState, option: &str, text: &str) -> Result<DataType> {
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::parser::Parser;
    let bad = || Error::option(option, format!("unknown type '{text}'")).with_hint("use SQL types such as INTEGER, BIGINT, DOUBLE, VARCHAR, DATE, TIMESTAMP");
    // parse first, so only a type (never other SQL) reaches the planner
    let ty = Parser::new(&GenericDialect {})
        .try_with_sql(text)
        .and_then(|mut p| {
            let t = p.parse_data_type()?;
            p.expect_token(&datafusion::sql::sqlparser::tokenizer::Token::EOF)?;
            Ok(t)
        })
        .map_err(|_| bad())?;
    let plan = state
        .create_logical_plan(&format!("SELECT CAST(NULL AS {ty})"))
        .await
        .map_err(|_| bad())?;
    Ok(plan.schema().field(0).data_type().clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(detect_name("x/y.csv.gz").0, Some(FileFormat::Csv));
        assert_eq!(detect_name("x/y.csv.gz").1, Compression::Gzip);
        assert_eq!(detect_name("x/y.csv.gz").2, ".csv.gz");
        assert!(detect_name("x/y.tsv").3);
        assert_eq!(detect_name("y.feather").0, Some(FileFormat::Arrow));
        assert_eq!(detect_name("y").0, None);
    }

    #[test]
    fn partition_types() {
        let s = |v: &[&str]| v.iter().map(|s| (*s).to_string()).collect::<Vec<_>>();
        assert_eq!(infer_partition_type(&s(&["2023", "2024"])), DataType::Int64);
        assert_eq!(infer_partition_type(&s(&["1.5", "2.0"])), DataType::Float64);
        assert_eq!(infer_partition_type(&s(&["2024-01-31"])), DataType::Date32);
        assert_eq!(infer_partition_type(&s(&["EU", "US"])), DataType::Utf8);
        assert_eq!(infer_partition_type(&s(&["007"])), DataType::Utf8);
        assert_eq!(percent_decode("a%20b"), "a b");
    }
}
