//! The preferences as the running app knows them: read from `prefs.toml` once when the app
//! starts, then kept in memory, so opening Preferences, confirming a Force Off or building a
//! new VM reads no file on the UI thread.
//!
//! Each change is applied in memory at once and handed to one writer thread, which writes the
//! changes in the order they were made. The writer re-reads the file and applies the change to
//! what it finds, so a change `vireoctl prefs set` or `vireoctl connect --add` made while the
//! app ran is kept rather than overwritten with the app's older copy (GSettings gives GNOME
//! apps the same: reads from memory, writes in the background).

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, OnceLock, mpsc};

use super::{Prefs, PrefsError};

/// One change to the preferences; applied twice (in memory, then to the file's contents).
type Change = Box<dyn Fn(&mut Prefs) -> Result<(), PrefsError> + Send>;
/// Told how writing a change went, on the writer thread.
type Done = Box<dyn FnOnce(Result<(), PrefsError>) + Send>;

/// Preferences in memory with an ordered background writer for one file.
pub struct LivePrefs {
    /// The file; `None` where there is no config directory (memory only).
    path: Option<PathBuf>,
    current: Mutex<Prefs>,
    writer: Mutex<mpsc::Sender<(Change, Done)>>,
}

impl LivePrefs {
    /// Reads `path` (a missing file means the defaults; an unreadable one, the defaults and
    /// the error) and starts the writer for it. `Err` for no path at all: memory only, and each
    /// write reports that error.
    pub fn open(path: Result<PathBuf, PrefsError>) -> (LivePrefs, Option<PrefsError>) {
        let (prefs, error) = match path.as_ref().map(|p| Prefs::load_from(p)) {
            Ok(Ok(prefs)) => (prefs, None),
            Ok(Err(error)) => (Prefs::default(), Some(error)),
            Err(_) => (Prefs::default(), Some(PrefsError::NoConfigDir)),
        };
        let path = path.ok();
        let writer_path = path.clone();
        let (tx, rx) = mpsc::channel::<(Change, Done)>();
        std::thread::Builder::new()
            .name("prefs-writer".into())
            .spawn(move || {
                for (change, done) in rx {
                    let written = match &writer_path {
                        Some(path) => Prefs::load_from(path).and_then(|mut on_disk| {
                            change(&mut on_disk)?;
                            on_disk.save_to(path)
                        }),
                        None => Err(PrefsError::NoConfigDir),
                    };
                    if let Err(error) = &written {
                        tracing::error!(%error, "could not save the preferences");
                    }
                    done(written);
                }
            })
            .expect("spawning the preferences writer");
        let live = LivePrefs {
            path,
            current: Mutex::new(prefs),
            writer: Mutex::new(tx),
        };
        (live, error)
    }

    /// The preferences in memory.
    pub fn current(&self) -> Prefs {
        lock(&self.current).clone()
    }

    /// Reads the file again into memory (the app's start: another process may have changed it
    /// since this process last looked). Returns the error of an unreadable file, keeping what
    /// memory held.
    pub fn reload(&self) -> Result<(), PrefsError> {
        let path = self.path.as_deref().ok_or(PrefsError::NoConfigDir)?;
        let prefs = Prefs::load_from(path)?;
        *lock(&self.current) = prefs;
        Ok(())
    }

    /// Applies `change` in memory now (its error, e.g. an invalid connection URI, is returned
    /// and nothing changes) and queues it for the file; `done` hears how the write went.
    pub fn change(
        &self,
        change: impl Fn(&mut Prefs) -> Result<(), PrefsError> + Send + 'static,
        done: impl FnOnce(Result<(), PrefsError>) + Send + 'static,
    ) -> Result<(), PrefsError> {
        {
            let mut current = lock(&self.current);
            let mut next = current.clone();
            change(&mut next)?;
            *current = next;
        }
        let queued = lock(&self.writer).send((Box::new(change), Box::new(done)));
        if let Err(mpsc::SendError((_, done))) = queued {
            done(Err(PrefsError::WriterGone));
        }
        Ok(())
    }
}

/// A poisoned lock still holds a whole `Prefs` (every change replaces it in one assignment).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// This process's preferences (the default path), opened, and the file read, on first use.
/// The second value is `Some(the first read's error, if any)` for the call that opened them.
fn open_global() -> (&'static LivePrefs, Option<Option<PrefsError>>) {
    static LIVE: OnceLock<LivePrefs> = OnceLock::new();
    let mut first_read = None;
    let live = LIVE.get_or_init(|| {
        let (live, error) = LivePrefs::open(Prefs::default_path());
        first_read = Some(error);
        live
    });
    (live, first_read)
}

