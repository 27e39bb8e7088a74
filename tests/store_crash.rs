//! Crash safety: a child process saving a domain in a loop is SIGKILLed at random moments,
//! hundreds of times; the definition on disk must always be a complete old or new document.
//!
//! The child is this same test binary, re-executed to run only `child_saver_loop` with
//! `VIREO_CRASH_DIR` set.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use vireo::domain::{DomainStore, Memory};

const NAME: &str = "crash";
const KILLS: usize = 300;
const CHILD_ENV: &str = "VIREO_CRASH_DIR";
const READY: &str = "crash-child-ready";

/// The two versions the child alternates between; large enough that a write takes several
/// syscalls, so a kill can land in the middle of one.
fn version(which: u64) -> String {
    let padding = format!("{which}").repeat(64 * 1024);
    format!(
        "<domain type='kvm'>\n  <name>{NAME}</name>\n  <uuid>8e3a3b5e-6f0b-4d8e-9a4b-2f1f3c4d5e6f</uuid>\n  <description>{padding}</description>\n  <memory unit='MiB'>{}</memory>\n  <vcpu>1</vcpu>\n</domain>\n",
        64 + which
    )
}

#[test]
fn child_saver_loop() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return; // only does work when re-executed by the crash test
    };
    let store = DomainStore::open_at(dir).unwrap();
    let mut stored = store.get(NAME).unwrap();
    let mut which = 1;
    let mut announced = false;
    loop {
        which = 1 - which;
        stored.domain = vireo::domain::Domain::parse(&version(which)).unwrap();
        assert_eq!(
            stored.domain.memory().unwrap(),
            Some(Memory::mib(64 + which))
        );
        store.save(&mut stored).unwrap();
        if !announced {
            // Tells the parent the (slow, load-dependent) start-up is over, so its random delay
            // lands among the saves rather than in process start-up.
            eprintln!("{READY}");
            announced = true;
        }
    }
}

/// A small xorshift generator: random kill moments without another dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn sigkill_never_tears_a_definition() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let store = DomainStore::open_at(tmp.path()).unwrap();
    store.define(&version(0)).unwrap();
    let path = store.path_of(NAME);
    let (a, b) = (version(0), version(1));
    let mut rng = Rng(u64::from(std::process::id()) | 1);
    let (mut kills, mut old, mut new, mut torn, mut mid_write) = (0, 0, 0, 0, 0);
    let started = Instant::now();
    let mut before = std::fs::read_to_string(&path).unwrap();
    while kills < KILLS && started.elapsed() < Duration::from_secs(25) {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "child_saver_loop",
                "--test-threads=1",
                "--nocapture",
            ])
            .env(CHILD_ENV, tmp.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let ready = stderr.lines().map_while(Result::ok).any(|l| l == READY);
        assert!(ready, "the child died before saving");
        std::thread::sleep(Duration::from_micros(rng.next() % 4_000));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
        // A temp file left behind means the kill landed inside a save.
        mid_write += usize::from(std::fs::read_dir(tmp.path()).unwrap().count() > 2);
        let after = std::fs::read_to_string(&path).unwrap_or_default();
        if after != a && after != b {
            torn += 1;
        } else if after == before {
            old += 1;
        } else {
            new += 1;
        }
        before = after;
    }
    let leftovers = std::fs::read_dir(tmp.path()).unwrap().count();
    DomainStore::open_at(tmp.path()).unwrap(); // cleans up dead writers' temp files
    let after_cleanup = std::fs::read_dir(tmp.path()).unwrap().count();
    eprintln!(
        "crash test: kills={kills} old={old} new={new} torn={torn} (killed mid-save: {mid_write}); files in store before/after \
         stale temp cleanup: {leftovers}/{after_cleanup}"
    );
    assert_eq!(torn, 0, "a definition was torn");
    assert!(
        mid_write > 0,
        "no kill landed inside a save; the test proves little"
    );
    assert!(kills >= 200, "only {kills} kills in the time allowed");
    assert!(
        new > 0,
        "the child never completed a save; the test proves nothing"
    );
    assert!(
        old > 0,
        "no kill landed before a save completed; vary the timing"
    );
    assert_eq!(after_cleanup, 2, "only crash.xml and its lock file remain");
}
