//! Options of the file-reading table functions, parsed from SQL.
//!
//! `read_csv('x/*.csv', header = true, delim = ';', columns = {'a': 'INT'})`
//! arrives as sqlparser function arguments; this module turns them into a
//! typed [`ScanOptions`] once, with errors that name the option. Positional
//! and named forms (`name = v`, `name := v`, `name => v`) are all accepted.
//! What the options mean for listing and reading files is in `resolve`.

use datafusion::sql::sqlparser::ast::{
    BinaryOperator, DictionaryField, Expr, FunctionArg, FunctionArgExpr, Ident, UnaryOperator, Value,
};

use crate::error::{Error, Result};

/// A file format Pintail reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileFormat {
    /// Apache Parquet.
    Parquet,
    /// Delimited text (CSV, TSV, ...).
    Csv,
    /// JSON: newline-delimited objects or one array of objects.
    Json,
    /// Arrow IPC file or stream (`.arrow`, `.feather`, `.ipc`).
    Arrow,
    /// Apache Avro.
    Avro,
}

impl FileFormat {
    /// Parses a format name as written in `format = '...'` or `FORMAT ...`.
    pub fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "parquet" | "parq" => Some(Self::Parquet),
            "csv" | "tsv" | "txt" => Some(Self::Csv),
            "json" | "ndjson" | "jsonl" | "newline_delimited" | "array" => Some(Self::Json),
            "arrow" | "feather" | "ipc" | "arrows" => Some(Self::Arrow),
            "avro" => Some(Self::Avro),
            _ => None,
        }
    }

    /// The lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Parquet => "parquet",
            Self::Csv => "csv",
            Self::Json => "json",
            Self::Arrow => "arrow",
            Self::Avro => "avro",
        }
    }
}

/// Compression of a whole text file, from its name or an option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    /// Not compressed.
    None,
    /// `.gz`
    Gzip,
    /// `.zst`
    Zstd,
    /// `.bz2`
    Bzip2,
    /// `.xz`
    Xz,
}

impl Compression {
    /// Parses a compression name (`gzip`, `zstd`, `bz2`, `none`, ...).
    pub fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "none" | "uncompressed" | "" => Some(Self::None),
            "gzip" | "gz" => Some(Self::Gzip),
            "zstd" | "zst" => Some(Self::Zstd),
            "bzip2" | "bz2" => Some(Self::Bzip2),
            "xz" | "lzma" => Some(Self::Xz),
            _ => None,
        }
    }
}

/// Options of `read_csv` that shape how text becomes rows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CsvOptions {
    /// Whether the first line holds column names (default: yes).
    pub header: Option<bool>,
    /// Field separator (default `,`, or tab for `.tsv`).
    pub delim: Option<u8>,
    /// Quote character (default `"`).
    pub quote: Option<u8>,
    /// Escape character inside quotes (default: doubled quotes).
    pub escape: Option<u8>,
    /// Text that stands for NULL (default: an empty field).
    pub nullstr: Option<String>,
    /// Every column's name and SQL type, in file order; no inference.
    pub columns: Option<Vec<(String, String)>>,
    /// SQL types for some columns; the rest are inferred.
    pub types: Vec<(String, String)>,
    /// Lines to skip at the start of each file, before the header.
    pub skip: usize,
    /// Rows read to infer column types (default 20,480, as DuckDB).
    pub sample_size: Option<usize>,
    /// Whether quoted values may span lines.
    pub newlines_in_values: Option<bool>,
    /// Comment character: lines starting with it are skipped.
    pub comment: Option<u8>,
}

/// Settings for the object store a URL lives in, given per query.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreOptions {
    /// Region (`s3://`).
    pub region: Option<String>,
    /// Endpoint URL, for S3-compatible servers (MinIO, R2, moto).
    pub endpoint: Option<String>,
    /// Skip credentials and sign nothing (public buckets).
    pub anonymous: bool,
    /// Access key id (`s3://`).
    pub access_key_id: Option<String>,
    /// Secret access key (`s3://`).
    pub secret_access_key: Option<String>,
    /// Session token (`s3://`).
    pub session_token: Option<String>,
    /// Path-style URLs (`endpoint/bucket/key`) rather than virtual hosts.
    pub url_style_path: Option<bool>,
}

