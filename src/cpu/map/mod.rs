//! The CPU map: vendors, features (which CPUID/MSR bit each one is) and named CPU models.
//!
//! The data lives in the repository's `cpu_map/` directory in Vireo's own line format
//! (documented in `cpu_map/README.md`), is embedded into the binary at compile time, and can be
//! extended or corrected by a user overlay directory. Order matters: decode walks models in
//! map order and breaks ties by it, exactly as libvirt walks its own map.

mod builtin_files;
mod parse;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::feature_set::FeatureSet;

/// A problem loading the CPU map, naming the file and line so the data can be fixed.
#[derive(Debug, thiserror::Error)]
pub enum CpuMapError {
    #[error("{file}:{line}: {message}")]
    Syntax {
        file: String,
        line: usize,
        message: String,
    },
    #[error("cannot read CPU map overlay {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// One of the four general registers a CPUID leaf returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Register {
    Eax,
    Ebx,
    Ecx,
    Edx,
}

impl Register {
    pub fn name(self) -> &'static str {
        match self {
            Register::Eax => "eax",
            Register::Ebx => "ebx",
            Register::Ecx => "ecx",
            Register::Edx => "edx",
        }
    }
}

/// Where a feature lives in the CPU's self-description.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FeatureBit {
    /// A bit of a CPUID leaf/subleaf register.
    Cpuid {
        leaf: u32,
        subleaf: u32,
        register: Register,
        bit: u8,
    },
    /// A bit (0–63, bits 32+ being the EDX half) of a model-specific register such as
    /// IA32_ARCH_CAPABILITIES (0x10a) or the VMX capability MSRs.
    Msr { index: u32, bit: u8 },
}

/// A named CPU feature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuFeature {
    name: String,
    aliases: Vec<String>,
    bit: FeatureBit,
    migratable: bool,
}

impl CpuFeature {
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn aliases(&self) -> &[String] {
        &self.aliases
    }
    pub fn bit(&self) -> FeatureBit {
        self.bit
    }
    /// False for features a guest cannot keep across migration (e.g. `invtsc`).
    pub fn migratable(&self) -> bool {
        self.migratable
    }
}

/// A CPU vendor and the 12-byte string CPUID leaf 0 returns for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuVendor {
    name: String,
    cpuid_string: String,
}

impl CpuVendor {
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn cpuid_string(&self) -> &str {
        &self.cpuid_string
    }
    /// The leaf-0 `(ebx, edx, ecx)` words spelling the vendor string.
    pub fn registers(&self) -> (u32, u32, u32) {
        let b = self.cpuid_string.as_bytes();
        let word = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        (word(0), word(4), word(8))
    }
}

/// A family/model (and optionally stepping range) a named model was sold as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelSignature {
    pub family: u32,
    pub model: u32,
    /// Inclusive stepping range; `None` matches any stepping.
    pub steppings: Option<(u32, u32)>,
}

impl ModelSignature {
    pub fn matches(&self, family: u32, model: u32, stepping: u32) -> bool {
        self.family == family
            && self.model == model
            && self
                .steppings
                .is_none_or(|(lo, hi)| (lo..=hi).contains(&stepping))
    }
}

/// A named CPU model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuModel {
    name: String,
    aliases: Vec<String>,
    parent: Option<String>,
    vendor: Option<String>,
    signatures: Vec<ModelSignature>,
    decode_host: bool,
    decode_guest: bool,
    /// The model's own data: listed features, not those marked `added` or `removed`.
    features: FeatureSet,
    /// Canonical names of `features`, in the order the model file lists them. Shared with
    /// the parent until a version adds to it, so versions cost no copies.
    feature_names: Arc<Vec<String>>,
    added: Arc<Vec<String>>,
    removed: Vec<String>,
}

