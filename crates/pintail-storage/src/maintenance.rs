//! Looking after tables: `DESCRIBE HISTORY t`, `VACUUM t [RETAIN n HOURS]
//! [DRY RUN]` and `OPTIMIZE t`, run through deltalake's operations.
//!
//! `OPTIMIZE` compacts the small files many small inserts leave into files
//! of deltalake's target size, in one commit that readers see atomically.
//! `VACUUM` deletes data files no version inside the retention period needs,
//! and files no commit ever named (left by a writer that crashed before
//! committing). The retention period is Delta's default, 7 days, unless
//! `RETAIN n HOURS` says otherwise; versions older than it can no longer be
//! read AS OF once their files are gone.

use std::path::Path;
use std::sync::Arc;

use deltalake::DeltaTable;
use deltalake::operations::vacuum::VacuumMode;
use futures::TryStreamExt;
use pintail_core::datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray, UInt64Array};
use pintail_core::datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use pintail_core::datafusion::common::TableReference;
use pintail_core::datafusion::sql::sqlparser::tokenizer::Token;
use pintail_core::{Error, ErrorKind, QueryResult, Result, Session, Statement};

use crate::catalog::Database;
use crate::errors::delta_error;
use crate::extension::Databases;
use crate::table::{delta_state, log_store};

/// The maintenance statement `s` is, if it is one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Maintenance {
    /// `DESCRIBE HISTORY t`.
    History,
    /// `VACUUM t ...`.
    Vacuum,
    /// `OPTIMIZE t`.
    Optimize,
}

impl Maintenance {
    /// Recognises the statement from its first words.
    pub fn of(s: &Statement) -> Option<Self> {
        let word = |i: usize| match s.tokens().get(i).map(|t| &t.token) {
            Some(Token::Word(w)) => w.value.to_ascii_uppercase(),
            _ => String::new(),
        };
        match (word(0).as_str(), word(1).as_str()) {
            // `DESCRIBE history` is a table called history
            ("DESCRIBE" | "DESC", "HISTORY") if s.tokens().len() > 2 => Some(Self::History),
            ("VACUUM", _) => Some(Self::Vacuum),
            ("OPTIMIZE", _) => Some(Self::Optimize),
            _ => None,
        }
    }

    /// Runs it.
    pub async fn run(self, dbs: &Databases, session: &Session, s: &Statement) -> Result<QueryResult> {
        let start = match self {
            Self::History => 2,
            Self::Vacuum | Self::Optimize => 1,
        };
        let tokens: Vec<&Token> = s.tokens().iter().map(|t| &t.token).collect();
        let (name, rest) = table_name(&tokens[start.min(tokens.len())..]).ok_or_else(|| usage(self))?;
        let (db, schema, table) = resolve(dbs, session, &name)?;
        let dir = db.layout().table_dir(&schema, &table);
        let mut delta = DeltaTable::new(log_store(&dir)?);
        delta.load().await.map_err(|e| delta_error(&table, e))?;
        match self {
            Self::History => {
                if !rest.is_empty() {
                    return Err(usage(self));
                }
                history(session, &delta, &table, s.text()).await
            }
            Self::Vacuum => {
                db.check_writable()?;
                let options = VacuumOptions::parse(rest).ok_or_else(|| usage(self))?;
                vacuum(session, delta, &dir, &table, &options, s.text()).await
            }
            Self::Optimize => {
                db.check_writable()?;
                if !rest.is_empty() {
                    return Err(usage(self));
                }
                optimize(session, delta, &table, s.text()).await
            }
        }
    }
}

fn usage(m: Maintenance) -> Error {
    let form = match m {
        Maintenance::History => "DESCRIBE HISTORY table",
        Maintenance::Vacuum => "VACUUM table [RETAIN n HOURS] [DRY RUN]",
        Maintenance::Optimize => "OPTIMIZE table",
    };
    Error::new(ErrorKind::Syntax, format!("expected {form}"))
}