impl StoreOptions {
    /// Whether any option was given.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Everything a file scan can be told.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScanOptions {
    /// The format, when not taken from file names.
    pub format: Option<FileFormat>,
    /// The compression, when not taken from file names.
    pub compression: Option<Compression>,
    /// `Some(true)`: read `key=value` folders as columns; `Some(false)`:
    /// don't; `None`: do when every file has them.
    pub hive_partitioning: Option<bool>,
    /// Merge the schemas of all files by column name.
    pub union_by_name: bool,
    /// Add a column with each row's source file, under this name.
    pub filename: Option<String>,
    /// For JSON: `Some(true)` one object per line, `Some(false)` one array.
    pub newline_delimited: Option<bool>,
    /// CSV options.
    pub csv: CsvOptions,
    /// Object store options.
    pub store: StoreOptions,
}

/// A scan as written in SQL: where, and how.
#[derive(Debug, Clone, PartialEq)]
pub struct ScanRequest {
    /// Paths, globs or URLs.
    pub locations: Vec<String>,
    /// Options.
    pub options: ScanOptions,
    /// The name the table gets when the query gives it no alias.
    pub default_alias: String,
}

/// The table functions that read files, and the format each implies:
/// `None` for other functions, `Some(None)` when file names decide.
#[expect(clippy::option_option, reason = "the two levels mean different things, documented above")]
pub(crate) fn table_function_format(name: &str) -> Option<Option<FileFormat>> {
    Some(match name.to_ascii_lowercase().as_str() {
        "read_parquet" | "parquet_scan" => Some(FileFormat::Parquet),
        "read_csv" | "read_csv_auto" | "csv_scan" => Some(FileFormat::Csv),
        "read_json" | "read_json_auto" | "read_ndjson" | "read_json_objects" => Some(FileFormat::Json),
        "read_arrow" | "read_ipc" | "read_feather" => Some(FileFormat::Arrow),
        "read_avro" => Some(FileFormat::Avro),
        "read_files" | "read_any" => None,
        _ => return None,
    })
}

/// An option value as written in SQL, before it is given a meaning.
#[derive(Debug, Clone, PartialEq)]
enum OptValue {
    Bool(bool),
    Number(String),
    Text(String),
    List(Vec<OptValue>),
    Map(Vec<(String, OptValue)>),
}

impl OptValue {
    fn from_expr(e: &Expr) -> Option<Self> {
        Some(match e {
            Expr::Value(v) => match &v.value {
                Value::Boolean(b) => OptValue::Bool(*b),
                Value::Number(n, _) => OptValue::Number(n.clone()),
                Value::SingleQuotedString(s)
                | Value::DoubleQuotedString(s)
                | Value::EscapedStringLiteral(s)
                | Value::UnicodeStringLiteral(s) => OptValue::Text(s.clone()),
                Value::Null => OptValue::Text(String::new()),
                _ => return None,
            },
            // bare words: `format = parquet`, `compression = gzip`
            Expr::Identifier(Ident { value, .. }) => match value.to_ascii_lowercase().as_str() {
                "true" => OptValue::Bool(true),
                "false" => OptValue::Bool(false),
                _ => OptValue::Text(value.clone()),
            },
            Expr::UnaryOp { op: UnaryOperator::Minus, expr } => match Self::from_expr(expr)? {
                OptValue::Number(n) => OptValue::Number(format!("-{n}")),
                _ => return None,
            },
            Expr::Array(a) => OptValue::List(a.elem.iter().map(Self::from_expr).collect::<Option<_>>()?),
            Expr::Tuple(items) => OptValue::List(items.iter().map(Self::from_expr).collect::<Option<_>>()?),
            Expr::Nested(inner) => Self::from_expr(inner)?,
            Expr::Dictionary(fields) => OptValue::Map(
                fields
                    .iter()
                    .map(|DictionaryField { key, value }| Some((key.value.clone(), Self::from_expr(value)?)))
                    .collect::<Option<_>>()?,
            ),
            Expr::Map(map) => OptValue::Map(
                map.entries
                    .iter()
                    .map(|entry| {
                        let OptValue::Text(k) = Self::from_expr(&entry.key)? else {
                            return None;
                        };
                        Some((k, Self::from_expr(&entry.value)?))
                    })
                    .collect::<Option<_>>()?,
            ),
            _ => return None,
        })
    }

