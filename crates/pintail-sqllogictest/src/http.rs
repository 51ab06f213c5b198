//! A small HTTP/1.1 file server for tests of `http://` URLs.
//!
//! Serves the files under a root folder with `HEAD`, `GET` and single
//! `Range: bytes=a-b` requests (answered with 206 and `Content-Range`), which
//! is what object_store's HTTP client needs to read Parquet footers and row
//! groups. It counts the range requests so tests can check they were used.
//! Not for anything but tests: one thread per connection, no keep-alive.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// A running server.
pub struct FileServer {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    /// How many `Range` requests were answered.
    pub range_requests: Arc<AtomicU64>,
}

/// Starts serving `root` on a free loopback port, in background threads.
pub fn serve(root: PathBuf) -> std::io::Result<FileServer> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let url = format!("http://{}", listener.local_addr()?);
    let ranges = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&ranges);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let root = root.clone();
            let counter = Arc::clone(&counter);
            std::thread::spawn(move || {
                let _ = handle(stream, &root, &counter);
            });
        }
    });
    Ok(FileServer { url, range_requests: ranges })
}

fn handle(mut stream: TcpStream, root: &Path, ranges: &AtomicU64) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    let mut range: Option<(u64, Option<u64>)> = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(spec) = lower.strip_prefix("range: bytes=") {
            let spec = spec.trim();
            if let Some((a, b)) = spec.split_once('-') {
                range = a.parse().ok().map(|start| (start, b.parse().ok()));
            }
        }
    }
    let mut parts = request.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or("/").split('?').next().unwrap_or("/").to_string();
    let relative = Path::new(target.trim_start_matches('/'));
    if relative.components().any(|c| !matches!(c, Component::Normal(_))) {
        return respond(&mut stream, "403 Forbidden", &[], b"");
    }
    let path = root.join(relative);
    let Ok(mut file) = std::fs::File::open(&path) else {
        return respond(&mut stream, "404 Not Found", &[], b"");
    };
    let len = file.metadata()?.len();
    if path.is_dir() {
        return respond(&mut stream, "404 Not Found", &[], b"");
    }
    let modified = "Wed, 01 Jan 2025 00:00:00 GMT";
    let etag = format!("\"{len:x}\"");
    match (method.as_str(), range) {
        ("HEAD", _) => respond(
            &mut stream,
            "200 OK",
            &[("Content-Length", len.to_string()), ("Last-Modified", modified.into()), ("ETag", etag)],
            b"",
        ),
        ("GET", Some((start, end))) => {
            ranges.fetch_add(1, Ordering::Relaxed);
            let end = end.unwrap_or(len.saturating_sub(1)).min(len.saturating_sub(1));
            if start > end {
                return respond(&mut stream, "416 Range Not Satisfiable", &[("Content-Range", format!("bytes */{len}"))], b"");
            }
            let mut body = vec![0u8; (end - start + 1) as usize];
            std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(start))?;
            file.read_exact(&mut body)?;
            respond(
                &mut stream,
                "206 Partial Content",
                &[
                    ("Content-Range", format!("bytes {start}-{end}/{len}")),
                    ("Last-Modified", modified.into()),
                    ("ETag", etag),
                ],
                &body,
            )
        }
        ("GET", None) => {
            let mut body = Vec::new();
            file.read_to_end(&mut body)?;
            respond(&mut stream, "200 OK", &[("Last-Modified", modified.into()), ("ETag", etag)], &body)
        }
        _ => respond(&mut stream, "405 Method Not Allowed", &[], b""),
    }
}

fn respond(stream: &mut TcpStream, status: &str, headers: &[(&str, String)], body: &[u8]) -> std::io::Result<()> {
    use std::fmt::Write as _;
    let mut head = format!("HTTP/1.1 {status}\r\nConnection: close\r\n");
    if !headers.iter().any(|(k, _)| *k == "Content-Length") {
        let _ = write!(head, "Content-Length: {}\r\n", body.len());
    }
    for (k, v) in headers {
        let _ = write!(head, "{k}: {v}\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()
}
