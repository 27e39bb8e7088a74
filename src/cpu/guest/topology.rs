//! Writing a VM's sockets × dies × cores × threads into the CPUID leaves guests read it from.
//!
//! APIC IDs are packed the way x86 CPUs pack them: thread bits lowest, then core, die and socket
//! bits, each field as wide as the next power of two of its count. Leaves 0x1, 0x4, 0xB and 0x1F
//! describe those widths for Intel-style guests; 0x8000_0008 and 0x8000_001E for AMD-style guests.
//! Per-vCPU fields (the APIC ID in 0x1, 0xB, 0x1F, 0x8000_001E) are filled by [`for_vcpu`].

use super::table::{CpuidRegister, GuestCpuid, GuestCpuidEntry};

/// How a VM's vCPUs are arranged. Every count is at least 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GuestTopology {
    /// Sockets (packages).
    pub sockets: u32,
    /// Dies per socket.
    pub dies: u32,
    /// Cores per die.
    pub cores: u32,
    /// Threads per core.
    pub threads: u32,
}

impl GuestTopology {
    /// `vcpus` single-threaded, single-core sockets: what a domain without `<topology>` gets,
    /// as libvirt and QEMU do.
    pub fn flat(vcpus: u32) -> Self {
        Self {
            sockets: vcpus.max(1),
            dies: 1,
            cores: 1,
            threads: 1,
        }
    }

    /// Total logical CPUs; `None` when the product does not fit in 32 bits.
    pub fn checked_vcpus(&self) -> Option<u32> {
        [self.dies, self.cores, self.threads]
            .into_iter()
            .try_fold(self.sockets, u32::checked_mul)
    }

    /// Total logical CPUs (saturating: a topology built by hand cannot make this panic; the
    /// domain bridge refuses products that do not fit, see [`Self::checked_vcpus`]).
    pub fn vcpus(&self) -> u32 {
        self.checked_vcpus().unwrap_or(u32::MAX)
    }

    fn thread_bits(&self) -> u32 {
        bits_for(self.threads)
    }

    fn core_bits(&self) -> u32 {
        bits_for(self.cores)
    }

    fn die_bits(&self) -> u32 {
        bits_for(self.dies)
    }

    /// Logical CPUs in one package.
    fn per_package(&self) -> u32 {
        self.dies
            .saturating_mul(self.cores)
            .saturating_mul(self.threads)
    }

    /// The APIC ID of the `index`th vCPU (0-based, threads varying fastest).
    pub fn apic_id(&self, index: u32) -> u32 {
        let thread = index % self.threads;
        let core = (index / self.threads) % self.cores;
        let die = (index / self.threads.saturating_mul(self.cores)) % self.dies;
        let socket = index / self.per_package();
        let core_shift = self.thread_bits();
        let die_shift = core_shift + self.core_bits();
        let socket_shift = die_shift + self.die_bits();
        (socket << socket_shift) | (die << die_shift) | (core << core_shift) | thread
    }
}

/// The width of a field that can hold `count` distinct values (0 for a count of 1).
fn bits_for(count: u32) -> u32 {
    count.max(1).next_power_of_two().trailing_zeros()
}

/// Level types of leaves 0xB and 0x1F (ECX[15:8]).
const LEVEL_SMT: u32 = 1;
const LEVEL_CORE: u32 = 2;
const LEVEL_DIE: u32 = 5;

/// Writes the package-wide topology fields into `table`. Call once per VM, before [`for_vcpu`].
pub fn apply(table: &mut GuestCpuid, topo: &GuestTopology) {
    apply_leaf1(table, topo);
    apply_leaf4(table, topo);
    write_extended_topology(table, topo, 0xb);
    if topo.dies > 1 {
        write_extended_topology(table, topo, 0x1f);
    } else {
        table.remove_leaf(0x1f);
    }
    if table.is_amd_like() {
        apply_amd(table, topo);
    }
}

fn apply_leaf1(table: &mut GuestCpuid, topo: &GuestTopology) {
    let per_package = topo.per_package().min(255);
    if let Some(leaf1) = table.get_mut(1, 0) {
        leaf1.ebx = (leaf1.ebx & !0x00ff_0000) | (per_package << 16);
    }
    // HTT: "more than one logical processor per package" is what makes guests read the count.
    table.set_bit(1, 0, CpuidRegister::Edx, 28, per_package > 1);
}