    fn kind(&self) -> &'static str {
        match self {
            OptValue::Bool(_) => "a boolean",
            OptValue::Number(_) => "a number",
            OptValue::Text(_) => "a string",
            OptValue::List(_) => "a list",
            OptValue::Map(_) => "a map",
        }
    }
}

fn expect_bool(name: &str, v: &OptValue) -> Result<bool> {
    match v {
        OptValue::Bool(b) => Ok(*b),
        OptValue::Number(n) if n == "0" || n == "1" => Ok(n == "1"),
        OptValue::Text(t) => match t.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err(Error::option(name, format!("expected true or false, got '{t}'"))),
        },
        other => Err(Error::option(name, format!("expected true or false, got {}", other.kind()))),
    }
}

fn expect_text(name: &str, v: &OptValue) -> Result<String> {
    match v {
        OptValue::Text(t) | OptValue::Number(t) => Ok(t.clone()),
        OptValue::Bool(b) => Ok(b.to_string()),
        other => Err(Error::option(name, format!("expected a string, got {}", other.kind()))),
    }
}

fn expect_usize(name: &str, v: &OptValue) -> Result<usize> {
    let t = expect_text(name, v)?;
    t.parse::<i64>()
        .ok()
        .and_then(|n| if n == -1 { Some(usize::MAX) } else { usize::try_from(n).ok() })
        .ok_or_else(|| Error::option(name, format!("expected a whole number, got '{t}'")))
}

fn expect_char(name: &str, v: &OptValue) -> Result<u8> {
    let t = expect_text(name, v)?;
    let t = match t.as_str() {
        "\\t" => "\t".to_string(),
        _ => t,
    };
    match t.as_bytes() {
        [b] => Ok(*b),
        _ => Err(Error::option(name, format!("expected a single one-byte character, got '{t}'"))),
    }
}

fn expect_type_map(name: &str, v: &OptValue) -> Result<Vec<(String, String)>> {
    match v {
        OptValue::Map(entries) => entries
            .iter()
            .map(|(k, v)| Ok((k.clone(), expect_text(name, v)?)))
            .collect(),
        other => Err(Error::option(
            name,
            format!("expected a map of column names to types like {{'a': 'INTEGER'}}, got {}", other.kind()),
        )),
    }
}

const OPTION_NAMES: &[&str] = &[
    "format",
    "compression",
    "hive_partitioning",
    "union_by_name",
    "filename",
    "header",
    "delim",
    "sep",
    "delimiter",
    "quote",
    "escape",
    "nullstr",
    "null",
    "columns",
    "types",
    "dtypes",
    "column_types",
    "skip",
    "sample_size",
    "new_line_in_values",
    "comment",
    "newline_delimited",
    "region",
    "endpoint",
    "anonymous",
    "access_key_id",
    "secret_access_key",
    "session_token",
    "url_style",
    "auto_detect",
];

