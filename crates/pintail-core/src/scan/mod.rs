//! Files are tables: `FROM 'data/*.parquet'` and `read_csv(...)`.
//!
//! DataFusion plans table functions synchronously and has no named
//! arguments, while reading a file's schema is I/O. So before a statement is
//! planned, [`collect_scans`] walks its syntax tree, takes out every quoted
//! path and file-reading table function, and puts in its place a reference to
//! a hidden table (`__pintail.scans.sN`). The session then resolves each scan
//! (`resolve`) and parks the provider in [`ScanSchema`] while DataFusion plans
//! the statement. The plan keeps the provider; the parking spot is cleared.

mod file_name_rule;
mod location;
mod options;
mod resolve;
mod scan_store;
mod table;

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use datafusion::catalog::{SchemaProvider, TableProvider};
use datafusion::error::Result as DFResult;
use datafusion::common::TableReference;
use datafusion::sql::sqlparser::ast::{
    Expr as AstExpr, FunctionArg, FunctionArgExpr, FunctionArguments, Ident, ObjectName, ObjectNamePart, Query, TableAlias,
    TableFactor, TableVersion, Value, VisitMut, VisitorMut,
};

pub use options::{Compression, CsvOptions, FileFormat, ScanOptions, ScanRequest, StoreOptions};
pub(crate) use file_name_rule::FileNameToScan;
pub(crate) use location::{expand_home, is_url};
pub(crate) use resolve::resolve;

use crate::error::{Error, ErrorKind, Result};

/// The catalog and schema that hold scans while a statement is planned.
pub(crate) const SCAN_CATALOG: &str = "__pintail";
pub(crate) const SCAN_SCHEMA: &str = "scans";

/// Holds resolved scans by placeholder name during planning. Lists no
/// tables, so it never shows in `SHOW TABLES` or `information_schema`.
#[derive(Debug, Default)]
pub(crate) struct ScanSchema {
    tables: Mutex<HashMap<String, Arc<dyn TableProvider>>>,
}

impl ScanSchema {
    pub(crate) fn park(&self, name: String, table: Arc<dyn TableProvider>) {
        self.lock().insert(name, table);
    }

    pub(crate) fn release(&self, name: &str) {
        self.lock().remove(name);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<dyn TableProvider>>> {
        self.tables.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl SchemaProvider for ScanSchema {
    fn table_names(&self) -> Vec<String> {
        vec![]
    }

    async fn table(&self, name: &str) -> DFResult<Option<Arc<dyn TableProvider>>> {
        Ok(self.lock().get(name).cloned())
    }

    fn table_exist(&self, name: &str) -> bool {
        self.lock().contains_key(name)
    }
}

/// A scan taken out of a statement, with the placeholder that replaced it.
#[derive(Debug)]
pub(crate) struct CollectedScan {
    pub placeholder: String,
    pub target: ScanTarget,
}

/// What a placeholder stands for.
#[derive(Debug)]
pub(crate) enum ScanTarget {
    /// Files: a quoted path or a file-reading table function.
    Files(Box<ScanRequest>),
    /// A table read as of a version or a time (`t VERSION AS OF 3`),
    /// resolved by an extension.
    AsOf(TableReference, AsOf),
    /// A table function an extension provides (`delta_scan(...)`).
    Function(String, Vec<FunctionArg>),
    /// A table the statement was run with, by the name it is bound to (a
    /// front end's replacement scan).
    Bound(String),
}

/// Which version of a table a query reads: `VERSION AS OF n` / `AT
/// (VERSION => n)`, or `TIMESTAMP AS OF '...'` / `AT (TIMESTAMP => '...')`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AsOf {
    /// A version number.
    Version(u64),
    /// A point in time, as written (a timestamp literal's text).
    Timestamp(String),
}

impl AsOf {
    fn parse(version: &TableVersion) -> Result<Self> {
        let usage = || {
            Error::new(ErrorKind::Syntax, format!("cannot read table version '{version}'"))
                .with_hint("write VERSION AS OF 3, TIMESTAMP AS OF '2026-01-31 12:00:00', or AT (VERSION => 3)")
        };
        let (is_version, expr) = match version {
            TableVersion::VersionAsOf(e) => (true, e),
            TableVersion::TimestampAsOf(e) | TableVersion::ForSystemTimeAsOf(e) => (false, e),
            TableVersion::Function(AstExpr::Function(f)) if f.name.to_string().eq_ignore_ascii_case("at") => {
                let FunctionArguments::List(list) = &f.args else { return Err(usage()) };
                let [FunctionArg::Named { name, arg: FunctionArgExpr::Expr(e), .. }] = list.args.as_slice() else {
                    return Err(usage());
                };
                match name.value.to_ascii_uppercase().as_str() {
                    "VERSION" => (true, e),
                    "TIMESTAMP" => (false, e),
                    _ => return Err(usage()),
                }
            }
            _ => return Err(usage()),
        };
        let text = match expr {
            AstExpr::Value(v) => match &v.value {
                Value::Number(n, _) if is_version => return n.parse().map(AsOf::Version).map_err(|_| usage()),
                Value::SingleQuotedString(t) if !is_version => t.clone(),
                _ => return Err(usage()),
            },
            AstExpr::TypedString(t) if !is_version => match &t.value.value {
                Value::SingleQuotedString(s) => s.clone(),
                _ => return Err(usage()),
            },
            _ => return Err(usage()),
        };
        Ok(AsOf::Timestamp(text))
    }
}

/// What the collector needs to know of the session.
pub(crate) struct Lookup<'a> {
    /// Whether a name is a table (a double-quoted name refers to a table
    /// before any file of that name).
    pub is_table: &'a dyn Fn(&str) -> bool,
    /// Whether the statement runs with a table bound to a name.
    pub is_bound: &'a dyn Fn(&str) -> bool,
    /// The table functions extensions provide, lower case.
    pub functions: &'a [String],
    /// For a two-part name `a.b` whose `a` is a database rather than a
    /// schema of the current one, the schema to read `b` from (DuckDB's
    /// `db.table`).
    pub database_schema: &'a dyn Fn(&str) -> Option<String>,
}

/// Replaces every file reference, versioned table and extension table
/// function in `node` with a placeholder table and returns the scans to
/// resolve.
pub(crate) fn collect_scans<V: VisitMut>(
    node: &mut V,
    next_id: &mut dyn FnMut() -> u64,
    lookup: &Lookup<'_>,
) -> Result<Vec<CollectedScan>> {
    let mut c = Collector {
        scans: Vec::new(),
        next_id,
        lookup,
        ctes: std::collections::HashSet::new(),
    };
    match node.visit(&mut c) {
        ControlFlow::Continue(()) => Ok(c.scans),
        ControlFlow::Break(e) => Err(e),
    }
}

struct Collector<'a> {
    scans: Vec<CollectedScan>,
    next_id: &'a mut dyn FnMut() -> u64,
    lookup: &'a Lookup<'a>,
    /// The names of the common table expressions seen so far: a bound
    /// table never stands in for one.
    ctes: std::collections::HashSet<String>,
}

