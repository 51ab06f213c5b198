//! The interactive shell: reedline with multi-line SQL (a statement ends at
//! `;`), persistent history with Ctrl-R search, Tab completion of keywords,
//! tables, columns, dot-commands and quoted file paths, and Ctrl-C that
//! cancels the running query but keeps the shell.
//!
//! What a line does once entered is `shell.rs`'s business.

use std::borrow::Cow;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use nu_ansi_term::{Color, Style};
use pintail_core::datafusion::sql::sqlparser::keywords::ALL_KEYWORDS;
use pintail_core::is_complete;
use reedline::{
    ColumnarMenu, Completer, CompletionResult, Emacs, FileBackedHistory, KeyCode, KeyModifiers, MenuBuilder, Prompt, PromptEditMode,
    PromptHistorySearch, PromptHistorySearchStatus, Reedline, ReedlineEvent, ReedlineMenu, Signal, Span, Suggestion,
    ValidationResult, Validator, default_emacs_keybindings,
};

use crate::shell::{Flow, Shell, ShellError};

const DOT_COMMANDS: &[&str] = &[
    ".help", ".tables", ".schema", ".mode", ".timer", ".maxrows", ".read", ".output", ".quit", ".exit",
];

/// Runs the REPL until `.quit` or Ctrl-D.
pub async fn run(shell: &mut Shell, color: bool) -> Result<(), ShellError> {
    let names: Arc<RwLock<Vec<String>>> = Arc::default();
    let mut editor = editor(Arc::clone(&names), color);
    if std::io::stderr().is_terminal() {
        eprintln!("pintail {} (type .help for help, Ctrl-D to leave)", env!("CARGO_PKG_VERSION"));
    }
    let prompt = SqlPrompt;
    loop {
        refresh_names(shell, &names).await;
        let signal = match editor.read_line(&prompt) {
            Ok(s) => s,
            Err(e) => return Err(ShellError::Io(e)),
        };
        match signal {
            Signal::Success(text) => {
                let outcome = tokio::select! {
                    r = shell.run_script(&text) => r,
                    _ = tokio::signal::ctrl_c() => Err(ShellError::Cancelled),
                };
                match outcome {
                    Ok(Flow::Quit) => break,
                    Ok(Flow::Continue) => {}
                    Err(ShellError::Io(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
                    Err(e) => crate::report(&e, color),
                }
            }
            Signal::CtrlD => break,
            // Ctrl-C at the prompt clears the line; the shell stays
            _ => {}
        }
    }
    shell.close_output()
}

fn history_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PINTAIL_HISTORY") {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("HOME").map(|h| Path::new(&h).join(".pintail_history"))
}

fn editor(names: Arc<RwLock<Vec<String>>>, color: bool) -> Reedline {
    let mut keybindings = default_emacs_keybindings();
    keybindings.add_binding(
        KeyModifiers::NONE,
        KeyCode::Tab,
        ReedlineEvent::UntilFound(vec![ReedlineEvent::Menu("completion_menu".into()), ReedlineEvent::MenuNext]),
    );
    let menu = ColumnarMenu::default().with_name("completion_menu");
    let mut editor = Reedline::create()
        .with_validator(Box::new(SqlValidator))
        .with_completer(Box::new(SqlCompleter { names }))
        .with_menu(ReedlineMenu::EngineCompleter(Box::new(menu)))
        .with_edit_mode(Box::new(Emacs::new(keybindings)))
        // a single match is inserted at once, as in bash
        .with_quick_completions(true)
        .with_partial_completions(true)
        .with_ansi_colors(color);
    if let Some(path) = history_path()
        && let Ok(history) = FileBackedHistory::with_file(10_000, path)
    {
        editor = editor.with_history(Box::new(history));
    }
    editor
}

async fn refresh_names(shell: &Shell, names: &Arc<RwLock<Vec<String>>>) {
    let Ok(tables) = shell.session.tables().await else {
        return;
    };
    let mut all: Vec<String> = Vec::new();
    for t in tables {
        all.push(t.name.clone());
        all.extend(t.columns.fields().iter().map(|f| f.name().clone()));
    }
    all.sort();
    all.dedup();
    if let Ok(mut n) = names.write() {
        *n = all;
    }
}

struct SqlValidator;

impl Validator for SqlValidator {
    fn validate(&self, line: &str) -> ValidationResult {
        let t = line.trim();
        if t.is_empty() || t.starts_with('.') || is_complete(line) {
            ValidationResult::Complete
        } else {
            ValidationResult::Incomplete
        }
    }
}

struct SqlPrompt;

impl Prompt for SqlPrompt {
    fn render_prompt_left(&self) -> Cow<'_, str> {
        Cow::Borrowed("pintail")
    }

    fn render_prompt_right(&self) -> Cow<'_, str> {
        Cow::Borrowed("")
    }

    fn render_prompt_indicator(&self, _mode: PromptEditMode) -> Cow<'_, str> {
        Cow::Borrowed("> ")
    }

    fn render_prompt_multiline_indicator(&self) -> Cow<'_, str> {
        Cow::Borrowed("      · ")
    }

    fn render_prompt_history_search_indicator(&self, search: PromptHistorySearch) -> Cow<'_, str> {
        let status = match search.status {
            PromptHistorySearchStatus::Passing => "",
            PromptHistorySearchStatus::Failing => "failing ",
        };
        Cow::Owned(format!("({status}reverse-search: {}) ", search.term))
    }

    fn get_prompt_color(&self) -> Color {
        Color::Green
    }
}