impl ScanOptions {
    /// Applies one named option.
    fn set(&mut self, name: &str, v: &OptValue) -> Result<()> {
        let key = name.to_ascii_lowercase();
        match key.as_str() {
            "format" => {
                let t = expect_text(name, v)?;
                self.format = Some(FileFormat::parse(&t).ok_or_else(|| {
                    Error::option(name, format!("unknown format '{t}'"))
                        .with_hint("use parquet, csv, json, arrow or avro")
                })?);
                match t.to_ascii_lowercase().as_str() {
                    "tsv" => self.csv.delim = self.csv.delim.or(Some(b'\t')),
                    "ndjson" | "jsonl" | "newline_delimited" => self.newline_delimited = Some(true),
                    "array" => self.newline_delimited = Some(false),
                    _ => {}
                }
            }
            "compression" => {
                let t = expect_text(name, v)?;
                if t.eq_ignore_ascii_case("auto") || t.eq_ignore_ascii_case("auto_detect") {
                    self.compression = None;
                } else {
                    self.compression = Some(Compression::parse(&t).ok_or_else(|| {
                        Error::option(name, format!("unknown compression '{t}'"))
                            .with_hint("use gzip, zstd, bzip2, xz or none")
                    })?);
                }
            }
            "hive_partitioning" => self.hive_partitioning = Some(expect_bool(name, v)?),
            "union_by_name" => self.union_by_name = expect_bool(name, v)?,
            "filename" => {
                self.filename = match v {
                    OptValue::Text(col) if !col.eq_ignore_ascii_case("true") && !col.eq_ignore_ascii_case("false") => {
                        Some(col.clone())
                    }
                    other => expect_bool(name, other)?.then(|| "filename".to_string()),
                }
            }
            "header" => self.csv.header = Some(expect_bool(name, v)?),
            "delim" | "sep" | "delimiter" => self.csv.delim = Some(expect_char(name, v)?),
            "quote" => self.csv.quote = Some(expect_char(name, v)?),
            "escape" => self.csv.escape = Some(expect_char(name, v)?),
            "comment" => self.csv.comment = Some(expect_char(name, v)?),
            "nullstr" | "null" => {
                self.csv.nullstr = Some(match v {
                    OptValue::List(items) if items.len() == 1 => expect_text(name, &items[0])?,
                    other => expect_text(name, other)?,
                });
            }
            "columns" => self.csv.columns = Some(expect_type_map(name, v)?),
            "types" | "dtypes" | "column_types" => self.csv.types = expect_type_map(name, v)?,
            "skip" => self.csv.skip = expect_usize(name, v)?,
            "sample_size" => self.csv.sample_size = Some(expect_usize(name, v)?),
            "new_line_in_values" => self.csv.newlines_in_values = Some(expect_bool(name, v)?),
            "newline_delimited" => self.newline_delimited = Some(expect_bool(name, v)?),
            "auto_detect" => {
                // types are always detected unless `columns` is given
                expect_bool(name, v)?;
            }
            "region" => self.store.region = Some(expect_text(name, v)?),
            "endpoint" => self.store.endpoint = Some(expect_text(name, v)?),
            "anonymous" => self.store.anonymous = expect_bool(name, v)?,
            "access_key_id" => self.store.access_key_id = Some(expect_text(name, v)?),
            "secret_access_key" => self.store.secret_access_key = Some(expect_text(name, v)?),
            "session_token" => self.store.session_token = Some(expect_text(name, v)?),
            "url_style" => {
                let t = expect_text(name, v)?;
                self.store.url_style_path = match t.to_ascii_lowercase().as_str() {
                    "path" => Some(true),
                    "vhost" | "virtual" => Some(false),
                    _ => return Err(Error::option(name, format!("expected 'path' or 'vhost', got '{t}'"))),
                };
            }
            _ => {
                let names: Vec<String> = OPTION_NAMES.iter().map(|s| (*s).to_string()).collect();
                let mut e = Error::option(name, "unknown option");
                e = match crate::error::closest(name, &names) {
                    Some(c) => e.with_hint(format!("did you mean '{c}'?")),
                    None => e.with_hint(format!("options are: {}", OPTION_NAMES.join(", "))),
                };
                return Err(e);
            }
        }
        Ok(())
    }
}