fn apply_leaf4(table: &mut GuestCpuid, topo: &GuestTopology) {
    let package_ids = (1u32 << (topo.thread_bits() + topo.core_bits() + topo.die_bits())) - 1;
    let core_ids = (1u32 << (topo.core_bits() + topo.die_bits())) - 1;
    let thread_ids = (1u32 << topo.thread_bits()) - 1;
    for entry in table_entries_of(table, 4) {
        let Some(e) = table.get_mut(4, entry) else {
            continue;
        };
        if e.eax & 0x1f == 0 {
            continue;
        }
        let level = (e.eax >> 5) & 0x7;
        let sharing = if level >= 3 { package_ids } else { thread_ids };
        e.eax = (e.eax & 0x0000_3fff) | (sharing.min(0xfff) << 14) | (core_ids.min(0x3f) << 26);
    }
}

fn table_entries_of(table: &GuestCpuid, leaf: u32) -> Vec<u32> {
    table
        .entries()
        .iter()
        .filter(|e| e.leaf == leaf)
        .map(|e| e.subleaf)
        .collect()
}

/// Leaf 0xB or 0x1F: one subleaf per level (SMT, core, and for 0x1F die), then a terminator.
fn write_extended_topology(table: &mut GuestCpuid, topo: &GuestTopology, leaf: u32) {
    table.remove_leaf(leaf);
    table.ensure_max_leaf(leaf);
    let mut levels = vec![
        (LEVEL_SMT, topo.thread_bits(), topo.threads),
        (
            LEVEL_CORE,
            topo.thread_bits() + topo.core_bits(),
            topo.threads.saturating_mul(topo.cores),
        ),
    ];
    if leaf == 0x1f {
        levels.push((
            LEVEL_DIE,
            topo.thread_bits() + topo.core_bits() + topo.die_bits(),
            topo.per_package(),
        ));
    } else {
        // Leaf 0xB has no die level: its core level spans everything below the package.
        levels[1].1 += topo.die_bits();
        levels[1].2 = topo.per_package();
    }
    let terminator = levels.len() as u32;
    for (subleaf, (kind, shift, count)) in levels.into_iter().enumerate() {
        let subleaf = subleaf as u32;
        table.set(GuestCpuidEntry {
            leaf,
            subleaf,
            index_significant: true,
            eax: shift,
            ebx: count & 0xffff,
            ecx: (kind << 8) | subleaf,
            edx: 0,
        });
    }
    let mut end = GuestCpuidEntry::zeroed(leaf, terminator, true);
    end.ecx = terminator;
    table.set(end);
}

fn apply_amd(table: &mut GuestCpuid, topo: &GuestTopology) {
    let per_package = topo.per_package();
    let id_bits = topo.thread_bits() + topo.core_bits() + topo.die_bits();
    if let Some(e) = table.get_mut(0x8000_0008, 0) {
        e.ecx = (e.ecx & !0xf0ff) | (id_bits << 12) | ((per_package - 1) & 0xff);
    }
    // CmpLegacy: the package has several cores, so legacy HTT counts cores, not threads.
    table.set_bit(0x8000_0001, 0, CpuidRegister::Ecx, 1, per_package > 1);
    if let Some(e) = table.get_mut(0x8000_001e, 0) {
        e.ebx = (e.ebx & !0xff00) | ((topo.threads - 1) << 8);
    }
}

/// The table vCPU number `index` is given: `table` (already passed through [`apply`]) with that
/// vCPU's APIC ID written where each leaf reports it.
pub fn for_vcpu(table: &GuestCpuid, topo: &GuestTopology, index: u32) -> GuestCpuid {
    let apic_id = topo.apic_id(index);
    let mut mine = table.clone();
    if let Some(e) = mine.get_mut(1, 0) {
        e.ebx = (e.ebx & 0x00ff_ffff) | ((apic_id & 0xff) << 24);
    }
    for leaf in [0xb, 0x1f] {
        for subleaf in table_entries_of(table, leaf) {
            if let Some(e) = mine.get_mut(leaf, subleaf) {
                e.edx = apic_id;
            }
        }
    }
    if let Some(e) = mine.get_mut(0x8000_001e, 0) {
        let core_in_package = apic_id >> topo.thread_bits();
        let node = apic_id >> (topo.thread_bits() + topo.core_bits());
        e.eax = apic_id;
        e.ebx = (e.ebx & !0xff) | (core_in_package & 0xff);
        e.ecx = (e.ecx & !0xff) | (node & 0xff);
    }
    mine
}