impl CpuModel {
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn aliases(&self) -> &[String] {
        &self.aliases
    }
    /// The model this one is a version of (`Haswell-v1` → `Haswell`), if any.
    pub fn parent(&self) -> Option<&str> {
        self.parent.as_deref()
    }
    pub fn vendor(&self) -> Option<&str> {
        self.vendor.as_deref()
    }
    pub fn signatures(&self) -> &[ModelSignature] {
        &self.signatures
    }
    /// Whether host decode may report this model.
    pub fn decode_host(&self) -> bool {
        self.decode_host
    }
    /// Whether guest decode may report this model.
    pub fn decode_guest(&self) -> bool {
        self.decode_guest
    }
    /// Canonical feature names, fully expanded through the parent chain.
    pub fn features(&self) -> &[String] {
        &self.feature_names
    }
    /// Features later added to this model's definition (kept out of its decode data so old
    /// decode answers stay stable).
    pub fn added_features(&self) -> &[String] {
        &self.added
    }
    /// Features dropped from this model's definition after it was first published.
    pub fn removed_features(&self) -> &[String] {
        &self.removed
    }
    pub(crate) fn feature_set(&self) -> &FeatureSet {
        &self.features
    }
    pub(crate) fn has_signature(&self, family: u32, model: u32, stepping: u32) -> bool {
        self.signatures
            .iter()
            .any(|s| s.matches(family, model, stepping))
    }
}

/// The whole map.
#[derive(Debug, Clone, Default)]
pub struct CpuMap {
    vendors: Vec<CpuVendor>,
    features: Vec<CpuFeature>,
    feature_index: HashMap<String, usize>,
    models: Vec<CpuModel>,
    model_index: HashMap<String, usize>,
}

impl CpuMap {
    /// The map shipped inside the binary.
    pub fn builtin() -> Result<CpuMap, CpuMapError> {
        let files: HashMap<&str, &str> = builtin_files::BUILTIN_FILES.iter().copied().collect();
        let mut map = CpuMap::default();
        let text = |name: &str| files.get(name).copied().unwrap_or("");
        parse::load_vendors(&mut map, "vendors.map", text("vendors.map"))?;
        parse::load_features(&mut map, "features.map", text("features.map"))?;
        for model_file in parse::index_entries("index.map", text("index.map"))? {
            let body = files
                .get(model_file.as_str())
                .ok_or_else(|| CpuMapError::Syntax {
                    file: "index.map".into(),
                    line: 0,
                    message: format!("lists {model_file}, which is not embedded"),
                })?;
            parse::load_models(&mut map, &model_file, body)?;
        }
        Ok(map)
    }

    /// The built-in vendors and features and only the model files `wanted` says to read
    /// (given each file's name and text), in map order.
    fn builtin_subset(wanted: impl Fn(&str, &str) -> bool) -> Result<CpuMap, CpuMapError> {
        let files: HashMap<&str, &str> = builtin_files::BUILTIN_FILES.iter().copied().collect();
        let mut map = CpuMap::default();
        let text = |name: &str| files.get(name).copied().unwrap_or("");
        parse::load_vendors(&mut map, "vendors.map", text("vendors.map"))?;
        parse::load_features(&mut map, "features.map", text("features.map"))?;
        for model_file in parse::index_entries("index.map", text("index.map"))? {
            let body = text(&model_file);
            if wanted(&model_file, body) {
                parse::load_models(&mut map, &model_file, body)?;
            }
        }
        Ok(map)
    }

    /// What a guest CPU that names no model needs (host-passthrough, maximum): the built-in
    /// vendors and features, no models. Every feature fact equals [`CpuMap::load`]'s unless a
    /// user overlay exists, in which case this *is* [`CpuMap::load`].
    pub fn load_features_only() -> Result<CpuMap, CpuMapError> {
        if overlay_dir().is_some_and(|d| d.is_dir()) {
            return Self::load();
        }
        Self::builtin_subset(|_, _| false)
    }

    /// What a guest CPU naming `model` needs: the built-in vendors and features plus the model
    /// file that defines `model` (a model's versions and parents live in its file). Falls back
    /// to the whole map ([`CpuMap::load`]) when a user overlay exists or the file alone does not
    /// define the model, so the model's facts always equal the whole map's.
    pub fn load_for_model(model: &str) -> Result<CpuMap, CpuMapError> {
        if overlay_dir().is_some_and(|d| d.is_dir()) {
            return Self::load();
        }
        match Self::builtin_for_model(model) {
            Some(map) => Ok(map),
            None => Self::load(),
        }
    }