impl Collector<'_> {
    /// What `factor` stands for, and the name it gets without an alias.
    fn target_for(&self, factor: &TableFactor) -> Result<Option<(ScanTarget, String)>> {
        let TableFactor::Table { name, args, version, .. } = factor else {
            return Ok(None);
        };
        if let Some(version) = version {
            let as_of = AsOf::parse(version)?;
            let alias = match name.0.last() {
                Some(ObjectNamePart::Identifier(ident)) => normalized(ident),
                other => other.map(ToString::to_string).unwrap_or_default(),
            };
            let reference = TableReference::from(name.to_string());
            return Ok(Some((ScanTarget::AsOf(reference, as_of), alias)));
        }
        let [ObjectNamePart::Identifier(ident)] = name.0.as_slice() else {
            return Ok(None);
        };
        if let Some(args) = args {
            if let Some(format) = options::table_function_format(&ident.value) {
                let request = options::parse_table_function(&ident.value, format, &args.args)?;
                let alias = request.default_alias.clone();
                return Ok(Some((ScanTarget::Files(Box::new(request)), alias)));
            }
            let function = ident.value.to_ascii_lowercase();
            if self.lookup.functions.contains(&function) {
                return Ok(Some((ScanTarget::Function(function.clone(), args.args.clone()), function)));
            }
            return Ok(None);
        }
        // a name no table has, bound by the front end (a Python variable)
        if ident.quote_style != Some('\'')
            && (self.lookup.is_bound)(&ident.value)
            && !self.ctes.contains(&normalized(ident))
            && !(self.lookup.is_table)(&normalized(ident))
        {
            return Ok(Some((ScanTarget::Bound(ident.value.clone()), normalized(ident))));
        }
        let is_path = match ident.quote_style {
            Some('\'') => true,
            // DuckDB reads `FROM "data.csv"` as a file when no table has that name
            Some('"' | '`') => looks_like_path(&ident.value) && !(self.lookup.is_table)(&ident.value),
            _ => false,
        };
        Ok(is_path.then(|| {
            let alias = location::alias_for(&ident.value);
            let request = ScanRequest {
                locations: vec![ident.value.clone()],
                options: ScanOptions::default(),
                default_alias: alias.clone(),
            };
            (ScanTarget::Files(Box::new(request)), alias)
        }))
    }
}

/// An identifier as DataFusion resolves it: unquoted ones in lower case.
fn normalized(ident: &Ident) -> String {
    if ident.quote_style.is_some() {
        ident.value.clone()
    } else {
        ident.value.to_lowercase()
    }
}

fn looks_like_path(name: &str) -> bool {
    name.contains('/') || name.contains("://") || name.rsplit_once('.').is_some_and(|(_, ext)| !ext.is_empty() && ext.len() <= 8)
}

impl VisitorMut for Collector<'_> {
    type Break = Error;

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<Error> {
        if let Some(with) = &query.with {
            self.ctes.extend(with.cte_tables.iter().map(|cte| normalized(&cte.alias.name)));
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<Error> {
        if let TableFactor::Table { name, .. } = factor
            && let [ObjectNamePart::Identifier(db), ObjectNamePart::Identifier(_)] = name.0.as_slice()
            && let Some(schema) = (self.lookup.database_schema)(&normalized(db))
        {
            name.0.insert(1, ObjectNamePart::Identifier(Ident::new(schema)));
        }
        let (target, default_alias) = match self.target_for(factor) {
            Ok(Some(t)) => t,
            Ok(None) => return ControlFlow::Continue(()),
            Err(e) => return ControlFlow::Break(e),
        };
        if let TableFactor::Table {
            name,
            alias,
            args,
            version,
            ..
        } = factor
        {
            let placeholder = format!("s{}", (self.next_id)());
            *name = ObjectName(vec![
                ObjectNamePart::Identifier(Ident::new(SCAN_CATALOG)),
                ObjectNamePart::Identifier(Ident::new(SCAN_SCHEMA)),
                ObjectNamePart::Identifier(Ident::new(placeholder.clone())),
            ]);
            *args = None;
            *version = None;
            if alias.is_none() {
                *alias = Some(TableAlias {
                    explicit: true,
                    name: Ident::with_quote('"', default_alias),
                    columns: vec![],
                    at: None,
                });
            }
            self.scans.push(CollectedScan { placeholder, target });
        }
        ControlFlow::Continue(())
    }
}