/// Completes keywords, table and column names, dot-commands and paths.
pub struct SqlCompleter {
    names: Arc<RwLock<Vec<String>>>,
}

impl Completer for SqlCompleter {
    fn complete(&mut self, line: &str, pos: usize) -> CompletionResult {
        CompletionResult::fresh(self.suggestions(line, pos))
    }
}

impl SqlCompleter {
    fn suggestions(&self, line: &str, pos: usize) -> Vec<Suggestion> {
        let pos = pos.min(line.len());
        let before = &line[..pos];
        // a quoted path: complete file names
        if let Some(q) = open_quote(before) {
            return complete_path(&before[q + 1..], q, pos);
        }
        let start = before
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.'))
            .map_or(0, |i| i + 1);
        let word = &before[start..];
        let span = Span::new(start, pos);
        if before.trim_start().starts_with('.') && !before.contains(' ') {
            return DOT_COMMANDS
                .iter()
                .filter(|c| c.starts_with(word))
                .map(|c| suggestion((*c).to_string(), span, true))
                .collect();
        }
        if word.is_empty() {
            return vec![];
        }
        let lower = word.to_ascii_lowercase();
        let upper = word.chars().next().is_some_and(char::is_uppercase);
        let mut out: Vec<Suggestion> = Vec::new();
        if let Ok(names) = self.names.read() {
            for n in names.iter().filter(|n| n.to_ascii_lowercase().starts_with(&lower)) {
                out.push(suggestion(n.clone(), span, true));
            }
        }
        for k in ALL_KEYWORDS.iter().filter(|k| k.to_ascii_lowercase().starts_with(&lower)) {
            let k = if upper { (*k).to_string() } else { k.to_ascii_lowercase() };
            out.push(suggestion(k, span, true));
        }
        for f in ["read_parquet", "read_csv", "read_json", "read_arrow", "read_avro"] {
            if f.starts_with(&lower) {
                out.push(suggestion(format!("{f}("), span, false));
            }
        }
        out.dedup_by(|a, b| a.value == b.value);
        out
    }
}

fn suggestion(value: String, span: Span, append_whitespace: bool) -> Suggestion {
    Suggestion {
        value,
        span,
        append_whitespace,
        ..Suggestion::default()
    }
}

/// The position of an unclosed single quote in `s`, if the cursor is inside one.
fn open_quote(s: &str) -> Option<usize> {
    let mut open = None;
    for (i, c) in s.char_indices() {
        if c == '\'' {
            open = if open.is_some() { None } else { Some(i) };
        }
    }
    open
}

