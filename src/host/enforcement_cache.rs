//! A cache of the CPUID-enforcement probe's answer (`crate::engine::cpuid_probe::cpuid_is_enforced` boots
//! a tiny VM, a few milliseconds on every start), the way libvirt caches QEMU capabilities: one
//! small file in `$XDG_CACHE_HOME/vireo/` (or `~/.cache/vireo/`), valid while the host boot,
//! the kernel, the KVM flavour and API version and the host CPU are the ones it was measured on.
//! A cache that is missing, unreadable, garbage or keyed to another host state is ignored and
//! rewritten; a cache that cannot be written only costs the next start the probe.

use std::io::Write;
use std::path::{Path, PathBuf};

/// The cache file's name under the cache directory.
pub const FILE_NAME: &str = "cpuid-enforcement";
/// The first line of the file: names the format, so a later format is never misread.
const HEADER: &str = "# vireo cpuid-enforcement cache v1 (safe to delete)";

/// What the probe's answer depends on. Any difference means the cached answer is not used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeKey {
    /// `/proc/sys/kernel/random/boot_id`: a new boot may load another KVM.
    pub boot_id: String,
    /// `/proc/sys/kernel/osrelease`.
    pub kernel: String,
    /// KVM_GET_API_VERSION.
    pub kvm_api: i32,
    /// The loaded KVM flavour (`kvm_pvm`, `kvm_intel`, `kvm_amd`): a module can be swapped
    /// without a reboot.
    pub kvm_module: String,
    /// The host CPU: vendor and CPUID leaf 1 EAX signature.
    pub cpu: String,
}

impl ProbeKey {
    /// This host's key, or `None` when the boot id or kernel release cannot be read (then
    /// nothing is cached).
    pub fn current(kvm_api: i32) -> Option<Self> {
        let read = |path: &str| {
            std::fs::read_to_string(path)
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        };
        let kvm_module = ["kvm_pvm", "kvm_intel", "kvm_amd"]
            .into_iter()
            .filter(|m| Path::new("/sys/module").join(m).exists())
            .collect::<Vec<_>>()
            .join(",");
        Some(Self {
            boot_id: read("/proc/sys/kernel/random/boot_id")?,
            kernel: read("/proc/sys/kernel/osrelease")?,
            kvm_api,
            kvm_module,
            cpu: host_cpu_signature(),
        })
    }

    fn fields(&self) -> [(&'static str, String); 5] {
        [
            ("boot_id", self.boot_id.clone()),
            ("kernel", self.kernel.clone()),
            ("kvm_api", self.kvm_api.to_string()),
            ("kvm_module", self.kvm_module.clone()),
            ("cpu", self.cpu.clone()),
        ]
    }
}

/// Vendor string and leaf 1 EAX of the CPU this runs on, e.g. `AuthenticAMD 00a10f11`.
fn host_cpu_signature() -> String {
    let leaf0 = std::arch::x86_64::__cpuid(0);
    let leaf1 = std::arch::x86_64::__cpuid(1);
    let vendor: Vec<u8> = [leaf0.ebx, leaf0.edx, leaf0.ecx]
        .iter()
        .flat_map(|r| r.to_le_bytes())
        .collect();
    format!("{} {:08x}", String::from_utf8_lossy(&vendor), leaf1.eax)
}

/// `$XDG_CACHE_HOME/vireo/cpuid-enforcement`, else `~/.cache/vireo/cpuid-enforcement`.
pub fn default_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("vireo").join(FILE_NAME))
}

fn render(key: &ProbeKey, enforced: bool) -> String {
    let mut text = format!("{HEADER}\n");
    for (name, value) in key.fields() {
        text.push_str(&format!("{name}={value}\n"));
    }
    text.push_str(&format!("enforced={enforced}\n"));
    text
}

/// The cached answer if `text` is a well-formed cache for exactly `key`.
fn lookup(text: &str, key: &ProbeKey) -> Option<bool> {
    let mut lines = text.lines();
    if lines.next() != Some(HEADER) {
        return None;
    }
    for (name, value) in key.fields() {
        let (n, v) = lines.next()?.split_once('=')?;
        if n != name || v != value {
            return None;
        }
    }
    let answer = match lines.next()?.strip_prefix("enforced=")? {
        "true" => true,
        "false" => false,
        _ => return None,
    };
    lines.next().is_none().then_some(answer)
}

