//! The per-user domain store: `$XDG_DATA_HOME/vireo/domains/<name>.xml`.
//!
//! The GUI and `vireoctl` share this one API. Writes are atomic and serialized per domain by an
//! advisory lock; a save fails with [`StoreError::Conflict`] if the file changed on disk since it
//! was loaded, so two programs never silently drop each other's edits. Files that do not parse
//! are listed as [`BrokenDomain`]s and never overwritten.

use std::collections::hash_map::DefaultHasher;
use std::fs;
use std::hash::{Hash, Hasher};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::domain::validate::{check_name, document_problems};
use crate::domain::{Domain, DomainError};
use crate::util::atomic::{FileLock, remove_stale_temp_files, sync_dir, write_atomic};

/// Errors of the store. Each names the domain or file and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot find the user data directory; set XDG_DATA_HOME or HOME")]
    NoDataDir,
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the domain is not valid:\n{}", join_problems(.0))]
    Invalid(Vec<DomainError>),
    #[error("no domain named '{0}'; `vireoctl list --all` shows the defined ones")]
    NotFound(String),
    #[error(
        "a domain named '{name}' already exists with UUID {uuid}; choose another name or \
         undefine it first"
    )]
    NameTaken { name: String, uuid: String },
    #[error(
        "UUID {uuid} already belongs to domain '{other}'; remove <uuid> to get a new one or \
         rename '{other}'"
    )]
    UuidTaken { uuid: String, other: String },
    #[error(
        "{path} cannot be parsed ({error}); it is left untouched — fix or remove it by hand \
         before redefining '{name}'"
    )]
    Broken {
        name: String,
        path: PathBuf,
        error: String,
    },
    #[error(
        "domain '{0}' was changed on disk by another program since it was loaded; reload it \
         and apply the change again"
    )]
    Conflict(String),
}

fn join_problems(problems: &[DomainError]) -> String {
    problems
        .iter()
        .map(|p| format!("  {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_owned(),
        source,
    }
}

/// A domain loaded from the store.
#[derive(Debug, Clone)]
pub struct StoredDomain {
    pub name: String,
    pub path: PathBuf,
    pub domain: Domain,
    /// Hash of the file's bytes when loaded (or last saved); detects concurrent edits.
    loaded: u64,
}

/// A file in the store that could not be parsed as a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenDomain {
    /// The file name without `.xml`.
    pub name: String,
    pub path: PathBuf,
    pub error: String,
}

/// The store directory.
#[derive(Debug, Clone)]
pub struct DomainStore {
    dir: PathBuf,
}