/// This process's preferences, opened on first use.
fn global() -> &'static LivePrefs {
    let (live, first_read) = open_global();
    if let Some(Some(error)) = first_read {
        tracing::warn!(%error, "preferences unreadable; using the defaults");
    }
    live
}

/// Reads `prefs.toml` into memory: the app calls this once as it starts, before its window
/// shows (a first use reads it once, a later one reads it again: another process may have
/// changed it). An unreadable file leaves the defaults (or what memory held) and returns the
/// error.
pub fn load_at_start() -> Result<(), PrefsError> {
    match open_global() {
        (_, Some(first_read)) => first_read.map_or(Ok(()), Err),
        (live, None) => live.reload(),
    }
}

/// The preferences in memory (read now if nothing read them yet).
pub fn current() -> Prefs {
    global().current()
}

/// Changes the preferences in memory now and in `prefs.toml` in the background, in order; see
/// [`LivePrefs::change`].
pub fn change(
    change: impl Fn(&mut Prefs) -> Result<(), PrefsError> + Send + 'static,
    done: impl FnOnce(Result<(), PrefsError>) + Send + 'static,
) -> Result<(), PrefsError> {
    global().change(change, done)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::prefs::CpuModePref;

    fn wait(rx: &mpsc::Receiver<Result<(), PrefsError>>) -> Result<(), PrefsError> {
        rx.recv_timeout(Duration::from_secs(10))
            .expect("the writer answers")
    }

    #[test]
    fn changes_show_at_once_and_reach_the_file_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vireo/prefs.toml");
        let (live, error) = LivePrefs::open(Ok(path.clone()));
        assert!(error.is_none(), "a missing file means the defaults");
        let (tx, rx) = mpsc::channel();
        for size in 10..30 {
            let tx = tx.clone();
            live.change(
                move |p| {
                    p.console_font_size = size;
                    Ok(())
                },
                move |r| tx.send(r).unwrap(),
            )
            .unwrap();
            assert_eq!(live.current().console_font_size, size, "in memory at once");
        }
        for _ in 10..30 {
            wait(&rx).unwrap();
        }
        assert_eq!(Prefs::load_from(&path).unwrap().console_font_size, 29);
    }

    #[test]
    fn a_change_keeps_what_another_process_wrote_meanwhile() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("prefs.toml");
        let (live, _) = LivePrefs::open(Ok(path.clone()));
        // `vireoctl prefs set` while the app runs.
        let mut other = Prefs::load_from(&path).unwrap();
        other.new_vm_cpu_mode = CpuModePref::HostPassthrough;
        other.save_to(&path).unwrap();
        let (tx, rx) = mpsc::channel();
        live.change(
            |p| {
                p.confirm_force_off = false;
                Ok(())
            },
            move |r| tx.send(r).unwrap(),
        )
        .unwrap();
        wait(&rx).unwrap();
        let on_disk = Prefs::load_from(&path).unwrap();
        assert!(!on_disk.confirm_force_off);
        assert_eq!(on_disk.new_vm_cpu_mode, CpuModePref::HostPassthrough);
        live.reload().unwrap();
        assert_eq!(live.current(), on_disk);
    }

    #[test]
    fn a_refused_change_changes_nothing_and_a_failed_write_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("prefs.toml");
        let (live, _) = LivePrefs::open(Ok(path.clone()));
        let before = live.current();
        let refused = live.change(
            |p| p.add_connection("no scheme here", true).map(|_| ()),
            |_| panic!("a refused change is not written"),
        );
        assert!(refused.is_err());
        assert_eq!(live.current(), before);

        // A file the user broke by hand: the write is refused and says which file, and the
        // broken file stays as it was (nothing is lost by overwriting it).
        std::fs::write(&path, "new-vm-cpu-mode = [").unwrap();
        let (tx, rx) = mpsc::channel();
        live.change(
            |p| {
                p.console_font_size = 20;
                Ok(())
            },
            move |r| tx.send(r).unwrap(),
        )
        .unwrap();
        let error = wait(&rx).unwrap_err().to_string();
        assert!(error.contains("prefs.toml"), "{error}");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "new-vm-cpu-mode = ["
        );
        assert_eq!(
            live.current().console_font_size,
            20,
            "memory keeps the change"
        );
    }
}
