//! A minimal, strictly bounded HTTP/1.1 server: one request per connection
//! (`Connection: close`), a fixed pool of worker threads fed by a bounded
//! queue of accepted connections, and hard limits on every read.
//!
//! # Why not `tiny_http`
//! `tiny_http` 0.12 (the latest release) drains an unread request body on
//! drop through `vec![0; remaining]`, `remaining` being the client's
//! declared `Content-Length`: one request declaring a huge length aborts
//! the process (allocation failure), and moderate ones make the server
//! allocate and read gigabytes after it has already answered 413 (upstream
//! tiny-http PR #290). It also spawns a thread per connection. Refusing a
//! body *before reading it* is the API's contract, so the server is this
//! one, which never reads (or allocates for) a body over the limit.
//!
//! # Limits
//! - the request head (line and headers) is at most [`MAX_HEAD_BYTES`]
//!   with at most [`MAX_HEADERS`] headers;
//! - a declared `Content-Length` over the body limit is answered 413
//!   without reading the body; a chunked body is read only up to the limit;
//! - every read and write has a timeout, and a whole request must arrive
//!   within [`REQUEST_DEADLINE`] (slow clients are dropped);
//! - accepted connections wait in a queue of `4 × workers`; when it is
//!   full, new connections get 503 at once and are closed.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Largest request head (request line and headers), in bytes.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Most request headers.
pub const MAX_HEADERS: usize = 64;
/// Time a whole request (head and body) may take to arrive.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(15);
/// Time one write of the response may block.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(15);
/// After answering, what the client still sends is read and discarded for
/// at most this long (and [`LINGER_BYTES`]), so that closing does not reset
/// the connection before the client has read the answer.
pub const LINGER: Duration = Duration::from_secs(1);
/// Most bytes discarded while lingering.
pub const LINGER_BYTES: usize = 256 * 1024;
/// The answer to a connection that finds the queue full.
const BUSY: &[u8] = br#"{"error":{"code":"busy","message":"the API is at capacity; retry later"}}"#;

/// A parsed request.
#[derive(Debug)]
pub(crate) struct Request {
    pub method: String,
    pub path: String,
    pub query: String,
    pub body: Vec<u8>,
}

/// A response to write.
#[derive(Debug)]
pub(crate) struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

/// Why a request could not be read; the server answers these itself
/// through the handler's error renderer.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The body is (or is declared) over the limit.
    TooLarge { declared: Option<u64> },
    /// Not a valid HTTP/1.x request.
    Malformed(String),
    /// The head is over [`MAX_HEAD_BYTES`] or has too many headers.
    HeadTooLarge,
    /// The connection failed or timed out; nothing is answered.
    Gone,
}

/// What the server calls: `handle` for each request, `reject` to render an
/// error the server detected while reading.
pub(crate) trait Handler: Send + Sync + 'static {
    /// Answers a request.
    fn handle(&self, request: Request) -> Response;
    /// Answers a request that could not be read (`None`: say nothing).
    fn reject(&self, error: &ReadError) -> Option<Response>;
}