fn content_hash(bytes: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

/// The lock on one domain's definition. A lock whose definition does not exist once it is
/// released (an undefine, a rename's old name, or a failed call on an unknown name such as
/// `vireoctl undefine typo`) removes its lock file, so no `.NAME.lock` outlives its domain.
struct DomainLock {
    definition: PathBuf,
    lock: FileLock,
}

impl Drop for DomainLock {
    fn drop(&mut self) {
        if !self.definition.exists() {
            let _ = fs::remove_file(self.lock.path());
        }
    }
}

impl DomainStore {
    /// `$XDG_DATA_HOME/vireo/domains` (default `~/.local/share/vireo/domains`), created if missing.
    pub fn open_default() -> Result<DomainStore, StoreError> {
        let base = directories::BaseDirs::new().ok_or(StoreError::NoDataDir)?;
        Self::open_at(base.data_dir().join("vireo").join("domains"))
    }

    /// A store in `dir`, created if missing.
    pub fn open_at(dir: impl Into<PathBuf>) -> Result<DomainStore, StoreError> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        remove_stale_temp_files(&dir);
        Ok(DomainStore { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file a domain called `name` lives in.
    pub fn path_of(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.xml"))
    }

    fn lock(&self, name: &str) -> Result<DomainLock, StoreError> {
        check_name(name).map_err(|_| StoreError::NotFound(name.to_owned()))?;
        let path = self.dir.join(format!(".{name}.lock"));
        let lock = FileLock::acquire(&path).map_err(io_err(&path))?;
        Ok(DomainLock {
            definition: self.path_of(name),
            lock,
        })
    }

    /// Every `*.xml` file, sorted by name: parsed domains, or the error that stops them parsing.
    pub fn list(&self) -> Vec<Result<StoredDomain, BrokenDomain>> {
        let mut names: Vec<String> = match fs::read_dir(&self.dir) {
            Ok(entries) => entries
                .filter_map(|e| e.ok())
                .filter_map(|e| {
                    let name = e.file_name().into_string().ok()?;
                    let stem = name.strip_suffix(".xml")?;
                    (!stem.starts_with('.')).then(|| stem.to_owned())
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        names.sort();
        names
            .into_iter()
            .filter_map(|name| match self.load(&name) {
                Ok(d) => Some(Ok(d)),
                Err(StoreError::Broken { name, path, error }) => {
                    Some(Err(BrokenDomain { name, path, error }))
                }
                Err(StoreError::NotFound(_)) => None, // removed while listing
                Err(e) => Some(Err(BrokenDomain {
                    path: self.path_of(&name),
                    name,
                    error: e.to_string(),
                })),
            })
            .collect()
    }

    fn load(&self, name: &str) -> Result<StoredDomain, StoreError> {
        let path = self.path_of(name);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::NotFound(name.to_owned()));
            }
            Err(e) => return Err(io_err(&path)(e)),
        };
        let broken = |error: String| StoreError::Broken {
            name: name.to_owned(),
            path: path.clone(),
            error,
        };
        let text = String::from_utf8(bytes.clone()).map_err(|e| broken(e.to_string()))?;
        let domain = Domain::parse(&text).map_err(|e| broken(e.to_string()))?;
        if domain.name().as_deref() != Some(name) {
            return Err(broken(format!(
                "its <name> is {:?} but the file is called {name}.xml; the two must match",
                domain.name().unwrap_or_default()
            )));
        }
        Ok(StoredDomain {
            name: name.to_owned(),
            path,
            domain,
            loaded: content_hash(&bytes),
        })
    }

    /// The domain called `name`.
    pub fn get(&self, name: &str) -> Result<StoredDomain, StoreError> {
        check_name(name).map_err(|_| StoreError::NotFound(name.to_owned()))?;
        self.load(name)
    }

    /// Defines (or, with the same name and UUID, redefines) a domain from XML, like `virsh define`.
    /// A missing UUID is generated. Nothing is written unless the document is valid.
    pub fn define(&self, xml: &str) -> Result<StoredDomain, StoreError> {
        let mut domain = Domain::parse(xml).map_err(|e| StoreError::Invalid(vec![e]))?;
        let problems = document_problems(&domain);
        if !problems.is_empty() {
            return Err(StoreError::Invalid(problems));
        }
        let name = domain.name().expect("validated above");
        let _lock = self.lock(&name)?;
        let existing = match self.load(&name) {
            Ok(d) => Some(d),
            Err(StoreError::NotFound(_)) => None,
            Err(e) => return Err(e),
        };
        let uuid = match (domain.uuid(), &existing) {
            (Some(u), _) => uuid::Uuid::parse_str(&u).expect("validated above"),
            (None, Some(old)) => old
                .domain
                .uuid()
                .and_then(|u| uuid::Uuid::parse_str(&u).ok())
                .unwrap_or_else(uuid::Uuid::new_v4),
            (None, None) => uuid::Uuid::new_v4(),
        };
        if domain.uuid().is_none() {
            domain.set_uuid(&uuid);
        }
        if let Some(old) = &existing {
            let old_uuid = old.domain.uuid().unwrap_or_default();
            if uuid::Uuid::parse_str(&old_uuid).ok() != Some(uuid) {
                return Err(StoreError::NameTaken {
                    name,
                    uuid: old_uuid,
                });
            }
        }
        self.check_uuid_unused(&uuid, &name)?;
        let path = self.path_of(&name);
        let text = domain.to_xml();
        write_atomic(&path, text.as_bytes()).map_err(io_err(&path))?;
        tracing::info!(domain = %name, path = %path.display(), "defined");
        Ok(StoredDomain {
            name,
            path,
            domain,
            loaded: content_hash(text.as_bytes()),
        })
    }

    /// Replaces the unreadable definition file of `name` (one [`Self::get`] reports as
    /// [`StoreError::Broken`]) with `xml`, the repair an XML editor offers: define refuses to
    /// touch a file it cannot read, so that nothing is lost unknowingly, but here the user has
    /// seen the file and rewritten it. `xml` must be a valid domain of the same name.
    pub fn repair(&self, name: &str, xml: &str) -> Result<StoredDomain, StoreError> {
        let mut domain = Domain::parse(xml).map_err(|e| StoreError::Invalid(vec![e]))?;
        let mut problems = document_problems(&domain);
        if domain.name().as_deref() != Some(name) {
            problems.push(crate::domain::DomainError::Invalid {
                element: "<name>".into(),
                message: format!("must stay '{name}' when repairing its file"),
            });
        }
        if !problems.is_empty() {
            return Err(StoreError::Invalid(problems));
        }
        match self.load(name) {
            Err(StoreError::Broken { .. }) => {}
            Ok(_) | Err(StoreError::NotFound(_)) => return self.define(xml),
            Err(e) => return Err(e),
        }
        let _lock = self.lock(name)?;
        if domain.uuid().is_none() {
            domain.set_uuid(&uuid::Uuid::new_v4());
        }
        let uuid = domain.uuid().and_then(|u| uuid::Uuid::parse_str(&u).ok());
        if let Some(uuid) = uuid {
            self.check_uuid_unused(&uuid, name)?;
        }
        let path = self.path_of(name);
        let text = domain.to_xml();
        write_atomic(&path, text.as_bytes()).map_err(io_err(&path))?;
        tracing::info!(domain = %name, path = %path.display(), "repaired");
        Ok(StoredDomain {
            name: name.to_owned(),
            path,
            domain,
            loaded: content_hash(text.as_bytes()),
        })
    }

    fn check_uuid_unused(&self, uuid: &uuid::Uuid, name: &str) -> Result<(), StoreError> {
        for other in self.list().into_iter().flatten() {
            let other_uuid = other
                .domain
                .uuid()
                .and_then(|u| uuid::Uuid::parse_str(&u).ok());
            if other.name != name && other_uuid.as_ref() == Some(uuid) {
                return Err(StoreError::UuidTaken {
                    uuid: uuid.to_string(),
                    other: other.name,
                });
            }
        }
        Ok(())
    }

    /// Writes back an edited domain. Fails with [`StoreError::Conflict`] if the file changed since
    /// `stored` was loaded; the name inside must still match (use [`rename`](Self::rename)).
    pub fn save(&self, stored: &mut StoredDomain) -> Result<(), StoreError> {
        let problems = document_problems(&stored.domain);
        if !problems.is_empty() {
            return Err(StoreError::Invalid(problems));
        }
        if stored.domain.name().as_deref() != Some(stored.name.as_str()) {
            return Err(StoreError::Invalid(vec![DomainError::Invalid {
                element: "<name>".into(),
                message: format!(
                    "changing the name of '{}' by saving is not allowed; use rename (vireoctl \
                     domrename)",
                    stored.name
                ),
            }]));
        }
        let _lock = self.lock(&stored.name)?;
        let on_disk = match fs::read(&stored.path) {
            Ok(bytes) => Some(content_hash(&bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_err(&stored.path)(e)),
        };
        if on_disk != Some(stored.loaded) {
            return Err(StoreError::Conflict(stored.name.clone()));
        }
        let text = stored.domain.to_xml();
        write_atomic(&stored.path, text.as_bytes()).map_err(io_err(&stored.path))?;
        stored.loaded = content_hash(text.as_bytes());
        Ok(())
    }

    /// Records that `name` has started: clears the wizard's "never started" marker (see
    /// [`crate::domain::first_start`]) when it is there; a definition without it is not
    /// rewritten.
    pub fn note_started(&self, name: &str) -> Result<(), StoreError> {
        let mut stored = self.get(name)?;
        if !stored.domain.awaits_first_start() {
            return Ok(());
        }
        stored.domain.set_awaits_first_start(false);
        self.save(&mut stored)
    }

    /// Renames a domain: the new file is written first, then the old one removed, so a crash in
    /// between leaves the domain defined (possibly twice), never lost.
    pub fn rename(&self, old: &str, new: &str) -> Result<StoredDomain, StoreError> {
        check_name(new).map_err(|e| StoreError::Invalid(vec![e]))?;
        let (first, second) = if old < new { (old, new) } else { (new, old) };
        let _locks = (self.lock(first)?, self.lock(second)?);
        let mut stored = self.load(old)?;
        match self.load(new) {
            Err(StoreError::NotFound(_)) => {}
            Ok(taken) => {
                return Err(StoreError::NameTaken {
                    name: new.to_owned(),
                    uuid: taken.domain.uuid().unwrap_or_default(),
                });
            }
            Err(e) => return Err(e),
        }
        stored.domain.set_name(new);
        let path = self.path_of(new);
        let text = stored.domain.to_xml();
        write_atomic(&path, text.as_bytes()).map_err(io_err(&path))?;
        fs::remove_file(&stored.path).map_err(io_err(&stored.path))?;
        if fs::remove_file(self.autostart_marker(old)).is_ok() {
            let _ = std::os::unix::fs::symlink(format!("../{new}.xml"), self.autostart_marker(new));
        }
        sync_dir(&self.dir).map_err(io_err(&self.dir))?;
        Ok(StoredDomain {
            name: new.to_owned(),
            path,
            domain: stored.domain,
            loaded: content_hash(text.as_bytes()),
        })
    }

    /// Removes a domain's definition. Its disk images are kept unless `delete_disks`, in which
    /// case local file/block disks (not CD-ROMs or read-only disks) are deleted too; the paths
    /// deleted are returned. A broken file can be undefined too (the user asked explicitly).
    pub fn undefine(&self, name: &str, delete_disks: bool) -> Result<Vec<PathBuf>, StoreError> {
        let _lock = self.lock(name)?;
        let disks = match self.load(name) {
            Ok(stored) => stored.domain.disks(),
            Err(StoreError::Broken { .. }) if !delete_disks => Vec::new(),
            Err(e) => return Err(e),
        };
        let path = self.path_of(name);
        fs::remove_file(&path).map_err(io_err(&path))?;
        let _ = fs::remove_file(self.autostart_marker(name));
        sync_dir(&self.dir).map_err(io_err(&self.dir))?;
        let mut deleted = Vec::new();
        if delete_disks {
            for disk in disks {
                let removable = matches!(disk.disk_type.as_deref(), None | Some("file"))
                    && !matches!(disk.device.as_deref(), Some("cdrom" | "floppy"))
                    && !disk.readonly;
                if let (true, Some(source)) = (removable, disk.source) {
                    let source = PathBuf::from(source);
                    fs::remove_file(&source).map_err(io_err(&source))?;
                    deleted.push(source);
                }
            }
        }
        tracing::info!(domain = %name, "undefined");
        Ok(deleted)
    }

    /// The autostart marker of `name`: `autostart/NAME.xml`, a symlink to the definition, as
    /// libvirt keeps its markers (`/etc/libvirt/qemu/autostart/`).
    fn autostart_marker(&self, name: &str) -> PathBuf {
        self.dir.join("autostart").join(format!("{name}.xml"))
    }

    /// Whether the defined domain `name` is marked to start automatically (`virsh autostart`).
    pub fn autostart(&self, name: &str) -> bool {
        check_name(name).is_ok() && self.autostart_marker(name).symlink_metadata().is_ok()
    }

    /// Marks (`on`) or unmarks the defined domain `name` to start automatically.
    pub fn set_autostart(&self, name: &str, on: bool) -> Result<(), StoreError> {
        let _lock = self.lock(name)?;
        if !self.path_of(name).is_file() {
            return Err(StoreError::NotFound(name.to_owned()));
        }
        let marker = self.autostart_marker(name);
        if on {
            let dir = self.dir.join("autostart");
            fs::create_dir_all(&dir).map_err(io_err(&dir))?;
            if marker.symlink_metadata().is_err() {
                std::os::unix::fs::symlink(format!("../{name}.xml"), &marker)
                    .map_err(io_err(&marker))?;
            }
        } else {
            match fs::remove_file(&marker) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(io_err(&marker)(e)),
                _ => {}
            }
        }
        Ok(())
    }

    /// A number that changes whenever a definition is added, removed or rewritten. The GUI polls
    /// it (cheap: one readdir and stats) to pick up VMs defined by `vireoctl` without a restart.
    pub fn generation(&self) -> u64 {
        let mut entries: Vec<(String, i64, i64, u64)> = fs::read_dir(&self.dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .filter_map(|e| {
                        let name = e.file_name().into_string().ok()?;
                        if !name.ends_with(".xml") || name.starts_with('.') {
                            return None;
                        }
                        let meta = e.metadata().ok()?;
                        Some((name, meta.mtime(), meta.mtime_nsec(), meta.ino()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        entries.sort();
        let mut h = DefaultHasher::new();
        entries.hash(&mut h);
        h.finish()
    }
}
