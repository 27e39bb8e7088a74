//! This machine's own CPUID (the CPUID instruction over every leaf and subleaf), plus the
//! feature-bearing MSRs when `/dev/cpu/*/msr` is readable.

use crate::cpu::{CpuidData, CpuidLeaf, MsrValue};

/// IA32_ARCH_CAPABILITIES: the MSR whose bits libvirt's map names (`mds-no`, `taa-no`, …).
pub const MSR_ARCH_CAPABILITIES: u32 = 0x10a;

/// Reads this CPU's CPUID leaves and, when permitted, its arch-capabilities MSR.
/// Never fails: on a non-x86 host the result is empty, unreadable MSRs are left out.
pub fn read_host_cpuid() -> CpuidData {
    let mut data = CpuidData {
        leaves: enumerate_leaves(query),
        msrs: Vec::new(),
    };
    let has_arch_caps = data.leaf(7, 0).is_some_and(|l| l.edx & (1 << 29) != 0);
    if has_arch_caps {
        match read_msr(0, MSR_ARCH_CAPABILITIES) {
            Ok(value) => data.msrs.push(MsrValue {
                index: MSR_ARCH_CAPABILITIES,
                eax: value as u32,
                edx: (value >> 32) as u32,
            }),
            Err(e) => tracing::debug!(
                "arch-capabilities MSR not readable ({e}); load the msr module and run as root to include it"
            ),
        }
    }
    data
}

#[cfg(target_arch = "x86_64")]
fn query(leaf: u32, subleaf: u32) -> CpuidLeaf {
    let r = std::arch::x86_64::__cpuid_count(leaf, subleaf);
    CpuidLeaf {
        eax_in: leaf,
        ecx_in: subleaf,
        eax: r.eax,
        ebx: r.ebx,
        ecx: r.ecx,
        edx: r.edx,
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn query(leaf: u32, subleaf: u32) -> CpuidLeaf {
    CpuidLeaf {
        eax_in: leaf,
        ecx_in: subleaf,
        ..CpuidLeaf::default()
    }
}

/// Every valid leaf/subleaf, found the way the architecture documents them: the basic range up
/// to leaf 0's EAX, the extended range up to 0x80000000's EAX, and per-leaf subleaf rules.
pub(crate) fn enumerate_leaves(query: impl Fn(u32, u32) -> CpuidLeaf) -> Vec<CpuidLeaf> {
    let mut out = Vec::new();
    for base in [0u32, 0x8000_0000] {
        let max = query(base, 0).eax;
        if max < base || max - base > 0xff {
            continue;
        }
        for leaf in base..=max {
            out.extend(subleaves(&query, leaf));
        }
    }
    out
}

fn subleaves(query: &impl Fn(u32, u32) -> CpuidLeaf, leaf: u32) -> Vec<CpuidLeaf> {
    let first = query(leaf, 0);
    let mut out = vec![first];
    let mut push_while = |keep: &dyn Fn(&CpuidLeaf) -> bool| {
        let mut sub = 1;
        let mut last = first;
        while keep(&last) && sub < 64 {
            last = query(leaf, sub);
            if !keep(&last) {
                break;
            }
            out.push(last);
            sub += 1;
        }
    };
    match leaf {
        // Cache parameters: valid while the cache type field is non-zero.
        4 | 0x8000_001d => push_while(&|l: &CpuidLeaf| l.eax & 0x1f != 0),
        // Topology: valid while the level type field is non-zero.
        0xb | 0x1f => push_while(&|l: &CpuidLeaf| l.ecx & 0xff00 != 0),
        // Leaves whose subleaf 0 EAX is the highest subleaf.
        7 | 0x14 | 0x17 | 0x18 | 0x1d | 0x20 | 0x23 | 0x24 => {
            for sub in 1..=first.eax.min(63) {
                out.push(query(leaf, sub));
            }
        }
        // XSAVE state components: subleaf 1, then those the masks announce.
        0xd => {
            let one = query(leaf, 1);
            out.push(one);
            for sub in 2..64u32 {
                let (a, b) = if sub < 32 {
                    (first.eax, one.ecx)
                } else {
                    (first.edx, one.edx)
                };
                if (a | b) & (1 << (sub % 32)) != 0 {
                    out.push(query(leaf, sub));
                }
            }
        }
        0xf | 0x12 => out.push(query(leaf, 1)),
        0x10 | 0x8000_0020 => out.extend((1..=3).map(|sub| query(leaf, sub))),
        _ => {}
    }
    out
}

/// Reads MSR `index` of CPU `cpu` through the msr driver.
fn read_msr(cpu: u32, index: u32) -> std::io::Result<u64> {
    use std::os::unix::fs::FileExt;
    let file = std::fs::File::open(format!("/dev/cpu/{cpu}/msr"))?;
    let mut buf = [0u8; 8];
    file.read_exact_at(&mut buf, u64::from(index))?;
    Ok(u64::from_le_bytes(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enumerates_subleaves_by_the_documented_rules() {
        // A fake CPU: max basic leaf 0xd, leaf 4 has two caches, leaf 7 has subleaves 0-1,
        // leaf 0xd announces component 2, extended range empty.
        let fake = |leaf: u32, sub: u32| {
            let mut l = CpuidLeaf {
                eax_in: leaf,
                ecx_in: sub,
                ..CpuidLeaf::default()
            };
            match (leaf, sub) {
                (0, _) => l.eax = 0xd,
                (4, 0 | 1) => l.eax = 1,
                (7, 0) => l.eax = 1,
                (0xd, 0) => l.eax = 0b111,
                (0x8000_0000, _) => l.eax = 0x8000_0000,
                _ => {}
            }
            l
        };
        let leaves = enumerate_leaves(fake);
        let keys: Vec<(u32, u32)> = leaves.iter().map(|l| (l.eax_in, l.ecx_in)).collect();
        assert!(keys.contains(&(4, 1)) && !keys.contains(&(4, 2)));
        assert!(keys.contains(&(7, 1)) && !keys.contains(&(7, 2)));
        assert!(keys.contains(&(0xd, 2)) && !keys.contains(&(0xd, 3)));
        assert!(keys.contains(&(0x8000_0000, 0)));
        assert_eq!(keys.iter().filter(|k| k.0 <= 0xd).count(), 14 + 1 + 1 + 2);
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn this_host_reports_a_known_vendor() {
        let map = crate::cpu::CpuMap::builtin().unwrap();
        let data = read_host_cpuid();
        assert!(data.leaf(0, 0).is_some());
        assert!(crate::cpu::decode_host(&map, &data).is_ok());
    }
}