/// Reads the arguments of a file-reading table function.
pub(crate) fn parse_table_function(
    function: &str,
    format: Option<FileFormat>,
    args: &[FunctionArg],
) -> Result<ScanRequest> {
    let mut options = ScanOptions {
        format,
        ..ScanOptions::default()
    };
    let mut locations: Option<Vec<String>> = None;
    for arg in args {
        let (name, value): (Option<String>, &Expr) = match arg {
            FunctionArg::Named { name, arg: FunctionArgExpr::Expr(e), .. } => (Some(name.value.clone()), e),
            FunctionArg::ExprNamed { name: Expr::Identifier(id), arg: FunctionArgExpr::Expr(e), .. } => {
                (Some(id.value.clone()), e)
            }
            FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::BinaryOp { left, op: BinaryOperator::Eq, right })) => {
                match left.as_ref() {
                    Expr::Identifier(id) => (Some(id.value.clone()), right.as_ref()),
                    _ => return Err(bad_argument(function, arg)),
                }
            }
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => (None, e),
            _ => return Err(bad_argument(function, arg)),
        };
        let parsed = OptValue::from_expr(value).ok_or_else(|| {
            Error::option(
                name.as_deref().unwrap_or(function),
                format!("'{value}' is not a constant; options take literal values"),
            )
        })?;
        match name {
            Some(n) => options.set(&n, &parsed)?,
            None if locations.is_none() => {
                locations = Some(match parsed {
                    OptValue::Text(t) => vec![t],
                    OptValue::List(items) => items
                        .iter()
                        .map(|i| expect_text(function, i))
                        .collect::<Result<Vec<_>>>()?,
                    other => {
                        return Err(Error::plan(format!(
                            "{function} takes a path or a list of paths first, got {}",
                            other.kind()
                        )));
                    }
                });
            }
            None => {
                return Err(Error::plan(format!(
                    "{function}: unexpected extra argument '{value}'"
                ))
                .with_hint("options are named: read_csv('file.csv', header = true)"));
            }
        }
    }
    let locations = locations
        .filter(|l| !l.is_empty())
        .ok_or_else(|| Error::plan(format!("{function} needs a path: {function}('data/*.{}')", format.map_or("csv", FileFormat::name))))?;
    Ok(ScanRequest {
        locations,
        options,
        default_alias: function.to_ascii_lowercase(),
    })
}

fn bad_argument(function: &str, arg: &FunctionArg) -> Error {
    Error::plan(format!("{function}: cannot read argument '{arg}'"))
        .with_hint("pass the path first, then options as name = value")
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::parser::{DFParser, Statement as DFStatement};
    use datafusion::sql::sqlparser::ast::{SetExpr, Statement, TableFactor};

    fn args_of(sql: &str) -> (String, Vec<FunctionArg>) {
        let mut stmts = DFParser::parse_sql(sql).unwrap();
        let DFStatement::Statement(s) = stmts.pop_front().unwrap() else { panic!() };
        let Statement::Query(q) = *s else { panic!() };
        let SetExpr::Select(sel) = *q.body else { panic!() };
        let TableFactor::Table { name, args, .. } = &sel.from[0].relation else { panic!() };
        (name.to_string(), args.clone().unwrap().args)
    }

    #[test]
    fn named_options_in_every_form() {
        let (name, args) = args_of(
            "SELECT * FROM read_csv(['a.csv', 'b.csv'], header = false, delim => ';', quote := '''', \
             columns = {'x': 'INTEGER', 'y': 'VARCHAR'}, sample_size = -1, hive_partitioning = true)",
        );
        let r = parse_table_function(&name, Some(FileFormat::Csv), &args).unwrap();
        assert_eq!(r.locations, vec!["a.csv", "b.csv"]);
        assert_eq!(r.options.csv.header, Some(false));
        assert_eq!(r.options.csv.delim, Some(b';'));
        assert_eq!(r.options.csv.quote, Some(b'\''));
        assert_eq!(
            r.options.csv.columns,
            Some(vec![("x".into(), "INTEGER".into()), ("y".into(), "VARCHAR".into())])
        );
        assert_eq!(r.options.csv.sample_size, Some(usize::MAX));
        assert_eq!(r.options.hive_partitioning, Some(true));
    }

    #[test]
    fn bad_options_are_named() {
        let (name, args) = args_of("SELECT * FROM read_csv('a.csv', hedaer = true)");
        let e = parse_table_function(&name, Some(FileFormat::Csv), &args).unwrap_err();
        assert_eq!(e.to_string(), "invalid option: 'hedaer': unknown option\nhint: did you mean 'header'?");
        let (name, args) = args_of("SELECT * FROM read_csv('a.csv', delim = 'ab')");
        let e = parse_table_function(&name, Some(FileFormat::Csv), &args).unwrap_err();
        assert!(e.to_string().contains("'delim': expected a single one-byte character, got 'ab'"), "{e}");
        let (name, args) = args_of("SELECT * FROM read_parquet()");
        assert!(parse_table_function(&name, Some(FileFormat::Parquet), &args).is_err());
    }
}
