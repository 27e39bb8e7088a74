//! The display path's throughput and CPU cost: a Scanout at 1280 × 800 whose whole screen a
//! thread rewrites as fast as it can (the guest's flushes at their fastest), read by a VNC
//! client over loopback TCP, asking for the next incremental update as soon as one arrives.
//! Prints a table; `tools/bench/display.sh` runs it in release mode.
//!
//! With `VIREO_BENCH_REMOTE=NAME=HOST:PORT=PID[,…]` it measures running VNC servers instead,
//! with the same client (`tools/bench/display-guest.sh`: a guest redrawing its screen, served
//! by Vireo's runner and by QEMU's VNC server): updates a second and the serving process's CPU
//! (its guest's included) from /proc.
//!
//! CPU: the process's CPU time less the producer's and the client's threads' own (each thread
//! measures itself), i.e. what the server's threads and the Scanout's copies cost.

#[path = "../tests/vnc_support/mod.rs"]
mod vnc_support;

use std::net::{Ipv4Addr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use vireo::engine::display::{Mode, PixelFormat, Scanout};
use vireo::launch::vnc::{Listener, VncServer, VncSources};

const W: u32 = 1280;
const H: u32 = 800;

fn cpu_time(clock: libc::clockid_t) -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given and nothing else.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

struct Row {
    case: &'static str,
    frames_written: u64,
    updates: u64,
    seconds: f64,
    server_cpu: Duration,
    megabytes: f64,
}

/// Runs one case for `seconds`: `changing` rewrites the whole screen continuously, else it
/// stays still (the cost of an idle viewer); `format` is the client's pixel format message.
fn run(case: &'static str, changing: bool, format: Option<[u8; 16]>, seconds: f64) -> Row {
    let mode = Mode {
        width: W,
        height: H,
        format: PixelFormat::B8G8R8X8,
    };
    let scanout = Scanout::new(W, H);
    scanout.present(mode, &vec![0; (W * H * 4) as usize]);
    let listener = Listener::tcp(Ipv4Addr::LOCALHOST.into(), Some(0)).unwrap();
    let port = listener.port().unwrap();
    let sources = VncSources {
        scanout: scanout.clone(),
        keyboard: None,
        tablet: None,
    };
    let server = VncServer::start(listener, sources, "bench", None).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let producer_cpu = Arc::new(AtomicU64::new(0));
    let producer = {
        let (scanout, stop, written, cpu) = (
            scanout.clone(),
            stop.clone(),
            written.clone(),
            producer_cpu.clone(),
        );
        std::thread::spawn(move || {
            let mut frame = vec![0u8; (W * H * 4) as usize];
            let mut n = 0u8;
            while changing && !stop.load(Ordering::SeqCst) {
                n = n.wrapping_add(1);
                // Every pixel changes every frame.
                for (i, p) in frame.chunks_exact_mut(4).enumerate() {
                    p[0] = n;
                    p[1] = (i as u8).wrapping_add(n);
                }
                scanout.present(mode, &frame);
                written.fetch_add(1, Ordering::SeqCst);
            }
            cpu.store(
                cpu_time(libc::CLOCK_THREAD_CPUTIME_ID).as_nanos() as u64,
                Ordering::SeqCst,
            );
        })
    };
    // A still screen answers no incremental request: one change at the end ends the wait.
    let waker = (!changing).then(|| {
        let scanout = scanout.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs_f64(seconds));
            scanout.present(mode, &vec![1; (W * H * 4) as usize]);
        })
    });
    let stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
    let mut client = vnc_support::Client::connect(stream, None).unwrap();
    if let Some(format) = format {
        client.set_pixel_format(format);
    }
    client.set_encodings(&[0]);
    let client_cpu_start = cpu_time(libc::CLOCK_THREAD_CPUTIME_ID);
    let process_start = cpu_time(libc::CLOCK_PROCESS_CPUTIME_ID);
    let start = Instant::now();
    let mut updates = 0u64;
    let mut bytes = 0u64;
    client.request(false);
    let mut first = true;
    while start.elapsed().as_secs_f64() < seconds {
        let rects = client.read_update().unwrap();
        // The first, whole update answers the connection, not a change.
        if !std::mem::take(&mut first) {
            updates += 1;
            bytes += rects
                .iter()
                .map(|r| u64::from(r.width * r.height * client.bytes_per_pixel))
                .sum::<u64>();
        }
        client.request(true);
    }
    if let Some(waker) = waker {
        waker.join().unwrap();
    }
    let elapsed = start.elapsed().as_secs_f64();
    let client_cpu = cpu_time(libc::CLOCK_THREAD_CPUTIME_ID) - client_cpu_start;
    stop.store(true, Ordering::SeqCst);
    producer.join().unwrap();
    let process = cpu_time(libc::CLOCK_PROCESS_CPUTIME_ID) - process_start;
    let producer = Duration::from_nanos(producer_cpu.load(Ordering::SeqCst));
    drop(server);
    Row {
        case,
        frames_written: written.load(Ordering::SeqCst),
        updates,
        seconds: elapsed,
        server_cpu: process.saturating_sub(producer + client_cpu),
        megabytes: bytes as f64 / 1e6,
    }
}

