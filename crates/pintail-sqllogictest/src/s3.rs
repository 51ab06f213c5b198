//! An S3-compatible server for `s3.slt`: moto's server mode (PyPI `moto`),
//! found as `PINTAIL_MOTO_SERVER` or `moto_server` on the `PATH`. The runner
//! points the `AWS_*` environment at it.

use crate::servers::{self, Server};

/// The bucket `s3.slt` uses.
pub const BUCKET: &str = "pintail-test";

/// Starts moto with the test bucket; `Ok(None)` when moto is not installed.
pub fn start() -> Result<Option<Server>, String> {
    servers::start(
        "PINTAIL_MOTO_SERVER",
        "moto_server",
        |port| vec!["-H".into(), "127.0.0.1".into(), "-p".into(), port.to_string()],
        // moto does not check signatures
        |port| servers::request(port, "PUT", &format!("/{BUCKET}"), &[], 200),
    )
}
