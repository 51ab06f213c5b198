//! An Azure Blob Storage server for `azure.slt`: azurite (npm `azurite`),
//! found as `PINTAIL_AZURITE` or `azurite-blob` on the `PATH`. The runner
//! points Pintail at it with `AZURE_STORAGE_USE_EMULATOR` and
//! `AZURITE_BLOB_STORAGE_URL`, which object_store reads.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::servers::{self, Server};

/// The container `azure.slt` uses.
pub const CONTAINER: &str = "pintail-test";
/// azurite's built-in account and its published key.
const ACCOUNT: &str = "devstoreaccount1";
const KEY: &str = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
const VERSION: &str = "2021-08-06";

/// Starts azurite with the test container; `Ok(None)` when it is not installed.
pub fn start() -> Result<Option<Server>, String> {
    servers::start(
        "PINTAIL_AZURITE",
        "azurite-blob",
        |port| {
            ["--blobHost", "127.0.0.1", "--blobPort", &port.to_string(), "--inMemoryPersistence", "--skipApiVersionCheck", "--silent"]
                .map(String::from)
                .to_vec()
        },
        create_container,
    )
}

/// `PUT /account/container?restype=container`, signed with the account key
/// (Azure's SharedKey scheme).
fn create_container(port: u16) -> std::io::Result<()> {
    let date = http_date(SystemTime::now());
    // the verb, eleven empty standard headers, then x-ms-* headers and the resource
    let to_sign = format!(
        "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{VERSION}\n/{ACCOUNT}/{ACCOUNT}/{CONTAINER}\nrestype:container"
    );
    let key = STANDARD.decode(KEY).map_err(std::io::Error::other)?;
    let tag = ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key), to_sign.as_bytes());
    let auth = format!("SharedKey {ACCOUNT}:{}", STANDARD.encode(tag.as_ref()));
    let headers = [("x-ms-date", date), ("x-ms-version", VERSION.to_string()), ("Authorization", auth)];
    servers::request(port, "PUT", &format!("/{ACCOUNT}/{CONTAINER}?restype=container"), &headers, 201)
}

/// Day names from 1970-01-01 (a Thursday) on, and month names.
const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// `Mon, 23 Nov 2026 22:40:00 GMT`
fn http_date(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // days since 1970-01-01 to a civil date (Howard Hinnant's algorithm)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let weekday = WEEKDAYS[usize::try_from(days.rem_euclid(7)).unwrap_or(0)];
    let month_name = MONTHS[usize::try_from(month - 1).unwrap_or(0)];
    format!(
        "{weekday}, {day:02} {month_name} {year} {:02}:{:02}:{:02} GMT",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn http_dates() {
        assert_eq!(http_date(UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 GMT");
        let t = UNIX_EPOCH + Duration::from_mins(29_924_560);
        assert_eq!(http_date(t), "Mon, 23 Nov 2026 22:40:00 GMT");
        let leap = UNIX_EPOCH + Duration::from_hours(264_384);
        assert_eq!(http_date(leap), "Tue, 29 Feb 2000 00:00:00 GMT");
    }
}