/// A running server.
pub(crate) struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Server {
    pub(crate) fn start<H: Handler>(
        addr: SocketAddr,
        workers: usize,
        max_body: usize,
        handler: Arc<H>,
    ) -> std::io::Result<Server> {
        let listener = TcpListener::bind(addr)?;
        let local = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::sync_channel::<TcpStream>(workers.max(1) * 4);
        let rx = Arc::new(Mutex::new(rx));
        let mut threads = Vec::new();
        for i in 0..workers.max(1) {
            let rx = rx.clone();
            let stop = stop.clone();
            let handler = handler.clone();
            threads.push(
                std::thread::Builder::new()
                    .name(format!("govchain-api-{i}"))
                    .spawn(move || worker(&rx, &stop, handler.as_ref(), max_body))?,
            );
        }
        {
            let stop = stop.clone();
            threads.push(
                std::thread::Builder::new()
                    .name("govchain-api-accept".into())
                    .spawn(move || accept(listener, &tx, &stop))?,
            );
        }
        Ok(Server {
            addr: local,
            stop,
            threads,
        })
    }

    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, lets workers finish their request, joins.
    pub(crate) fn stop(&mut self) {
        if self.stop.swap(true, Ordering::SeqCst) {
            return;
        }
        // Wake the accept loop.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(500));
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn accept(listener: TcpListener, queue: &SyncSender<TcpStream>, stop: &AtomicBool) {
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let stream = match conn {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(error = %e, "API accept failed");
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
        };
        match queue.try_send(stream) {
            Ok(()) => {}
            Err(TrySendError::Full(mut stream)) => {
                // Busy: answer at once rather than queue without bound.
                let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
                let busy = Response {
                    status: 503,
                    content_type: "application/json",
                    body: BUSY.to_vec(),
                };
                let _ = write_response(&mut stream, &busy);
                let _ = stream.shutdown(Shutdown::Both);
            }
            Err(TrySendError::Disconnected(_)) => break,
        }
    }
}

fn worker<H: Handler>(
    rx: &Mutex<Receiver<TcpStream>>,
    stop: &AtomicBool,
    handler: &H,
    max_body: usize,
) {
    loop {
        let next = rx.lock().recv_timeout(Duration::from_millis(200));
        match next {
            Ok(stream) => serve(stream, handler, max_body),
            Err(RecvTimeoutError::Timeout) => {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
            }
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

fn serve<H: Handler>(mut stream: TcpStream, handler: &H, max_body: usize) {
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let response = match read_request(&mut stream, max_body) {
        Ok(request) => Some(handler.handle(request)),
        Err(ReadError::Gone) => None,
        Err(e) => handler.reject(&e),
    };
    if let Some(r) = response {
        let _ = write_response(&mut stream, &r);
    }
    linger_close(stream);
}

/// Sends FIN, then discards what the client still sends for a bounded
/// time and size (a refused body is never read beyond that), then closes.
fn linger_close(mut stream: TcpStream) {
    if stream.shutdown(Shutdown::Write).is_err() {
        return;
    }
    let deadline = Instant::now() + LINGER;
    let mut sink = [0u8; 4096];
    let mut discarded = 0usize;
    while discarded < LINGER_BYTES {
        match read_some(&mut stream, &mut sink, deadline) {
            Ok(0) | Err(_) => break,
            Ok(n) => discarded += n,
        }
    }
}

/// Reads from `stream` into `buf` with the time left before `deadline`.
fn read_some(
    stream: &mut TcpStream,
    buf: &mut [u8],
    deadline: Instant,
) -> Result<usize, ReadError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(ReadError::Gone);
    }
    stream
        .set_read_timeout(Some(left))
        .map_err(|_| ReadError::Gone)?;
    loop {
        match stream.read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return Err(ReadError::Gone),
        }
    }
}

pub(crate) fn read_request(stream: &mut TcpStream, max_body: usize) -> Result<Request, ReadError> {
    let deadline = Instant::now() + REQUEST_DEADLINE;
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        if buf.len() > MAX_HEAD_BYTES {
            return Err(ReadError::HeadTooLarge);
        }
        let n = read_some(stream, &mut chunk, deadline)?;
        if n == 0 {
            return Err(ReadError::Gone);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    if head_end > MAX_HEAD_BYTES {
        return Err(ReadError::HeadTooLarge);
    }
    let head = std::str::from_utf8(&buf[..head_end])
        .map_err(|_| ReadError::Malformed("request head is not UTF-8".into()))?;
    let mut lines = head.split("\r\n");
    let line = lines.next().unwrap_or_default();
    let mut parts = line.split(' ');
    let (method, target, version) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(m), Some(t), Some(v), None) if !m.is_empty() && t.starts_with('/') => (m, t, v),
        _ => return Err(ReadError::Malformed(format!("bad request line {line:?}"))),
    };
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err(ReadError::Malformed(format!(
            "unsupported version {version:?}"
        )));
    }
    let mut content_length: Option<u64> = None;
    let mut chunked = false;
    let mut expect_continue = false;
    let mut count = 0usize;
    for h in lines {
        count += 1;
        if count > MAX_HEADERS {
            return Err(ReadError::HeadTooLarge);
        }
        let (name, value) = h
            .split_once(':')
            .ok_or_else(|| ReadError::Malformed(format!("bad header line {h:?}")))?;
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => {
                let n: u64 = value
                    .parse()
                    .map_err(|_| ReadError::Malformed(format!("bad Content-Length {value:?}")))?;
                if content_length.is_some_and(|c| c != n) {
                    return Err(ReadError::Malformed("conflicting Content-Length".into()));
                }
                content_length = Some(n);
            }
            "transfer-encoding" => {
                if value.eq_ignore_ascii_case("chunked") {
                    chunked = true;
                } else {
                    return Err(ReadError::Malformed(format!(
                        "unsupported Transfer-Encoding {value:?}"
                    )));
                }
            }
            "expect" => expect_continue = value.eq_ignore_ascii_case("100-continue"),
            _ => {}
        }
    }
    if chunked && content_length.is_some() {
        return Err(ReadError::Malformed(
            "both Content-Length and Transfer-Encoding".into(),
        ));
    }
    if let Some(n) = content_length {
        if n > max_body as u64 {
            return Err(ReadError::TooLarge { declared: Some(n) });
        }
    }
    if expect_continue && (chunked || content_length.is_some_and(|n| n > 0)) {
        let _ = stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
    }
    let mut rest = buf[head_end + 4..].to_vec();
    let body = if chunked {
        read_chunked(stream, rest, max_body, deadline)?
    } else {
        let n = content_length.unwrap_or(0) as usize;
        while rest.len() < n {
            let got = read_some(stream, &mut chunk, deadline)?;
            if got == 0 {
                return Err(ReadError::Gone);
            }
            rest.extend_from_slice(&chunk[..got]);
        }
        rest.truncate(n);
        rest
    };
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_owned(), q.to_owned()),
        None => (target.to_owned(), String::new()),
    };
    Ok(Request {
        method: method.to_owned(),
        path,
        query,
        body,
    })
}