fn complete_path(typed: &str, quote: usize, pos: usize) -> Vec<Suggestion> {
    let (dir, prefix) = match typed.rfind('/') {
        Some(i) => (&typed[..=i], &typed[i + 1..]),
        None => ("", typed),
    };
    let expanded = match dir.strip_prefix("~/") {
        Some(rest) => std::env::var("HOME").map_or_else(|_| dir.to_string(), |h| format!("{h}/{rest}")),
        None => dir.to_string(),
    };
    let read_from = if expanded.is_empty() { ".".to_string() } else { expanded };
    let Ok(entries) = std::fs::read_dir(&read_from) else {
        return vec![];
    };
    let mut out: Vec<Suggestion> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.starts_with(prefix) || (name.starts_with('.') && !prefix.starts_with('.')) {
                return None;
            }
            let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
            let value = if is_dir { format!("'{dir}{name}/") } else { format!("'{dir}{name}'") };
            Some(suggestion(value, Span::new(quote, pos), false))
        })
        .collect();
    out.sort_by(|a, b| a.value.cmp(&b.value));
    out
}

/// The style of the `error:` label, when colour is on.
pub fn error_style(color: bool) -> Style {
    if color { Color::Red.bold() } else { Style::new() }
}

/// Reads a line from the terminal without echoing it (a password), after
/// writing `prompt` to stderr.
pub fn read_hidden(prompt: &str) -> std::io::Result<String> {
    use std::io::Write as _;

    use crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
    use crossterm::terminal;

    let mut stderr = std::io::stderr();
    write!(stderr, "{prompt}")?;
    stderr.flush()?;
    terminal::enable_raw_mode()?;
    let mut line = String::new();
    let read = loop {
        match event::read() {
            Ok(Event::Key(key)) if key.kind != KeyEventKind::Release => match key.code {
                KeyCode::Enter => break Ok(()),
                KeyCode::Char('c' | 'd') if key.modifiers.contains(KeyModifiers::CONTROL) => {
                    break Err(std::io::Error::new(std::io::ErrorKind::Interrupted, "interrupted"));
                }
                KeyCode::Char(c) => line.push(c),
                KeyCode::Backspace => {
                    line.pop();
                }
                _ => {}
            },
            Ok(Event::Paste(text)) => line.push_str(&text),
            Ok(_) => {}
            Err(e) => break Err(e),
        }
    };
    terminal::disable_raw_mode()?;
    writeln!(stderr)?;
    read.map(|()| line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(c: &mut SqlCompleter, line: &str) -> Vec<String> {
        c.suggestions(line, line.len()).into_iter().map(|s| s.value).collect()
    }

    #[test]
    fn completes_keywords_names_and_dot_commands() {
        let mut c = SqlCompleter { names: Arc::new(RwLock::new(vec!["horsepower".into(), "cars".into()])) };
        assert!(values(&mut c, "SEL").contains(&"SELECT".to_string()));
        assert!(values(&mut c, "select * from ca").contains(&"cars".to_string()));
        assert!(values(&mut c, "select horse").contains(&"horsepower".to_string()));
        assert_eq!(values(&mut c, ".ta"), vec![".tables"]);
    }

    #[test]
    fn completes_paths_inside_quotes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cars.csv"), "a\n1\n").unwrap();
        std::fs::create_dir(dir.path().join("flights")).unwrap();
        let mut c = SqlCompleter { names: Arc::default() };
        let base = dir.path().display().to_string();
        let got = values(&mut c, &format!("select * from '{base}/c"));
        assert_eq!(got, vec![format!("'{base}/cars.csv'")]);
        let got = values(&mut c, &format!("select * from '{base}/fl"));
        assert_eq!(got, vec![format!("'{base}/flights/")]);
    }

    #[test]
    fn validator_waits_for_semicolon() {
        assert!(matches!(SqlValidator.validate("select 1"), ValidationResult::Incomplete));
        assert!(matches!(SqlValidator.validate("select 1;"), ValidationResult::Complete));
        assert!(matches!(SqlValidator.validate(".tables"), ValidationResult::Complete));
    }
}
