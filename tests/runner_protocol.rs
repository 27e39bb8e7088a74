//! The runner client against runners that misbehave: one that never answers, one that answers
//! garbage (another version). Each must give a clear error in bounded time, never a hang.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::time::{Duration, Instant};

use vireo::launch::runner::{self, RunnerError};

/// One test, so the process-wide XDG_RUNTIME_DIR is set once, before any thread reads it.
#[test]
fn a_hung_or_foreign_runner_gives_an_error_not_a_hang() {
    let dir = tempfile::tempdir().unwrap();
    // SAFETY: set before this test binary starts any other thread that reads the environment.
    unsafe { std::env::set_var("XDG_RUNTIME_DIR", dir.path()) };
    let runtime = runner::runtime_dir().unwrap();

    // Accepts, reads the request, never answers.
    let hung = UnixListener::bind(runtime.join("hung.sock")).unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in hung.incoming().flatten() {
            held.push(stream);
        }
    });
    let started = Instant::now();
    let err = runner::info("hung").unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(15), "bounded wait");
    let message = err.to_string();
    assert!(matches!(err, RunnerError::Io { .. }), "{message}");
    assert!(message.contains("no answer to 'dominfo'"), "{message}");
    assert!(message.contains("vireoctl destroy hung"), "{message}");
    // The console handshake has the same bound.
    let started = Instant::now();
    assert!(runner::attach_console("hung").is_err());
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "bounded console attach"
    );

    // Answers an old-style text line.
    let foreign = UnixListener::bind(runtime.join("foreign.sock")).unwrap();
    std::thread::spawn(move || {
        for stream in foreign.incoming().flatten() {
            let mut line = String::new();
            let _ = BufReader::new(&stream).read_line(&mut line);
            let _ = (&stream).write_all(b"ok\nState: running\n");
        }
    });
    let message = runner::info("foreign").unwrap_err().to_string();
    assert!(message.contains("another version"), "{message}");

    // Both answer a connection, so both are "running" for the list, which must not hang either.
    let started = Instant::now();
    let names = runner::running_names();
    assert_eq!(names, ["foreign", "hung"]);
    assert!(started.elapsed() < Duration::from_secs(2));
}
