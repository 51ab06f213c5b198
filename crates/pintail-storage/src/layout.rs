//! A database's directory: how it is recognised, created and laid out, and
//! the file-system steps that change it, each atomic.
//!
//! ```text
//! my.db/
//!   pintail.json              {"format": "pintail-database", "version": 1}
//!   main/                     a schema: a directory
//!     lineitem/               a table: a Delta Lake table (lineitem/_delta_log/...)
//!     recent.view.json        a view: its SQL, written whole and renamed into place
//!   .trash-<uuid>/            a dropped table or schema on its way out
//! ```
//!
//! Names are stored as written, except that characters outside
//! `[A-Za-z0-9_-]` are percent-encoded, so no name can climb out of its
//! directory (`..`, `/`) or collide with the files above (`.`). Each change
//! to the catalog is one atomic file-system step: `mkdir` for a schema, the
//! Delta log's first commit for a table (written only if absent), a rename
//! for a view, a dropped table or a renamed one. A crash leaves either the
//! old state or the new one; leftovers (a table directory without a commit,
//! trash) are invisible and cleaned up later. This module knows nothing of
//! Delta Lake beyond the name of its log directory.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use pintail_core::{Error, ErrorKind, Result};

/// The file that marks a directory as a Pintail database.
pub const MARKER: &str = "pintail.json";
/// The schema every database has, and unqualified names live in.
pub const DEFAULT_SCHEMA: &str = "main";
const FORMAT: &str = "pintail-database";
const VERSION: u64 = 1;
const VIEW_SUFFIX: &str = ".view.json";
const DELTA_LOG: &str = "_delta_log";