#[cfg(test)]
mod tests {
    use super::*;

    fn intel_table() -> GuestCpuid {
        let mut leaf0 = GuestCpuidEntry::zeroed(0, 0, false);
        leaf0.eax = 0xd;
        leaf0.ebx = u32::from_le_bytes(*b"Genu");
        leaf0.edx = u32::from_le_bytes(*b"ineI");
        leaf0.ecx = u32::from_le_bytes(*b"ntel");
        GuestCpuid::from_entries([leaf0, GuestCpuidEntry::zeroed(1, 0, false)])
    }

    const TWO_BY_TWO_BY_TWO: GuestTopology = GuestTopology {
        sockets: 2,
        dies: 1,
        cores: 2,
        threads: 2,
    };

    #[test]
    fn apic_ids_pack_thread_core_socket() {
        let ids: Vec<u32> = (0..8).map(|i| TWO_BY_TWO_BY_TWO.apic_id(i)).collect();
        assert_eq!(ids, vec![0, 1, 2, 3, 4, 5, 6, 7]);
        let odd = GuestTopology {
            sockets: 2,
            dies: 1,
            cores: 3,
            threads: 1,
        };
        let ids: Vec<u32> = (0..6).map(|i| odd.apic_id(i)).collect();
        assert_eq!(ids, vec![0, 1, 2, 4, 5, 6]);
    }

    #[test]
    fn leaf_0xb_describes_two_sockets_two_cores_two_threads() {
        let mut t = intel_table();
        apply(&mut t, &TWO_BY_TWO_BY_TWO);
        let t = for_vcpu(&t, &TWO_BY_TWO_BY_TWO, 5);
        let smt = t.get(0xb, 0).unwrap();
        assert_eq!((smt.eax, smt.ebx, smt.ecx, smt.edx), (1, 2, 0x100, 5));
        let core = t.get(0xb, 1).unwrap();
        assert_eq!((core.eax, core.ebx, core.ecx, core.edx), (2, 4, 0x201, 5));
        let end = t.get(0xb, 2).unwrap();
        assert_eq!((end.ebx, end.ecx >> 8), (0, 0));
        let leaf1 = t.get(1, 0).unwrap();
        assert_eq!(leaf1.ebx >> 24, 5);
        assert_eq!((leaf1.ebx >> 16) & 0xff, 4);
        assert!(t.bit(1, 0, CpuidRegister::Edx, 28));
    }

    #[test]
    fn dies_add_leaf_0x1f_and_raise_the_max_leaf() {
        let topo = GuestTopology {
            sockets: 1,
            dies: 2,
            cores: 2,
            threads: 1,
        };
        let mut t = intel_table();
        apply(&mut t, &topo);
        assert_eq!(t.get(0, 0).unwrap().eax, 0x1f);
        let die = t.get(0x1f, 2).unwrap();
        assert_eq!((die.eax, die.ebx, die.ecx >> 8), (2, 4, LEVEL_DIE));
    }

    #[test]
    fn amd_leaves_carry_core_count_and_apic_id() {
        let mut leaf0 = GuestCpuidEntry::zeroed(0, 0, false);
        leaf0.ebx = u32::from_le_bytes(*b"Auth");
        leaf0.edx = u32::from_le_bytes(*b"enti");
        leaf0.ecx = u32::from_le_bytes(*b"cAMD");
        let mut t = GuestCpuid::from_entries([
            leaf0,
            GuestCpuidEntry::zeroed(1, 0, false),
            GuestCpuidEntry::zeroed(0x8000_0008, 0, false),
            GuestCpuidEntry::zeroed(0x8000_001e, 0, false),
        ]);
        apply(&mut t, &TWO_BY_TWO_BY_TWO);
        let t = for_vcpu(&t, &TWO_BY_TWO_BY_TWO, 3);
        assert_eq!(t.get(0x8000_0008, 0).unwrap().ecx & 0xff, 3);
        let e = t.get(0x8000_001e, 0).unwrap();
        assert_eq!((e.eax, (e.ebx >> 8) & 0xff, e.ebx & 0xff), (3, 1, 1));
    }
}
