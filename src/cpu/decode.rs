//! Decode: raw CPUID data → the nearest named model plus the features that differ.
//!
//! The rule is libvirt's (so answers are identical on its test data): walk the models newest
//! first; a candidate's cost is the number of features it must add (present in the data, not in
//! the model) plus a growing penalty for each one it must disable (in the model, not in the
//! data). Host decode refuses candidates that need any disabled feature. A candidate whose
//! signature list contains the CPU's family/model beats one whose list does not, whatever the
//! cost; otherwise the lower cost wins, and at equal cost the candidate found first (listed
//! later in the map) stays.

use super::cpuid::{CpuidData, RawSignature, feature_set_in};
use super::def::{CpuDef, CpuFeatureRef, CpuKind, CpuMatch, CpuSignature, Fallback, Policy};
use super::error::CpuError;
use super::feature_set::FeatureSet;
use super::map::{CpuMap, CpuModel};

/// A model the hypervisor offers, with the features it cannot provide on this host
/// (QEMU's "unavailable features"). Restricts guest decode to what can actually run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HypervisorModel {
    pub name: String,
    pub blockers: Vec<String>,
}

/// Options shared by host decode, guest decode and baseline.
#[derive(Debug, Clone, Default)]
pub(crate) struct DecodeOptions<'a> {
    pub kind: Option<CpuKind>,
    /// Only these models are candidates (guest decode against a hypervisor's list).
    pub hv_models: Option<&'a [HypervisorModel]>,
    /// Models the caller would like (baseline: the input CPUs' models). A single one is taken
    /// as soon as it is a valid candidate; with several, they win ties on disabled features.
    pub preferred: &'a [&'a str],
    /// Drop features that cannot survive migration from the result.
    pub migratable: bool,
    /// Choose by feature distance alone, not preferring models sold with the data's
    /// family/model (for data that describes what a hypervisor offers, not a real CPU).
    pub ignore_signature: bool,
}

/// Host form: `-vN` model names allowed, extra features listed without policy, signature shown.
pub fn decode_host(map: &CpuMap, data: &CpuidData) -> Result<CpuDef, CpuError> {
    decode_with(
        map,
        data,
        &DecodeOptions {
            kind: Some(CpuKind::Host),
            ..Default::default()
        },
    )
}

/// Guest form: unversioned model, `match='exact'`, `fallback='forbid'`, `require`/`disable`
/// policies.
pub fn decode_guest(map: &CpuMap, data: &CpuidData) -> Result<CpuDef, CpuError> {
    decode_guest_for(map, data, None)
}

/// Guest decode restricted to the models a hypervisor offers (and their blockers).
pub fn decode_guest_for(
    map: &CpuMap,
    data: &CpuidData,
    hv_models: Option<&[HypervisorModel]>,
) -> Result<CpuDef, CpuError> {
    let mut cpu = decode_with(
        map,
        data,
        &DecodeOptions {
            kind: Some(CpuKind::Guest),
            hv_models,
            ..Default::default()
        },
    )?;
    cpu.match_ = Some(CpuMatch::Exact);
    cpu.fallback = Some(Fallback::Forbid);
    Ok(cpu)
}

/// Intel parts whose TSX was withdrawn by microcode: libvirt ignores `hle`/`rtm` on them so
/// they decode to the same model whatever microcode the dump was taken with.
fn tsx_is_broken(vendor: Option<&str>, sig: Option<RawSignature>) -> bool {
    let Some(sig) = sig.filter(|_| vendor == Some("Intel")) else {
        return false;
    };
    sig.family == 6 && ((sig.model == 63 && sig.stepping < 4) || matches!(sig.model, 60 | 69 | 70))
}

/// The features a candidate would need on top of (`extra`) and taken away from (`missing`) it.
/// `removed` are the features the model's definition dropped (`removed NAME`) that the data
/// does not bring back: libvirt lists them as `disable` in every guest definition
/// (`virCPUx86DisableRemovedFeatures` in `x86DataToCPU`), so a baseline of CPUs that all
/// lack such a feature keeps it disabled, and they weigh on the candidate's cost like any
/// other disabled feature.
struct Candidate<'m> {
    model: &'m CpuModel,
    extra: FeatureSet,
    missing: FeatureSet,
    removed: Vec<usize>,
}

impl Candidate<'_> {
    /// Penalty of the disabled features in a guest definition: the first costs 2, each
    /// further one 1 more than the previous, so a model that must switch several features off
    /// loses to one that only adds a few. Host decode never has disabled features.
    fn disabled_penalty(&self, kind: CpuKind) -> usize {
        let n = self.missing.len() + self.removed.len();
        match kind {
            CpuKind::Host => n,
            CpuKind::Guest => (0..n).map(|k| 2 + k).sum(),
        }
    }

    /// `(total cost, disabled part)`: lower total wins, then fewer disabled.
    fn cost(&self, kind: CpuKind) -> (usize, usize) {
        let disabled = self.disabled_penalty(kind);
        (self.extra.len() + disabled, disabled)
    }
}

