//! Pintail's own settings: `memory_limit`, `threads`, `temp_directory`.
//!
//! They use DuckDB's names and value syntax (`SET memory_limit = '4GB'`,
//! `'80%'`) and are turned into DataFusion's runtime environment (memory pool,
//! disk manager) and `target_partitions` here. DataFusion's own settings
//! (`SET datafusion.execution.batch_size = ...`) pass through untouched.

use std::fmt;
use std::path::PathBuf;

use crate::error::{Error, Result};

/// The resources a session may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Most memory, in bytes, that operators (sorts, joins, aggregations)
    /// may hold before they spill or fail.
    pub memory_limit: u64,
    /// Degree of parallelism of a query (DataFusion's target partitions).
    pub threads: usize,
    /// Where operators spill; `None` disables spilling, so a query over
    /// `memory_limit` fails with an out-of-memory error.
    pub temp_directory: Option<PathBuf>,
}

/// Which of Pintail's settings a name refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingName {
    /// `memory_limit` (also `max_memory`).
    MemoryLimit,
    /// `threads` (also `worker_threads`).
    Threads,
    /// `temp_directory`.
    TempDirectory,
}

impl SettingName {
    /// Every setting, by canonical name.
    pub const ALL: [(SettingName, &'static str); 3] = [
        (SettingName::MemoryLimit, "memory_limit"),
        (SettingName::Threads, "threads"),
        (SettingName::TempDirectory, "temp_directory"),
    ];

    /// The setting for `name`, if it is one of Pintail's (case-insensitive).
    pub fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "memory_limit" | "max_memory" => Some(SettingName::MemoryLimit),
            "threads" | "worker_threads" => Some(SettingName::Threads),
            "temp_directory" => Some(SettingName::TempDirectory),
            _ => None,
        }
    }

    /// The canonical name.
    pub fn name(self) -> &'static str {
        Self::ALL.iter().find(|(s, _)| *s == self).map_or("", |(_, n)| n)
    }
}

impl Settings {
    /// The defaults for this machine: 80% of memory (of the cgroup limit
    /// when there is one), every core, spilling to the OS temp directory.
    pub fn for_this_machine() -> Self {
        Self {
            memory_limit: total_memory() / 10 * 8,
            threads: std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
            temp_directory: Some(std::env::temp_dir()),
        }
    }

    /// Sets one setting from its SQL text value.
    pub fn set(&mut self, name: SettingName, value: &str) -> Result<()> {
        match name {
            SettingName::MemoryLimit => self.memory_limit = parse_memory(value, total_memory())?,
            SettingName::Threads => {
                self.threads = match value.trim().parse::<usize>() {
                    Ok(n) if n > 0 => n,
                    _ => {
                        return Err(Error::option("threads", format!("expected a positive whole number, got '{value}'")));
                    }
                }
            }
            SettingName::TempDirectory => {
                let v = value.trim();
                self.temp_directory = if v.is_empty() { None } else { Some(PathBuf::from(v)) };
            }
        }
        Ok(())
    }

    /// The current value of one setting, as `SHOW` and `current_setting` print it.
    pub fn get(&self, name: SettingName) -> String {
        match name {
            SettingName::MemoryLimit => format_bytes(self.memory_limit),
            SettingName::Threads => self.threads.to_string(),
            SettingName::TempDirectory => self
                .temp_directory
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self::for_this_machine()
    }
}

/// Parses a memory size: `4GB`, `512 MiB`, `1.5G`, `1000000` (bytes) or a
/// percentage of `total` such as `80%`.
pub fn parse_memory(text: &str, total: u64) -> Result<u64> {
    let bad = || {
        Error::option("memory_limit", format!("cannot read '{text}' as a size"))
            .with_hint("write it like '4GB', '512MB', '2GiB' or '80%'")
    };
    let t = text.trim();
    if let Some(pct) = t.strip_suffix('%') {
        let p: f64 = pct.trim().parse().map_err(|_| bad())?;
        if !(0.0..=100.0).contains(&p) || p == 0.0 {
            return Err(bad());
        }
        return Ok((total as f64 * p / 100.0) as u64);
    }
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| bad())?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" | "byte" | "bytes" => 1,
        "k" | "kb" => 1_000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        "t" | "tb" => 1_000_000_000_000,
        "tib" => 1 << 40,
        _ => return Err(bad()),
    };
    let bytes = n * mult as f64;
    if !bytes.is_finite() || bytes < 1.0 {
        return Err(bad());
    }
    Ok(bytes as u64)
}

/// `2147483648` as `2.0 GiB`.
pub fn format_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{n} bytes") } else { format!("{v:.1} {}", UNITS[unit]) }
}

/// Memory this process may use: the cgroup limit if set, else physical RAM.
#[cfg(feature = "native")]
pub fn total_memory() -> u64 {
    let Ok(mut sys) = sysinfo::System::new() else {
        return 4 << 30;
    };
    sys.refresh_memory();
    let physical = sys.total_memory();
    match sys.cgroup_limits() {
        Some(cg) if cg.total_memory > 0 && cg.total_memory < physical => cg.total_memory,
        _ => physical,
    }
}

/// Memory this process may use; without the native feature, assume 4 GiB
/// (a browser tab's practical ceiling).
#[cfg(not(feature = "native"))]
pub fn total_memory() -> u64 {
    4 << 30
}

impl fmt::Display for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, label) in SettingName::ALL {
            writeln!(f, "{label} = {}", self.get(name))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_memory("4GB", 0).unwrap(), 4_000_000_000);
        assert_eq!(parse_memory("2 GiB", 0).unwrap(), 2 << 30);
        assert_eq!(parse_memory("512mb", 0).unwrap(), 512_000_000);
        assert_eq!(parse_memory("50%", 1000).unwrap(), 500);
        assert_eq!(parse_memory("1000", 0).unwrap(), 1000);
        let e = parse_memory("lots", 0).unwrap_err();
        assert!(e.to_string().contains("cannot read 'lots' as a size"), "{e}");
        assert!(parse_memory("0%", 100).is_err());
        assert_eq!(format_bytes(2 << 30), "2.0 GiB");
    }

    #[test]
    fn set_and_get() {
        let mut s = Settings::for_this_machine();
        s.set(SettingName::Threads, "3").unwrap();
        assert_eq!(s.get(SettingName::Threads), "3");
        assert!(s.set(SettingName::Threads, "0").is_err());
        s.set(SettingName::TempDirectory, "").unwrap();
        assert_eq!(s.temp_directory, None);
        assert!(s.memory_limit > 0);
        assert_eq!(SettingName::parse("MAX_MEMORY"), Some(SettingName::MemoryLimit));
    }
}
