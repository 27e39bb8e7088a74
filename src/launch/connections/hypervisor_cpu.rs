//! `virConnectCompareHypervisorCPU` and `virConnectBaselineHypervisorCPU`, which the `virt`
//! crate (0.4) binds in `virt::sys` but does not wrap. These are the two calls that answer
//! "can this hypervisor give a guest that CPU" (rather than the host CPU's own features), so
//! they are called here directly, with the same conventions as the crate's own wrappers.

use std::ffi::{CStr, CString, c_char};
use std::ptr;

use virt::connect::Connect;
use virt::error::Error as VirtError;
use virt::sys;

/// Which hypervisor on the host is asked: libvirt's emulator/arch/machine/virttype arguments;
/// `None` lets libvirt choose its default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HypervisorSpec {
    pub emulator: Option<String>,
    pub arch: Option<String>,
    pub machine: Option<String>,
    pub virttype: Option<String>,
}

/// The answer of a compare: libvirt's virCPUCompareResult.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Comparison {
    Identical,
    Superset,
    /// The hypervisor cannot give the CPU; `features` are the ones it lacks, as libvirt names
    /// them (empty when libvirt gave only a reason), `message` is libvirt's whole sentence.
    Incompatible {
        features: Vec<String>,
        message: String,
    },
}

/// `text` as a C string. Callers refuse text with NUL bytes first
/// ([`super::libvirt::LibvirtConnection`] does), as XML cannot hold them; one that slips
/// through is cut there, which libvirt then reports as bad XML.
fn cstring(text: &str) -> Result<CString, VirtError> {
    let end = text.find('\0').unwrap_or(text.len());
    Ok(CString::new(&text[..end]).expect("no NUL before `end`"))
}

fn opt_cstring(text: &Option<String>) -> Result<Option<CString>, VirtError> {
    text.as_deref().map(cstring).transpose()
}

fn opt_ptr(text: &Option<CString>) -> *const c_char {
    text.as_ref().map_or(ptr::null(), |t| t.as_ptr())
}

/// Compares `cpu_xml` (a `<cpu>` element) with what the hypervisor can give. Asks libvirt to
/// fail on incompatibility, because only that error names the missing features.
pub fn compare(
    conn: &Connect,
    spec: &HypervisorSpec,
    cpu_xml: &str,
) -> Result<Comparison, VirtError> {
    let emulator = opt_cstring(&spec.emulator)?;
    let arch = opt_cstring(&spec.arch)?;
    let machine = opt_cstring(&spec.machine)?;
    let virttype = opt_cstring(&spec.virttype)?;
    let xml = cstring(cpu_xml)?;
    // SAFETY: `conn` holds an open connection; every string pointer is either null (libvirt's
    // "default") or a NUL-terminated CString that lives until after the call returns.
    let result = unsafe {
        sys::virConnectCompareHypervisorCPU(
            conn.as_ptr(),
            opt_ptr(&emulator),
            opt_ptr(&arch),
            opt_ptr(&machine),
            opt_ptr(&virttype),
            xml.as_ptr(),
            sys::VIR_CONNECT_COMPARE_CPU_FAIL_INCOMPATIBLE,
        )
    };
    match result {
        sys::VIR_CPU_COMPARE_IDENTICAL => Ok(Comparison::Identical),
        sys::VIR_CPU_COMPARE_SUPERSET => Ok(Comparison::Superset),
        sys::VIR_CPU_COMPARE_INCOMPATIBLE => Ok(Comparison::Incompatible {
            features: Vec::new(),
            message: "incompatible".into(),
        }),
        _ => {
            let err = VirtError::last_error();
            if err.code() == virt::error::ErrorNumber::CpuIncompatible {
                Ok(Comparison::Incompatible {
                    features: missing_features(err.message()),
                    message: err.message().to_owned(),
                })
            } else {
                Err(err)
            }
        }
    }
}

/// The features libvirt's incompatibility message lists ("… does not provide required
/// features: avx512f, rdseed").
pub fn missing_features(message: &str) -> Vec<String> {
    let Some((_, list)) = message.split_once("required features:") else {
        return Vec::new();
    };
    list.split(',')
        .map(|f| f.trim().trim_end_matches('.').to_owned())
        .filter(|f| !f.is_empty())
        .collect()
}

/// The CPU every one of `cpu_xmls` can run, as the hypervisor can give it: a `<cpu>` element.
/// `migratable` leaves out features that block migration; `expand` lists every feature.
pub fn baseline(
    conn: &Connect,
    spec: &HypervisorSpec,
    cpu_xmls: &[String],
    migratable: bool,
    expand: bool,
) -> Result<String, VirtError> {
    let emulator = opt_cstring(&spec.emulator)?;
    let arch = opt_cstring(&spec.arch)?;
    let machine = opt_cstring(&spec.machine)?;
    let virttype = opt_cstring(&spec.virttype)?;
    let owned: Vec<CString> = cpu_xmls
        .iter()
        .map(|x| cstring(x))
        .collect::<Result<_, _>>()?;
    let mut pointers: Vec<*const c_char> = owned.iter().map(|c| c.as_ptr()).collect();
    let mut flags = 0;
    if migratable {
        flags |= sys::VIR_CONNECT_BASELINE_CPU_MIGRATABLE;
    }
    if expand {
        flags |= sys::VIR_CONNECT_BASELINE_CPU_EXPAND_FEATURES;
    }
    // SAFETY: as in `compare`; `pointers` holds `owned.len()` valid NUL-terminated strings,
    // all alive until the call returns. libvirt only reads them.
    let result = unsafe {
        sys::virConnectBaselineHypervisorCPU(
            conn.as_ptr(),
            opt_ptr(&emulator),
            opt_ptr(&arch),
            opt_ptr(&machine),
            opt_ptr(&virttype),
            pointers.as_mut_ptr(),
            pointers.len() as u32,
            flags,
        )
    };
    if result.is_null() {
        return Err(VirtError::last_error());
    }
    // SAFETY: libvirt returned a NUL-terminated string that the caller owns and must free
    // with free(); it is copied before being freed and not used after.
    let text = unsafe { CStr::from_ptr(result) }
        .to_string_lossy()
        .into_owned();
    // SAFETY: `result` came from libvirt's malloc and is freed exactly once.
    unsafe { libc::free(result.cast()) };
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_features_come_from_libvirts_message() {
        assert_eq!(
            missing_features(
                "the CPU is incompatible with host CPU: Host CPU does not provide required \
                 features: avx512f, rdseed"
            ),
            ["avx512f", "rdseed"]
        );
        assert!(missing_features("the CPU is incompatible: vendor mismatch").is_empty());
    }
}