pub(crate) fn decode_with(
    map: &CpuMap,
    data: &CpuidData,
    opts: &DecodeOptions<'_>,
) -> Result<CpuDef, CpuError> {
    let vendor = data.vendor(map);
    let signature = data.signature().filter(|_| !opts.ignore_signature);
    let mut features = feature_set_in(map, data);
    decode_features(map, &mut features, vendor, signature, opts)
}

/// Decode of an already computed feature set (baseline intersects sets, not raw CPUID).
pub(crate) fn decode_features(
    map: &CpuMap,
    features: &mut FeatureSet,
    vendor: Option<&str>,
    signature: Option<RawSignature>,
    opts: &DecodeOptions<'_>,
) -> Result<CpuDef, CpuError> {
    let kind = opts.kind.unwrap_or(CpuKind::Guest);
    if tsx_is_broken(vendor, signature) {
        for name in ["hle", "rtm"] {
            if let Some(i) = map.feature_position(name) {
                features.remove(i);
            }
        }
    }
    let sig_matches =
        |m: &CpuModel| signature.is_some_and(|s| m.has_signature(s.family, s.model, s.stepping));
    let mut best: Option<Candidate<'_>> = None;
    for model in map.models().collect::<Vec<_>>().into_iter().rev() {
        let hv = match opts.hv_models {
            Some(list) => match list.iter().find(|h| h.name == model.name()) {
                Some(h) => Some(h),
                None => continue,
            },
            None => None,
        };
        if vendor.is_some() && model.vendor().is_some() && vendor != model.vendor() {
            continue;
        }
        let allowed = match kind {
            CpuKind::Host => model.decode_host(),
            CpuKind::Guest => model.decode_guest(),
        };
        if !allowed {
            continue;
        }
        let extra = features.difference(model.feature_set());
        let mut missing = model.feature_set().difference(features);
        for blocker in hv.map(|h| h.blockers.as_slice()).unwrap_or_default() {
            if let Some(i) = map
                .feature_position(blocker)
                .filter(|&i| !extra.contains(i))
            {
                missing.insert(i);
            }
        }
        if kind == CpuKind::Host && !missing.is_empty() {
            continue;
        }
        let removed = match kind {
            CpuKind::Host => Vec::new(),
            CpuKind::Guest => model
                .removed_features()
                .iter()
                .filter_map(|name| map.feature_position(name))
                .filter(|&i| !extra.contains(i) && !missing.contains(i))
                .collect(),
        };
        let candidate = Candidate {
            model,
            extra,
            missing,
            removed,
        };
        let is_preferred = opts.preferred.contains(&model.name());
        if is_preferred && opts.preferred.len() == 1 {
            best = Some(candidate);
            break;
        }
        let better = match &best {
            None => true,
            Some(current) if sig_matches(current.model) && !sig_matches(model) => false,
            Some(current) if sig_matches(model) && !sig_matches(current.model) => true,
            Some(current) => {
                let (cost, disabled) = candidate.cost(kind);
                let (current_cost, current_disabled) = current.cost(kind);
                cost < current_cost
                    || (cost == current_cost && disabled < current_disabled)
                    || (is_preferred && disabled < current_disabled)
            }
        };
        if better {
            best = Some(candidate);
        }
    }
    let best = best.ok_or(CpuError::NoSuitableModel)?;
    let (mut extra, mut missing, mut removed) = (best.extra, best.missing, best.removed);
    if opts.migratable {
        let pinned = map.non_migratable();
        extra.subtract(&pinned);
        missing.subtract(&pinned);
        removed.retain(|&i| !pinned.contains(i));
    }
    let mut cpu = CpuDef::new(kind);
    cpu.model = Some(best.model.name().to_string());
    cpu.vendor = vendor.map(str::to_string);
    let policy = |p| (kind == CpuKind::Guest).then_some(p);
    let refs = |set: &FeatureSet, p| {
        map.names_of(set)
            .into_iter()
            .map(move |name| CpuFeatureRef {
                name,
                policy: policy(p),
            })
    };
    cpu.features.extend(refs(&extra, Policy::Require));
    cpu.features.extend(refs(&missing, Policy::Disable));
    // After the map-ordered lists, in the model's own order, as libvirt appends them.
    cpu.features.extend(removed.iter().map(|&i| CpuFeatureRef {
        name: map.feature_at(i).name().to_string(),
        policy: policy(Policy::Disable),
    }));
    if kind == CpuKind::Host {
        cpu.arch = Some("x86_64".to_string());
        cpu.signature = signature.map(|s| CpuSignature {
            family: s.family,
            model: s.model,
            stepping: s.stepping,
        });
    }
    Ok(cpu)
}