/// A database directory that has been checked (or made) and can be used.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// Opens the database at `path`, creating it if nothing is there (or an
    /// empty directory). Refuses anything else that is not a Pintail
    /// database, and changes nothing in that case.
    pub fn open_or_create(path: &Path) -> Result<Self> {
        let root = absolute(path)?;
        match fs::metadata(&root) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => create(&root)?,
            Err(e) => return Err(io_error(&root, "cannot open the database", &e)),
            Ok(m) if !m.is_dir() => {
                return Err(not_a_database(&root, "it is a file, and a Pintail database is a directory"));
            }
            Ok(_) => {
                if !root.join(MARKER).exists() {
                    let empty = fs::read_dir(&root)
                        .map_err(|e| io_error(&root, "cannot read", &e))?
                        .next()
                        .is_none();
                    if !empty {
                        return Err(not_a_database(&root, &unmarked_reason(&root)));
                    }
                    init(&root)?;
                }
            }
        }
        let layout = Self { root };
        layout.check_marker()?;
        layout.collect_trash();
        Ok(layout)
    }

    /// The database's directory, absolute.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn check_marker(&self) -> Result<()> {
        let path = self.root.join(MARKER);
        let text = fs::read_to_string(&path).map_err(|e| io_error(&path, "cannot read", &e))?;
        let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
            Error::new(ErrorKind::Data, format!("'{}' is damaged: {e}", path.display()))
                .with_hint("this file marks a Pintail database; restore it from a backup")
        })?;
        if value.get("format").and_then(serde_json::Value::as_str) != Some(FORMAT) {
            return Err(Error::new(ErrorKind::Data, format!("'{}' is not a Pintail database marker", path.display())));
        }
        let version = value.get("version").and_then(serde_json::Value::as_u64).unwrap_or(0);
        if version != VERSION {
            return Err(Error::new(
                ErrorKind::NotSupported,
                format!("'{}' is a Pintail database of format version {version}; this Pintail reads version {VERSION}", self.root.display()),
            ));
        }
        Ok(())
    }

    /// Removes what dropped tables and schemas left behind.
    fn collect_trash(&self) {
        let Ok(entries) = fs::read_dir(&self.root) else { return };
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(".trash-") {
                // best effort: another process may be removing it too
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    }

    /// The schemas, sorted.
    pub fn schemas(&self) -> Vec<String> {
        let mut out: Vec<String> = list(&self.root)
            .into_iter()
            .filter(|(_, is_dir)| *is_dir)
            .filter_map(|(name, _)| decode(&name))
            .collect();
        out.sort();
        out
    }

    /// The directory of schema `schema`.
    pub fn schema_dir(&self, schema: &str) -> PathBuf {
        self.root.join(encode(schema))
    }

    /// Whether schema `schema` exists.
    pub fn has_schema(&self, schema: &str) -> bool {
        valid(schema) && self.schema_dir(schema).is_dir()
    }

    /// Creates schema `schema`; `Ok(false)` if it already existed.
    pub fn create_schema(&self, schema: &str) -> Result<bool> {
        check_name("schema", schema)?;
        let dir = self.schema_dir(schema);
        match fs::create_dir(&dir) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(io_error(&dir, "cannot create schema directory", &e)),
        }
    }

    /// Drops schema `schema`. Without `cascade` it must be empty; with it,
    /// its tables and views go too, in one rename.
    pub fn drop_schema(&self, schema: &str, cascade: bool) -> Result<()> {
        let dir = self.schema_dir(schema);
        if !cascade {
            let (tables, views) = (self.tables(schema), self.views(schema));
            if !tables.is_empty() || !views.is_empty() {
                let names: Vec<String> = tables.into_iter().chain(views).collect();
                return Err(Error::plan(format!("schema '{schema}' is not empty: it holds {}", names.join(", ")))
                    .with_hint(format!("drop those first, or DROP SCHEMA {schema} CASCADE")));
            }
        }
        self.trash(&dir)
    }

    /// Moves `path` out of sight in one rename, then removes it.
    fn trash(&self, path: &Path) -> Result<()> {
        if path == self.root || !path.starts_with(&self.root) {
            return Err(Error::internal(format!("refused to drop '{}'", path.display()), None));
        }
        let to = self.root.join(format!(".trash-{}", uuid::Uuid::new_v4()));
        fs::rename(path, &to).map_err(|e| io_error(path, "cannot drop", &e))?;
        // another process opening the database may be clearing trash too
        match fs::remove_dir_all(&to) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_error(&to, "dropped, but cannot remove", &e)),
            _ => Ok(()),
        }
    }

    /// The directory of table `table` in `schema` (whether or not it exists).
    pub fn table_dir(&self, schema: &str, table: &str) -> PathBuf {
        self.schema_dir(schema).join(encode(table))
    }

    /// The tables of `schema`, sorted: directories holding a Delta log with
    /// a first commit (or a checkpoint).
    pub fn tables(&self, schema: &str) -> Vec<String> {
        let dir = self.schema_dir(schema);
        let mut out: Vec<String> = list(&dir)
            .into_iter()
            .filter(|(name, is_dir)| *is_dir && is_table(&dir.join(name)))
            .filter_map(|(name, _)| decode(&name))
            .collect();
        out.sort();
        out
    }

    /// Whether table `table` exists in `schema`.
    pub fn has_table(&self, schema: &str, table: &str) -> bool {
        valid(schema) && valid(table) && is_table(&self.table_dir(schema, table))
    }

    /// Drops table `table`: one rename takes it out of the schema.
    pub fn drop_table(&self, schema: &str, table: &str) -> Result<()> {
        self.trash(&self.table_dir(schema, table))
    }

    /// Renames a table (within its schema or to another one). Refuses if
    /// the new name is taken.
    pub fn rename_table(&self, schema: &str, table: &str, to_schema: &str, to: &str) -> Result<()> {
        check_name("table", to)?;
        if !self.has_schema(to_schema) {
            return Err(Error::plan(format!("cannot rename '{table}': schema '{to_schema}' does not exist")));
        }
        let from = self.table_dir(schema, table);
        let dest = self.table_dir(to_schema, to);
        if self.has_table(to_schema, to) || self.view_path(to_schema, to).exists() {
            return Err(Error::plan(format!("cannot rename '{table}' to '{to}': '{to}' already exists")));
        }
        // a directory left by a create that crashed before its first commit
        // holds no table; rename(2) replaces it only if it is empty, so
        // clear it first
        if dest.is_dir() {
            self.trash(&dest)?;
        }
        fs::rename(&from, &dest).map_err(|e| io_error(&from, "cannot rename", &e))
    }

    fn view_path(&self, schema: &str, view: &str) -> PathBuf {
        self.schema_dir(schema).join(format!("{}{VIEW_SUFFIX}", encode(view)))
    }

    /// The views of `schema`, sorted.
    pub fn views(&self, schema: &str) -> Vec<String> {
        let mut out: Vec<String> = list(&self.schema_dir(schema))
            .into_iter()
            .filter(|(_, is_dir)| !*is_dir)
            .filter_map(|(name, _)| name.strip_suffix(VIEW_SUFFIX).and_then(decode))
            .collect();
        out.sort();
        out
    }

    /// Whether view `view` exists in `schema`.
    pub fn has_view(&self, schema: &str, view: &str) -> bool {
        valid(schema) && valid(view) && self.view_path(schema, view).is_file()
    }

    /// The query of view `view` (what follows `AS`, with any column list
    /// applied), if there is such a view.
    pub fn view_query(&self, schema: &str, view: &str) -> Result<Option<String>> {
        let path = self.view_path(schema, view);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error(&path, "cannot read view", &e)),
        };
        let value: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| Error::new(ErrorKind::Data, format!("view '{view}' is damaged ('{}'): {e}", path.display())))?;
        match value.get("query").and_then(serde_json::Value::as_str) {
            Some(sql) => Ok(Some(sql.to_string())),
            None => Err(Error::new(ErrorKind::Data, format!("view '{view}' is damaged ('{}'): no \"query\"", path.display()))),
        }
    }

    /// Stores view `view`: `sql` is the statement that made it, `query` the
    /// query to plan. Written whole to a temporary file, then moved into
    /// place in one step. Without `replace`, an existing view is an error.
    pub fn write_view(&self, schema: &str, view: &str, sql: &str, query: &str, replace: bool) -> Result<()> {
        check_name("view", view)?;
        let path = self.view_path(schema, view);
        let dir = self.schema_dir(schema);
        let tmp = dir.join(format!(".view-{}.tmp", uuid::Uuid::new_v4()));
        let body = serde_json::json!({ "sql": sql, "query": query }).to_string();
        write_synced(&tmp, body.as_bytes()).map_err(|e| io_error(&tmp, "cannot write view", &e))?;
        let placed = if replace {
            fs::rename(&tmp, &path)
        } else {
            // a hard link fails if the name is taken: no check-then-write race
            let linked = fs::hard_link(&tmp, &path);
            let _ = fs::remove_file(&tmp);
            linked
        };
        match placed {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let _ = fs::remove_file(&tmp);
                Err(Error::plan(format!("view '{view}' already exists"))
                    .with_hint("use CREATE OR REPLACE VIEW to change it"))
            }
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                Err(io_error(&path, "cannot write view", &e))
            }
        }
    }

    /// Removes view `view`; `Ok(false)` if there was none.
    pub fn drop_view(&self, schema: &str, view: &str) -> Result<bool> {
        let path = self.view_path(schema, view);
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_error(&path, "cannot drop view", &e)),
        }
    }
}

