//! L1's side of the network tests: a DNS responder that answers one name and an HTTP server
//! with one file, both on L1's loopback (a guest behind passt reaches them at its gateway
//! address); a client for a guest's server behind a host port forward; and a capture of the
//! library's log, to see the errors it reports.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// Answers A queries for every name with `address` (AAAA and others: no answer), on
/// 127.0.0.1:53, for the life of the test process. Only the first call's address counts (the
/// tests of one process share the port).
pub fn dns_responder(address: [u8; 4]) {
    static STARTED: OnceLock<()> = OnceLock::new();
    if STARTED.set(()).is_err() {
        return;
    }
    let socket = UdpSocket::bind("127.0.0.1:53").expect("binding 127.0.0.1:53 (run as root)");
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while let Ok((n, from)) = socket.recv_from(&mut buf) {
            let query = &buf[..n];
            if n < 17 {
                continue;
            }
            // The question: labels up to the zero byte, then type and class.
            let mut end = 12;
            while end < n && query[end] != 0 {
                end += usize::from(query[end]) + 1;
            }
            let question_end = end + 5;
            if question_end > n {
                continue;
            }
            let qtype = u16::from_be_bytes([query[end + 1], query[end + 2]]);
            let answers = u16::from(qtype == 1);
            let mut reply = query[..2].to_vec();
            reply.extend([0x81, 0x80, 0, 1]);
            reply.extend(answers.to_be_bytes());
            reply.extend([0, 0, 0, 0]);
            reply.extend(&query[12..question_end]);
            if answers == 1 {
                reply.extend([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
                reply.extend(address);
            }
            let _ = socket.send_to(&reply, from);
        }
    });
}

/// Serves `body` for every request on 127.0.0.1 and on ::1, on a free port it returns (the
/// same on both).
pub fn http_server(body: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let listener6 = TcpListener::bind(("::1", port)).expect("binding [::1] on the same port");
    for listener in [listener, listener6] {
        std::thread::spawn(move || serve_http(listener, body));
    }
    port
}

/// Answers every connection to `listener` with `body`.
fn serve_http(listener: TcpListener, body: &'static str) {
    {
        for mut stream in listener.incoming().map_while(Result::ok) {
            let mut request = [0u8; 2048];
            let _ = stream.read(&mut request);
            let _ = write!(
                stream,
                "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
        }
    }
}

/// A TCP port on L1's loopback that nothing listens on now (for a port forward's host side).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port on 127.0.0.1")
        .port()
}

/// Sends `token` to a guest's server behind host port `port`: connects to 127.0.0.1:`port`
/// (passt's side of the forward), writes, closes its sending side and waits (up to 10 s) for
/// the guest to close. passt accepts the connection even while nothing listens in the guest yet
/// and then drops it, so a caller that needs the token to arrive checks the guest and retries.
pub fn send_through_forward(port: u16, token: &str) -> Result<(), String> {
    let mut stream =
        TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connecting: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(format!("{token}\n").as_bytes())
        .map_err(|e| format!("writing: {e}"))?;
    stream
        .shutdown(std::net::Shutdown::Write)
        .map_err(|e| format!("closing: {e}"))?;
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    Ok(())
}

/// The library's log lines (warnings and errors) from now on, as the runner would print them:
/// installs a global `tracing` subscriber that writes into a buffer (once per test process).
pub fn log_capture() -> Arc<Mutex<Vec<u8>>> {
    static BUFFER: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    BUFFER
        .get_or_init(|| {
            let buffer = Arc::new(Mutex::new(Vec::new()));
            let sink = buffer.clone();
            tracing_subscriber::fmt()
                .with_max_level(tracing::Level::WARN)
                .with_ansi(false)
                .with_writer(move || Sink(sink.clone()))
                .init();
            buffer
        })
        .clone()
}

/// A `tracing` writer that appends to a shared buffer and echoes to stderr.
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        std::io::stderr().write_all(buf)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