/// Decodes a chunked body, reading at most `max` body bytes.
fn read_chunked(
    stream: &mut TcpStream,
    mut pending: Vec<u8>,
    max: usize,
    deadline: Instant,
) -> Result<Vec<u8>, ReadError> {
    let mut body = Vec::new();
    let mut chunk = [0u8; 4096];
    let mut fill = |pending: &mut Vec<u8>, want: usize| -> Result<(), ReadError> {
        while pending.len() < want {
            let n = read_some(stream, &mut chunk, deadline)?;
            if n == 0 {
                return Err(ReadError::Gone);
            }
            pending.extend_from_slice(&chunk[..n]);
        }
        Ok(())
    };
    loop {
        // The size line.
        let line_end = loop {
            if let Some(i) = pending.windows(2).position(|w| w == b"\r\n") {
                break i;
            }
            if pending.len() > 1024 {
                return Err(ReadError::Malformed("chunk size line too long".into()));
            }
            let want = pending.len() + 1;
            fill(&mut pending, want)?;
        };
        let size_text = std::str::from_utf8(&pending[..line_end])
            .map_err(|_| ReadError::Malformed("bad chunk size".into()))?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = u64::from_str_radix(size_text, 16)
            .map_err(|_| ReadError::Malformed(format!("bad chunk size {size_text:?}")))?;
        pending.drain(..line_end + 2);
        if size == 0 {
            // Trailers are not supported: expect the final CRLF.
            fill(&mut pending, 2)?;
            return Ok(body);
        }
        if body.len() as u64 + size > max as u64 {
            return Err(ReadError::TooLarge { declared: None });
        }
        let size = size as usize;
        fill(&mut pending, size + 2)?;
        body.extend_from_slice(&pending[..size]);
        if &pending[size..size + 2] != b"\r\n" {
            return Err(ReadError::Malformed("chunk not followed by CRLF".into()));
        }
        pending.drain(..size + 2);
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Payload Too Large",
        422 => "Unprocessable Entity",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

pub(crate) fn write_response(stream: &mut TcpStream, r: &Response) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\nCache-Control: no-store\r\n\r\n",
        r.status,
        reason(r.status),
        r.content_type,
        r.body.len()
    );
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(&r.body);
    stream.write_all(&bytes)?;
    stream.flush()
}
