//! Errors of CPU operations: each names the offending thing and, where possible, the fix.

use super::map::CpuMapError;

#[derive(Debug, thiserror::Error)]
pub enum CpuError {
    #[error("{0}")]
    InvalidXml(String),
    #[error("invalid CPU definition: {0}")]
    InvalidCpu(String),
    #[error("unknown CPU model '{0}' (see `vireoctl cpu-models` for the known ones)")]
    UnknownModel(String),
    #[error("unknown CPU feature '{0}' (see `vireoctl cpu-features` for the known ones)")]
    UnknownFeature(String),
    #[error("unknown CPU vendor '{0}' (known: Intel, AMD, Hygon)")]
    UnknownVendor(String),
    #[error("CPU vendors do not match: {0}")]
    VendorMismatch(String),
    #[error(
        "no <cpu> element found: expected <cpu> elements, a domain XML (<domain><cpu>), host \
         capabilities XML (<capabilities><host><cpu>) or domain capabilities XML with a \
         supported host-model CPU"
    )]
    NoCpuFound,
    #[error("no CPU definitions given; baseline needs at least one <cpu>")]
    NoCpus,
    #[error("the CPUs are incompatible: they share no feature")]
    IncompatibleCpus,
    #[error("no CPU model in the map fits the given CPU data")]
    NoSuitableModel,
    #[error(transparent)]
    Map(#[from] CpuMapError),
}
