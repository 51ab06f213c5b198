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
use datafusion::sql::sqlparser::ast::{
    Ident, ObjectName, ObjectNamePart, TableAlias, TableFactor, VisitMut, VisitorMut,
};

pub use options::{Compression, CsvOptions, FileFormat, ScanOptions, ScanRequest, StoreOptions};
pub(crate) use file_name_rule::FileNameToScan;
pub(crate) use resolve::resolve;

use crate::error::{Error, Result};

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
    pub request: ScanRequest,
}

/// Replaces every file reference in `node` with a placeholder table and
/// returns the scans to resolve. `is_table` tells names of real tables,
/// which a double-quoted name refers to before any file of that name.
pub(crate) fn collect_scans<V: VisitMut>(
    node: &mut V,
    next_id: &mut dyn FnMut() -> u64,
    is_table: &dyn Fn(&str) -> bool,
) -> Result<Vec<CollectedScan>> {
    let mut c = Collector {
        scans: Vec::new(),
        next_id,
        is_table,
    };
    match node.visit(&mut c) {
        ControlFlow::Continue(()) => Ok(c.scans),
        ControlFlow::Break(e) => Err(e),
    }
}

struct Collector<'a> {
    scans: Vec<CollectedScan>,
    next_id: &'a mut dyn FnMut() -> u64,
    is_table: &'a dyn Fn(&str) -> bool,
}

impl Collector<'_> {
    fn request_for(&self, factor: &TableFactor) -> Result<Option<ScanRequest>> {
        let TableFactor::Table { name, args, .. } = factor else {
            return Ok(None);
        };
        let [ObjectNamePart::Identifier(ident)] = name.0.as_slice() else {
            return Ok(None);
        };
        if let Some(args) = args {
            return match options::table_function_format(&ident.value) {
                Some(format) => options::parse_table_function(&ident.value, format, &args.args).map(Some),
                None => Ok(None),
            };
        }
        let is_path = match ident.quote_style {
            Some('\'') => true,
            // DuckDB reads `FROM "data.csv"` as a file when no table has that name
            Some('"' | '`') => looks_like_path(&ident.value) && !(self.is_table)(&ident.value),
            _ => false,
        };
        Ok(is_path.then(|| ScanRequest {
            locations: vec![ident.value.clone()],
            options: ScanOptions::default(),
            default_alias: location::alias_for(&ident.value),
        }))
    }
}

fn looks_like_path(name: &str) -> bool {
    name.contains('/') || name.contains("://") || name.rsplit_once('.').is_some_and(|(_, ext)| !ext.is_empty() && ext.len() <= 8)
}

impl VisitorMut for Collector<'_> {
    type Break = Error;

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<Error> {
        let request = match self.request_for(factor) {
            Ok(Some(r)) => r,
            Ok(None) => return ControlFlow::Continue(()),
            Err(e) => return ControlFlow::Break(e),
        };
        if let TableFactor::Table { name, alias, args, .. } = factor {
            let placeholder = format!("s{}", (self.next_id)());
            *name = ObjectName(vec![
                ObjectNamePart::Identifier(Ident::new(SCAN_CATALOG)),
                ObjectNamePart::Identifier(Ident::new(SCAN_SCHEMA)),
                ObjectNamePart::Identifier(Ident::new(placeholder.clone())),
            ]);
            *args = None;
            if alias.is_none() {
                *alias = Some(TableAlias {
                    explicit: true,
                    name: Ident::with_quote('"', request.default_alias.clone()),
                    columns: vec![],
                    at: None,
                });
            }
            self.scans.push(CollectedScan { placeholder, request });
        }
        ControlFlow::Continue(())
    }
}