/// Names longer than this (once encoded) are refused: file systems allow
/// 255 bytes per name, and views add a suffix.
const MAX_ENCODED: usize = 200;

/// Whether `name` can name a schema, table or view.
fn valid(name: &str) -> bool {
    !name.is_empty() && encode(name).len() <= MAX_ENCODED
}

/// An error unless `name` can name a `what`.
pub fn check_name(what: &str, name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::plan(format!("a {what} needs a name: \"\" is empty")));
    }
    if !valid(name) {
        return Err(Error::plan(format!("the {what} name '{name}' is too long")).with_hint("keep names under about 60 characters"));
    }
    Ok(())
}

/// Whether `dir` holds a Delta table with at least one commit.
fn is_table(dir: &Path) -> bool {
    let log = dir.join(DELTA_LOG);
    log.join("00000000000000000000.json").exists() || log.join("_last_checkpoint").exists()
}

fn create(root: &Path) -> Result<()> {
    let parent = root.parent().unwrap_or(Path::new("."));
    if !parent.as_os_str().is_empty() && !parent.is_dir() {
        return Err(Error::io(format!(
            "cannot create database '{}': directory '{}' does not exist",
            root.display(),
            parent.display()
        )));
    }
    // build it under a temporary name and rename it into place, so no one
    // ever sees a half-made database
    let name = root.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = parent.join(format!(".{name}.creating-{}", uuid::Uuid::new_v4()));
    fs::create_dir(&tmp).map_err(|e| io_error(&tmp, "cannot create database", &e))?;
    let made = init(&tmp).and_then(|()| match fs::rename(&tmp, root) {
        Ok(()) => Ok(()),
        // another process created it first: use theirs
        Err(_) if root.join(MARKER).exists() => {
            let _ = fs::remove_dir_all(&tmp);
            Ok(())
        }
        Err(e) => Err(io_error(root, "cannot create database", &e)),
    });
    if made.is_err() {
        let _ = fs::remove_dir_all(&tmp);
    }
    made
}