/// Writes the cache atomically: a temporary file in the same directory, then a rename, so a
/// reader sees the old file or the whole new one. (No fsync: a file torn by a crash is
/// garbage, and garbage is ignored and rewritten.)
fn store(path: &Path, key: &ProbeKey, enforced: bool) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{FILE_NAME}.{}.tmp", std::process::id()));
    let result = std::fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(render(key, enforced).as_bytes()))
        .and_then(|()| std::fs::rename(&tmp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// The answer cached at `path` for `key`, or `probe`'s answer, which is then cached. Without
/// a path or a key, `probe` runs and nothing is cached.
pub fn cached_or_probe<E>(
    path: Option<&Path>,
    key: Option<&ProbeKey>,
    probe: impl FnOnce() -> Result<bool, E>,
) -> Result<bool, E> {
    let (Some(path), Some(key)) = (path, key) else {
        return probe();
    };
    if let Some(answer) = std::fs::read_to_string(path)
        .ok()
        .and_then(|text| lookup(&text, key))
    {
        return Ok(answer);
    }
    let answer = probe()?;
    if let Err(e) = store(path, key, answer) {
        tracing::debug!("cannot write {}: {e}", path.display());
    }
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn key() -> ProbeKey {
        ProbeKey {
            boot_id: "0b5e6a4e-8f7e-4c39-9d0e-1b2c3d4e5f60".into(),
            kernel: "6.12.0-pvm".into(),
            kvm_api: 12,
            kvm_module: "kvm_pvm".into(),
            cpu: "AuthenticAMD 00a10f11".into(),
        }
    }

    /// Runs `cached_or_probe` with a probe answering `answer`; returns (result, probe ran).
    fn run(path: &Path, key: &ProbeKey, answer: bool) -> (bool, bool) {
        let ran = Cell::new(false);
        let result = cached_or_probe::<()>(Some(path), Some(key), || {
            ran.set(true);
            Ok(answer)
        })
        .unwrap();
        (result, ran.get())
    }

    #[test]
    fn the_second_call_uses_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/dir").join(FILE_NAME);
        assert_eq!(run(&path, &key(), false), (false, true));
        // The probe would now say otherwise; the cache answers without running it.
        assert_eq!(run(&path, &key(), true), (false, false));
        assert_eq!(
            lookup(&std::fs::read_to_string(&path).unwrap(), &key()),
            Some(false)
        );
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [FILE_NAME]);
    }

    #[test]
    fn a_different_key_is_ignored_and_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        run(&path, &key(), false);
        let changes: [fn(&mut ProbeKey); 5] = [
            |k| k.boot_id = "another-boot".into(),
            |k| k.kernel = "6.13.0".into(),
            |k| k.kvm_api = 13,
            |k| k.kvm_module = "kvm_amd".into(),
            |k| k.cpu = "GenuineIntel 000906ea".into(),
        ];
        for change in changes {
            let mut other = key();
            change(&mut other);
            assert_eq!(run(&path, &other, true), (true, true), "{other:?}");
            assert_eq!(run(&path, &other, false), (true, false), "{other:?}");
            // Back to the first key: the file now holds the other one's answer, so it probes.
            assert_eq!(run(&path, &key(), false), (false, true));
        }
    }

    #[test]
    fn a_garbage_or_truncated_file_is_ignored_and_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let good = render(&key(), true);
        let garbage = [
            String::new(),
            "\u{0}\u{1}binary garbage\n".into(),
            good.replace("enforced=true", "enforced=maybe"),
            good.replace("enforced=true\n", ""),
            good[..good.len() / 2].to_string(),
            format!("{good}extra=line\n"),
            good.replace(HEADER, "# some other format"),
        ];
        for text in garbage {
            std::fs::write(&path, &text).unwrap();
            assert_eq!(run(&path, &key(), true), (true, true), "{text:?}");
            assert_eq!(std::fs::read_to_string(&path).unwrap(), good);
        }
        // Not valid UTF-8 at all.
        std::fs::write(&path, [0xff, 0xfe, 0x00]).unwrap();
        assert_eq!(run(&path, &key(), false), (false, true));
    }

    #[test]
    fn without_a_key_or_path_the_probe_always_runs_and_nothing_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        for _ in 0..2 {
            let ran = Cell::new(0);
            let probe = || {
                ran.set(ran.get() + 1);
                Ok::<_, ()>(true)
            };
            assert_eq!(cached_or_probe(Some(&path), None, probe), Ok(true));
            assert_eq!(ran.get(), 1);
        }
        assert!(!path.exists());
        assert_eq!(
            cached_or_probe::<()>(None, Some(&key()), || Ok(false)),
            Ok(false)
        );
    }

    #[test]
    fn a_probe_error_is_returned_and_not_cached() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        assert_eq!(
            cached_or_probe(Some(&path), Some(&key()), || Err("no kvm")),
            Err("no kvm")
        );
        assert!(!path.exists());
    }

    #[test]
    fn this_hosts_key_reads_the_boot_and_kernel() {
        let key = ProbeKey::current(12).expect("/proc is readable");
        assert!(!key.boot_id.is_empty() && !key.kernel.is_empty());
        assert_eq!(key.cpu.len(), 12 + 1 + 8, "{}", key.cpu);
    }
}
