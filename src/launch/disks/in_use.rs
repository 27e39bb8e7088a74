//! "Image in use": the engine's image lock refuses a conflicting user ([`BlockError::InUse`])
//! without knowing who holds the image; this finds the running VM whose definition uses the
//! same file, so the message can name it.

use std::path::{Path, PathBuf};

use crate::domain::Domain;
use crate::domain::store::DomainStore;
use crate::engine::EngineError;
use crate::engine::block::BlockError;
use crate::launch::runner;

/// The message for an image `path` that the running VM `holder` holds: for disk `target` of a
/// VM starting (`write`: it would write the image), or for a change to the image itself
/// (`target` `None`, e.g. a resize).
pub fn in_use_message(target: Option<&str>, path: &Path, write: bool, holder: &str) -> String {
    let path = path.display();
    match (target, write) {
        (Some(t), true) => format!(
            "disk {t} ({path}) is in use by the running VM '{holder}'; stop it first or attach \
             the image read-only"
        ),
        (Some(t), false) => format!(
            "disk {t} ({path}) is being written by the running VM '{holder}'; stop it first"
        ),
        (None, _) => format!(
            "{path} is in use by the running VM '{holder}'; shut it down before changing the \
             image"
        ),
    }
}

/// A failed start as the user reads it: an image another VM holds names that VM.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// An image of the VM is held by another running VM (the message names it).
    #[error("{0}")]
    ImageInUse(String),
    /// Any other engine error, in its own words.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// `error` from starting `name`, with an image held by another VM explained.
pub fn start_error(error: EngineError, name: &str) -> StartError {
    match explain_start_error(&error, name) {
        Some(message) => StartError::ImageInUse(message),
        None => StartError::Engine(error),
    }
}

/// When starting `name` failed because one of its images is locked by another running VM,
/// the message naming that VM; `None` for every other error (its own words stand).
pub fn explain_start_error(error: &EngineError, name: &str) -> Option<String> {
    explain_start_error_with(error, |path| holder_of(path, name))
}

/// [`explain_start_error`] with the holder found by `holder`.
pub(super) fn explain_start_error_with(
    error: &EngineError,
    holder: impl Fn(&Path) -> Option<String>,
) -> Option<String> {
    match error {
        // Carried transparently: the block error is the engine error's own message, not a
        // source of it, so the source walk alone would miss it.
        EngineError::Block(block) => explain_in_use_with(block, holder),
        other => explain_in_use_with(other, holder),
    }
}

/// When `error` (or one of its sources) is an image lock held by a running VM other than
/// `except`, the message naming that VM; `None` otherwise (the error's own words stand).
pub fn explain_in_use(error: &(dyn std::error::Error + 'static), except: &str) -> Option<String> {
    explain_in_use_with(error, |path| holder_of(path, except))
}

/// [`explain_in_use`] with the holder found by `holder`.
pub(super) fn explain_in_use_with(
    error: &(dyn std::error::Error + 'static),
    holder: impl Fn(&Path) -> Option<String>,
) -> Option<String> {
    let mut next = Some(error);
    while let Some(current) = next {
        if let Some(BlockError::InUse {
            target,
            path,
            write,
        }) = current.downcast_ref::<BlockError>()
        {
            let holder = holder(path)?;
            return Some(in_use_message(target.as_deref(), path, *write, &holder));
        }
        next = current.source();
    }
    None
}

/// The running VM other than `except` whose definition (its live XML, else its stored one)
/// has a disk on the same file as `path` (compared after resolving links and `..`).
pub fn holder_of(path: &Path, except: &str) -> Option<String> {
    let running = runner::running_names()
        .into_iter()
        .filter(|name| name != except)
        .filter_map(|name| {
            let domain = runner::live_xml(&name)
                .and_then(|xml| Domain::parse(&xml).ok())
                .or_else(|| Some(DomainStore::open_default().ok()?.get(&name).ok()?.domain))?;
            Some((name, domain))
        });
    holder_among(path, running)
}

/// The first of `definitions` (name, domain) with a disk on the same file as `path`.
pub(super) fn holder_among(
    path: &Path,
    definitions: impl IntoIterator<Item = (String, Domain)>,
) -> Option<String> {
    let wanted = canonical(path);
    definitions
        .into_iter()
        .find(|(_, domain)| uses_path(domain, &wanted))
        .map(|(name, _)| name)
}

/// Whether one of `domain`'s disks has `wanted` (canonical) as its source.
pub fn uses_path(domain: &Domain, wanted: &Path) -> bool {
    domain
        .disks()
        .iter()
        .filter_map(|d| d.source.as_deref())
        .any(|source| canonical(Path::new(source)) == wanted)
}

/// The path with links and `..` resolved, or as given when it cannot be resolved.
fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned())
}