/// User + system CPU time of process `pid` so far.
fn process_cpu(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name's closing parenthesis: utime and stime are 14 and 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let field = |n: usize| -> u64 {
        rest.split_whitespace()
            .nth(n - 3)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    // SAFETY: sysconf only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Duration::from_secs_f64((field(14) + field(15)) as f64 / ticks)
}

/// Reads updates from the VNC server at `address` for `seconds`, asking for the next
/// incremental one as soon as one arrives; prints updates a second, MB a second and the CPU
/// share of process `pid`.
fn run_remote(name: &str, address: &str, pid: u32, seconds: f64) {
    let stream = TcpStream::connect(address)
        .unwrap_or_else(|e| panic!("connecting to {name}'s VNC server at {address}: {e}"));
    let mut client = vnc_support::Client::connect(stream, None).unwrap();
    client.set_encodings(&[0]);
    client.request(false);
    client.read_update().unwrap();
    let (mut updates, mut bytes) = (0u64, 0u64);
    let cpu_start = process_cpu(pid);
    let start = Instant::now();
    client.request(true);
    while start.elapsed().as_secs_f64() < seconds {
        let rects = client.read_update().unwrap();
        updates += 1;
        bytes += rects
            .iter()
            .map(|r| u64::from(r.width * r.height * client.bytes_per_pixel))
            .sum::<u64>();
        client.request(true);
    }
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = (process_cpu(pid) - cpu_start).as_secs_f64();
    println!(
        "{:<22} {:>5}x{:<5} {:>10.1} {:>10.1} {:>22.1}",
        name,
        client.width,
        client.height,
        updates as f64 / elapsed,
        bytes as f64 / 1e6 / elapsed,
        cpu * 100.0 / elapsed
    );
}

fn main() {
    let seconds: f64 = std::env::var("VIREO_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5.0);
    if let Ok(remotes) = std::env::var("VIREO_BENCH_REMOTE") {
        println!("a guest redrawing its whole screen, VNC over loopback TCP, {seconds} s each");
        println!(
            "{:<22} {:>11} {:>10} {:>10} {:>22}",
            "server", "size", "updates/s", "MB/s", "VMM CPU % (guest too)"
        );
        for remote in remotes.split(',').filter(|r| !r.is_empty()) {
            let mut parts = remote.splitn(3, '=');
            let (Some(name), Some(address), Some(pid)) = (parts.next(), parts.next(), parts.next())
            else {
                panic!("VIREO_BENCH_REMOTE entry '{remote}' is not NAME=HOST:PORT=PID");
            };
            let pid = pid.parse().expect("a process id");
            run_remote(name, address, pid, seconds);
        }
        return;
    }
    let rgb565 = [16, 16, 0, 1, 0, 31, 0, 63, 0, 31, 11, 5, 0, 0, 0, 0];
    let rows = [
        run("full-screen change, 32-bit client", true, None, seconds),
        run(
            "full-screen change, 16-bit client",
            true,
            Some(rgb565),
            seconds,
        ),
        run("still screen (idle viewer)", false, None, seconds),
    ];
    println!("display path at {W}x{H}, VNC over loopback TCP, {seconds} s per case");
    println!(
        "{:<38} {:>12} {:>12} {:>10} {:>16} {:>14}",
        "case", "frames/s in", "updates/s", "MB/s", "server CPU %", "CPU ms/update"
    );
    for r in rows {
        let cpu_ms = r.server_cpu.as_secs_f64() * 1e3;
        println!(
            "{:<38} {:>12.1} {:>12.1} {:>10.1} {:>16.1} {:>14}",
            r.case,
            r.frames_written as f64 / r.seconds,
            r.updates as f64 / r.seconds,
            r.megabytes / r.seconds,
            cpu_ms / 10.0 / r.seconds,
            if r.updates > 0 {
                format!("{:.2}", cpu_ms / r.updates as f64)
            } else {
                "-".into()
            }
        );
    }
}
