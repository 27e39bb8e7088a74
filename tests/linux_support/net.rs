//! Servers in L1 for the network tests: a DNS responder that answers one name, and an HTTP
//! server with one file, both on L1's loopback (a guest behind passt reaches them at its
//! gateway address).

use std::io::{Read, Write};
use std::net::{TcpListener, UdpSocket};

/// Answers A queries for every name with `address` (AAAA and others: no answer), on
/// 127.0.0.1:53, for the life of the test process.
pub fn dns_responder(address: [u8; 4]) {
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

/// Serves `body` for every request on 127.0.0.1, on a free port it returns.
pub fn http_server(body: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().map_while(Result::ok) {
            let mut request = [0u8; 2048];
            let _ = stream.read(&mut request);
            let _ = write!(
                stream,
                "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}
