//! An S3-compatible server for `s3.slt`: moto's server mode (PyPI `moto`).
//!
//! The runner starts `moto_server` on a free loopback port when it can find
//! one (`PINTAIL_MOTO_SERVER`, or `moto_server` on the `PATH`), creates the
//! test bucket, and points the `AWS_*` environment at it. `scripts/test`
//! installs moto and sets `PINTAIL_REQUIRE_S3=1`, so there a missing server
//! fails the run instead of skipping `s3.slt`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The bucket `s3.slt` uses.
pub const BUCKET: &str = "pintail-test";

/// A running moto server, stopped when dropped.
pub struct S3Server {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Starts moto if it can be found; `Ok(None)` when it cannot.
pub fn start() -> Result<Option<S3Server>, String> {
    let program = std::env::var("PINTAIL_MOTO_SERVER").unwrap_or_else(|_| "moto_server".into());
    let port = free_port().map_err(|e| e.to_string())?;
    let child = match Command::new(&program)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot start {program}: {e}")),
    };
    let server = S3Server { child, endpoint: format!("http://127.0.0.1:{port}") };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match put_bucket(port) {
            Ok(()) => return Ok(Some(server)),
            Err(e) if Instant::now() > deadline => return Err(format!("moto did not come up on port {port}: {e}")),
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// Creates the test bucket with a plain `PUT /bucket` (moto does not check signatures).
fn put_bucket(port: u16) -> std::io::Result<()> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    write!(s, "PUT /{BUCKET} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
    let mut reply = String::new();
    s.read_to_string(&mut reply)?;
    if reply.starts_with("HTTP/1.1 200") || reply.starts_with("HTTP/1.0 200") {
        Ok(())
    } else {
        Err(std::io::Error::other(reply.lines().next().unwrap_or_default().to_string()))
    }
}