/// Writes the marker and the default schema into an empty directory.
fn init(dir: &Path) -> Result<()> {
    let schema = dir.join(DEFAULT_SCHEMA);
    match fs::create_dir(&schema) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io_error(&schema, "cannot create", &e)),
    }
    let marker = serde_json::json!({ "format": FORMAT, "version": VERSION }).to_string();
    let tmp = dir.join(format!(".{MARKER}.{}", uuid::Uuid::new_v4()));
    write_synced(&tmp, marker.as_bytes()).map_err(|e| io_error(&tmp, "cannot write", &e))?;
    let linked = fs::hard_link(&tmp, dir.join(MARKER));
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(io_error(&dir.join(MARKER), "cannot write", &e)),
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut f = fs::File::create_new(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

fn unmarked_reason(root: &Path) -> String {
    if root.join(DELTA_LOG).is_dir() {
        return format!(
            "it is a Delta table, not a database (no {MARKER}); read it with SELECT * FROM delta_scan('{}')",
            root.display()
        );
    }
    format!("it is a directory with other files in it and no {MARKER}")
}

fn not_a_database(root: &Path, reason: &str) -> Error {
    Error::new(ErrorKind::InvalidOption, format!("'{}' is not a Pintail database: {reason}", root.display()))
        .with_hint("give a new path (or an empty directory) to create a database there; files can be queried in place with FROM 'path/*.parquet'")
}

fn io_error(path: &Path, what: &str, e: &io::Error) -> Error {
    Error::io(format!("{what} '{}': {e}", path.display()))
}

fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).map_err(|e| io_error(path, "cannot resolve", &e))
}

/// Entries of `dir` that are not hidden, with whether each is a directory.
fn list(dir: &Path) -> Vec<(String, bool)> {
    let Ok(entries) = fs::read_dir(dir) else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            if name.starts_with('.') {
                return None;
            }
            let is_dir = e.file_type().ok()?.is_dir();
            Some((name, is_dir))
        })
        .collect()
}

/// A name as a file name: `[A-Za-z0-9_-]` kept, every other byte as `%XX`.
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            out.push(char::from(b));
        } else {
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
    out
}

/// The name a file name stands for; `None` if it is not one [`encode`] makes.
pub fn decode(file: &str) -> Option<String> {
    let bytes = file.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' => {
                out.push(b);
                i += 1;
            }
            _ => return None,
        }
    }
    String::from_utf8(out).ok().filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_stay_in_their_directory() {
        for name in ["lineitem", "My Table", "../etc", "a/b", "x.view.json", "ünï", "%41"] {
            let file = encode(name);
            assert!(!file.contains('/') && !file.contains('.'), "{file}");
            assert_eq!(decode(&file).as_deref(), Some(name));
        }
        assert_eq!(decode("a.b"), None);
        assert_eq!(decode("%4"), None);
    }

    #[test]
    fn refuses_what_is_not_a_database() {
        let dir = tempfile::tempdir().unwrap();
        let other = dir.path().join("other");
        fs::create_dir(&other).unwrap();
        fs::write(other.join("data.csv"), "a\n1\n").unwrap();
        let e = Layout::open_or_create(&other).unwrap_err();
        assert!(e.message().contains("is not a Pintail database"), "{e}");
        assert_eq!(fs::read_dir(&other).unwrap().count(), 1, "nothing was changed");

        let file = dir.path().join("file.db");
        fs::write(&file, "x").unwrap();
        assert!(Layout::open_or_create(&file).unwrap_err().message().contains("it is a file"));

        let made = Layout::open_or_create(&dir.path().join("new.db")).unwrap();
        assert_eq!(made.schemas(), vec!["main"]);
        fs::write(made.root().join(MARKER), "{").unwrap();
        assert!(Layout::open_or_create(made.root()).unwrap_err().message().contains("is damaged"));
    }
}