    /// The built-in vendors, features and the one model file defining `model`, if that file
    /// alone defines it.
    fn builtin_for_model(model: &str) -> Option<CpuMap> {
        Self::builtin_subset(|_, body| defines_model(body, model))
            .ok()
            .filter(|map| map.model(model).is_some())
    }

    /// The built-in map plus the user's overlay in `$XDG_CONFIG_HOME/vireo/cpu_map/`.
    pub fn load() -> Result<CpuMap, CpuMapError> {
        match overlay_dir() {
            Some(dir) if dir.is_dir() => Self::load_with_overlay(&dir),
            _ => Self::builtin(),
        }
    }

    /// The built-in map plus `dir`: its `vendors.map` and `features.map` add vendors and
    /// features, every other `*.map` file (in name order) adds models or replaces a model of
    /// the same name in place (keeping its position in map order).
    pub fn load_with_overlay(dir: &Path) -> Result<CpuMap, CpuMapError> {
        let mut map = Self::builtin()?;
        let read = |path: &Path| {
            std::fs::read_to_string(path).map_err(|source| CpuMapError::Io {
                path: path.to_path_buf(),
                source,
            })
        };
        let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|source| CpuMapError::Io {
                path: dir.to_path_buf(),
                source,
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "map"))
            .collect();
        names.sort();
        for special in ["vendors.map", "features.map"] {
            let path = dir.join(special);
            if path.is_file() {
                let label = path.display().to_string();
                let text = read(&path)?;
                if special == "vendors.map" {
                    parse::load_vendors(&mut map, &label, &text)?;
                } else {
                    parse::load_features(&mut map, &label, &text)?;
                }
            }
        }
        for path in names {
            let file = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if file == "vendors.map" || file == "features.map" || file == "index.map" {
                continue;
            }
            let text = read(&path)?;
            parse::load_models(&mut map, &path.display().to_string(), &text)?;
        }
        Ok(map)
    }

    /// A model by name or alias.
    pub fn model(&self, name: &str) -> Option<&CpuModel> {
        self.model_index.get(name).map(|&i| &self.models[i])
    }

    /// A feature by name or alias.
    pub fn feature(&self, name: &str) -> Option<&CpuFeature> {
        self.feature_index.get(name).map(|&i| &self.features[i])
    }

    /// All models in map order.
    pub fn models(&self) -> impl Iterator<Item = &CpuModel> {
        self.models.iter()
    }

    /// All features in map order.
    pub fn features(&self) -> &[CpuFeature] {
        &self.features
    }

    pub fn vendors(&self) -> &[CpuVendor] {
        &self.vendors
    }

    pub fn vendor(&self, name: &str) -> Option<&CpuVendor> {
        self.vendors.iter().find(|v| v.name == name)
    }

    /// Index of a feature (by name or alias) in [`CpuMap::features`].
    pub(crate) fn feature_position(&self, name: &str) -> Option<usize> {
        self.feature_index.get(name).copied()
    }

    pub(crate) fn feature_at(&self, index: usize) -> &CpuFeature {
        &self.features[index]
    }

    /// Canonical names of the members of `set`, in map order.
    pub(crate) fn names_of(&self, set: &FeatureSet) -> Vec<String> {
        set.iter().map(|i| self.features[i].name.clone()).collect()
    }

    /// The set of non-migratable features.
    pub(crate) fn non_migratable(&self) -> FeatureSet {
        (0..self.features.len())
            .filter(|&i| !self.features[i].migratable)
            .collect()
    }
}

/// Whether a model file's text defines `model` by name or alias (a cheap scan, no parse).
fn defines_model(body: &str, model: &str) -> bool {
    body.contains(model)
        && body.lines().any(|line| {
            let mut words = line.split_whitespace();
            match words.next() {
                Some("model") => words.next() == Some(model),
                Some("alias") => words.any(|w| w == model),
                _ => false,
            }
        })
}

fn overlay_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("vireo").join("cpu_map"))
}

#[cfg(test)]
mod tests;
