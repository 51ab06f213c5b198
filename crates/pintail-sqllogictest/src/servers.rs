//! Object store servers for the tests that need one, started by the runner
//! on free loopback ports: moto for `s3.slt` ([`crate::s3`]), azurite for
//! `azure.slt` ([`crate::azure`]). Each is found through an environment
//! variable naming the program, or on the `PATH`; `scripts/test` installs
//! both. A server is stopped when its [`Server`] is dropped.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// A running server, killed when dropped.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `program` (or the one `env_var` names) with the arguments
/// `args(port)`, and waits until `setup(port)` succeeds on it (creating the
/// test bucket, say). `Ok(None)` when the program cannot be found.
pub(crate) fn start(
    env_var: &str,
    program: &str,
    args: impl Fn(u16) -> Vec<String>,
    setup: impl Fn(u16) -> std::io::Result<()>,
) -> Result<Option<Server>, String> {
    let program = std::env::var(env_var).unwrap_or_else(|_| program.into());
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    // the server's output goes to a log, shown if it fails to come up
    let log_path = std::env::temp_dir().join(format!("pintail-test-server-{port}.log"));
    let log = std::fs::File::create(&log_path).map_err(|e| format!("cannot create {}: {e}", log_path.display()))?;
    let stderr = log.try_clone().map_err(|e| e.to_string())?;
    let child = match Command::new(&program).args(args(port)).stdout(log).stderr(stderr).spawn() {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot start {program}: {e}")),
    };
    let mut server = Server { child, endpoint: format!("http://127.0.0.1:{port}") };
    let deadline = Instant::now() + Duration::from_mins(1);
    let failed = |why: String| {
        let output = std::fs::read_to_string(&log_path).unwrap_or_default();
        let tail: Vec<&str> = output.lines().rev().take(20).collect::<Vec<_>>().into_iter().rev().collect();
        format!("{program} did not come up on port {port}: {why}\n{}", tail.join("\n"))
    };
    loop {
        if let Ok(Some(status)) = server.child.try_wait() {
            return Err(failed(format!("it exited with {status}")));
        }
        match setup(port) {
            Ok(()) => return Ok(Some(server)),
            Err(e) if Instant::now() > deadline => return Err(failed(e.to_string())),
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// Sends one HTTP/1.1 request without a body and fails unless the status
/// is `expect`.
pub(crate) fn request(port: u16, method: &str, target: &str, headers: &[(&str, String)], expect: u16) -> std::io::Result<()> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n");
    for (name, value) in headers {
        let _ = write!(head, "{name}: {value}\r\n");
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())?;
    let mut reply = String::new();
    s.read_to_string(&mut reply)?;
    let status = reply.lines().next().unwrap_or_default();
    if status.split(' ').nth(1) == Some(&expect.to_string()) {
        Ok(())
    } else {
        Err(std::io::Error::other(status.to_string()))
    }
}