/// A dotted name at the start of `tokens`, and the tokens after it.
fn table_name<'a>(tokens: &'a [&'a Token]) -> Option<(String, &'a [&'a Token])> {
    let mut name = String::new();
    let mut i = 0;
    loop {
        match tokens.get(i) {
            Some(Token::Word(w)) => {
                name.push_str(&w.to_string());
                i += 1;
            }
            _ => return None,
        }
        if tokens.get(i) == Some(&&Token::Period) {
            name.push('.');
            i += 1;
        } else {
            return Some((name, &tokens[i..]));
        }
    }
}

/// The database, schema and table `name` refers to.
pub fn resolve(dbs: &Databases, session: &Session, name: &str) -> Result<(Arc<Database>, String, String)> {
    let (catalog, schema) = session.current_schema();
    let r = TableReference::from(name).resolve(&catalog, &schema);
    let Some(db) = dbs.get(&r.catalog) else {
        return Err(Error::plan(format!("'{name}' is not a table of an attached database"))
            .with_hint("history, VACUUM and OPTIMIZE are for tables in a database (ATTACH 'file.db')"));
    };
    if !db.layout().has_table(&r.schema, &r.table) {
        return Err(Error::plan(format!("table '{}' does not exist in {}.{}", r.table, r.catalog, r.schema)));
    }
    Ok((db, r.schema.to_string(), r.table.to_string()))
}

async fn history(session: &Session, delta: &DeltaTable, table: &str, text: &str) -> Result<QueryResult> {
    let infos: Vec<_> = delta.history(None).try_collect().await.map_err(|e| delta_error(table, e))?;
    let latest = delta.version().unwrap_or_default();
    let n = infos.len();
    let mut versions = Vec::with_capacity(n);
    let (mut times, mut operations, mut parameters, mut metrics, mut engines) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (i, info) in infos.into_iter().enumerate() {
        // newest first
        versions.push(latest as i64 - i as i64);
        times.push(info.in_commit_timestamp.or(info.timestamp));
        operations.push(info.operation);
        parameters.push(info.operation_parameters.map(|p| serde_json::to_string(&p).unwrap_or_default()));
        metrics.push(info.info.get("operationMetrics").map(ToString::to_string));
        engines.push(info.engine_info.or_else(|| info.info.get("clientVersion").and_then(|v| v.as_str().map(ToString::to_string))));
    }
    let schema = Arc::new(Schema::new(vec![
        Field::new("version", DataType::Int64, false),
        Field::new("timestamp", DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())), true),
        Field::new("operation", DataType::Utf8, true),
        Field::new("parameters", DataType::Utf8, true),
        Field::new("metrics", DataType::Utf8, true),
        Field::new("engine", DataType::Utf8, true),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(versions)),
        Arc::new(TimestampMillisecondArray::from(times).with_timezone("UTC")),
        Arc::new(StringArray::from(operations)),
        Arc::new(StringArray::from(parameters)),
        Arc::new(StringArray::from(metrics)),
        Arc::new(StringArray::from(engines)),
    ];
    let batch = RecordBatch::try_new(Arc::clone(&schema), columns)?;
    Ok(session.batches_result(schema, vec![batch], text))
}

struct VacuumOptions {
    retain_hours: Option<u64>,
    dry_run: bool,
}

impl VacuumOptions {
    fn parse(tokens: &[&Token]) -> Option<Self> {
        let mut out = Self {
            retain_hours: None,
            dry_run: false,
        };
        let word = |t: &Token| match t {
            Token::Word(w) => w.value.to_ascii_uppercase(),
            _ => String::new(),
        };
        let mut i = 0;
        while i < tokens.len() {
            match word(tokens[i]).as_str() {
                "RETAIN" => {
                    let Token::Number(n, _) = tokens.get(i + 1)? else { return None };
                    if word(tokens.get(i + 2)?) != "HOURS" {
                        return None;
                    }
                    out.retain_hours = Some(n.parse().ok()?);
                    i += 3;
                }
                "DRY" if word(tokens.get(i + 1)?) == "RUN" => {
                    out.dry_run = true;
                    i += 2;
                }
                _ => return None,
            }
        }
        Some(out)
    }
}

async fn vacuum(
    session: &Session,
    delta: DeltaTable,
    dir: &Path,
    table: &str,
    o: &VacuumOptions,
    text: &str,
) -> Result<QueryResult> {
    let retention = match o.retain_hours {
        None => None,
        Some(h) => Some(
            i64::try_from(h)
                .ok()
                .and_then(chrono::Duration::try_hours)
                .filter(|d| *d <= chrono::Duration::days(365 * 1000))
                .ok_or_else(|| Error::option("RETAIN", format!("{h} hours is too long")))?,
        ),
    };
    // files no commit names are removed only when older than an hour, so
    // the files of another process's INSERT still being written survive a
    // short retention; files dropped by a commit go after the retention
    let full = retention.is_none_or(|d| d >= chrono::Duration::hours(1));
    let builder = |delta: DeltaTable, dry_run: bool| {
        let mode = if full { VacuumMode::Full } else { VacuumMode::Lite };
        let mut b = delta.vacuum().with_mode(mode).with_dry_run(dry_run);
        if let Some(d) = retention {
            // an explicit period is the user's choice, even below Delta's 7 days
            b = b.with_retention_period(d).with_enforce_retention_duration(false);
        }
        b
    };
    // deltalake names every file a removal ever dropped, deleted already or
    // not: count only those still there, and commit nothing if none is
    let (delta, candidates) = builder(delta, true).await.map_err(|e| delta_error(table, e))?;
    let present = candidates
        .files_deleted
        .iter()
        .filter(|f| dir.join(f.strip_prefix("file://").unwrap_or(f)).exists())
        .count() as u64;
    if !o.dry_run && present > 0 {
        builder(delta, false).await.map_err(|e| delta_error(table, e))?;
    }
    let schema = Arc::new(Schema::new(vec![Field::new(
        if o.dry_run { "files_to_delete" } else { "files_deleted" },
        DataType::UInt64,
        false,
    )]));
    let count = present;
    let batch = RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(UInt64Array::from(vec![count])) as ArrayRef])?;
    Ok(session.batches_result(schema, vec![batch], text))
}

async fn optimize(session: &Session, delta: DeltaTable, table: &str, text: &str) -> Result<QueryResult> {
    let state = delta_state(session.context().state());
    let (_, metrics) = delta
        .optimize()
        .with_session_state(state)
        .with_writer_properties(crate::table::writer_properties())
        .await
        .map_err(|e| delta_error(table, e))?;
    let schema = Arc::new(Schema::new(vec![
        Field::new("files_removed", DataType::UInt64, false),
        Field::new("files_added", DataType::UInt64, false),
    ]));
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![
            Arc::new(UInt64Array::from(vec![metrics.num_files_removed])) as ArrayRef,
            Arc::new(UInt64Array::from(vec![metrics.num_files_added])),
        ],
    )?;
    Ok(session.batches_result(schema, vec![batch], text))
}
