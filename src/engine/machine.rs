//! One incarnation of a VM: the KVM VM, its memory, devices and vCPU threads. A guest reboot
//! with `on_reboot='restart'` throws the machine away and builds a fresh one from the same
//! configuration, which is the simplest way to give the guest a truly clean reset.

use std::sync::mpsc::Sender;
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::Instant;

use kvm_bindings::{KVM_PIT_SPEAKER_DUMMY, kvm_pit_config};
use kvm_ioctls::{Kvm, VcpuFd, VmFd};
use vm_memory::{GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion};

use crate::cpu::guest::GuestCpuid;
use crate::cpu::guest::topology::{self, GuestTopology};
use crate::engine::boot::{acpi, cpu_state, kernel};
use crate::engine::config::VmConfig;
use crate::engine::console::Console;
use crate::engine::devices::{DeviceManager, Frontends};
use crate::engine::error::EngineError;
use crate::engine::layout::ram_regions;
use crate::engine::run_control::{Desired, RunControl};
use crate::engine::vcpu::{self, VcpuContext, VcpuReport};
use crate::host::kvm::{from_kvm_cpuid, open_kvm, to_kvm_cpuid};

/// The TSS KVM needs on Intel hosts, just below the BIOS area at the top of 4 GiB.
const KVM_TSS_ADDRESS: usize = 0xfffb_d000;
/// Upper bound on CPUID entries KVM returns.
const MAX_CPUID_ENTRIES: usize = kvm_bindings::KVM_MAX_CPUID_ENTRIES;

/// A built machine. Field order is drop order: vCPUs and the VM fd go before guest memory.
pub struct Machine {
    vcpus: Vec<(u32, VcpuFd)>,
    threads: Vec<JoinHandle<()>>,
    control: Arc<RunControl>,
    devices: Arc<DeviceManager>,
    /// What KVM holds for each vCPU after KVM_SET_CPUID2 (read back with KVM_GET_CPUID2).
    programmed_cpuid: Vec<GuestCpuid>,
    _vm: Arc<VmFd>,
    _memory: GuestMemoryMmap,
}

/// The CPUID table vCPU `index` of a VM with `config` is programmed with.
pub fn cpuid_for_vcpu(config: &VmConfig, index: u32) -> GuestCpuid {
    let mut table = config.cpuid.clone();
    topology::apply(&mut table, &config.topology);
    topology::for_vcpu(&table, &config.topology, index)
}

impl Machine {
    /// Builds the machine; nothing runs until [`Machine::start`].
    pub fn build(
        config: &VmConfig,
        console: &Console,
        frontends: &Frontends,
    ) -> Result<Self, EngineError> {
        let kvm = open_kvm()?;
        check_vcpu_limits(&kvm, &config.topology)?;
        let vm = Arc::new(kvm.create_vm().map_err(EngineError::kvm("KVM_CREATE_VM"))?);
        vm.set_tss_address(KVM_TSS_ADDRESS)
            .map_err(EngineError::kvm("KVM_SET_TSS_ADDR"))?;
        vm.create_irq_chip()
            .map_err(EngineError::kvm("KVM_CREATE_IRQCHIP"))?;
        vm.create_pit2(kvm_pit_config {
            flags: KVM_PIT_SPEAKER_DUMMY,
            ..Default::default()
        })
        .map_err(EngineError::kvm("KVM_CREATE_PIT2"))?;

        let memory =
            GuestMemoryMmap::from_ranges(&ram_regions(config.memory_bytes)).map_err(|e| {
                EngineError::Memory {
                    bytes: config.memory_bytes,
                    reason: e.to_string(),
                }
            })?;
        advise_huge_pages(&memory);
        register_memory(&vm, &memory)?;

        cpu_state::write_boot_tables(&memory)?;
        let loaded = kernel::load(&memory, config.memory_bytes, &config.boot)?;
        let apic_ids: Vec<u32> = (0..config.vcpus())
            .map(|i| config.topology.apic_id(i))
            .collect();
        acpi::write(&memory, &apic_ids, config.ps2_keyboard)?;

        // Every image is opened (and locked) before anything runs, so a bad disk fails the
        // start with its own error.
        let disks = config
            .disks
            .iter()
            .map(|disk| Ok((disk.clone(), crate::engine::block::open(disk)?)))
            .collect::<Result<Vec<_>, EngineError>>()?;
        let devices = Arc::new(DeviceManager::new(
            vm.clone(),
            console,
            &memory,
            disks,
            &config.nics,
            frontends,
        )?);
        let mut vcpus = Vec::new();
        let mut programmed_cpuid = Vec::new();
        for (index, apic_id) in apic_ids.iter().enumerate() {
            let index = index as u32;
            let vcpu = vm
                .create_vcpu(u64::from(*apic_id))
                .map_err(EngineError::kvm("KVM_CREATE_VCPU"))?;
            let table = cpuid_for_vcpu(config, index);
            vcpu.set_cpuid2(&to_kvm_cpuid(&table).map_err(|e| EngineError::Config(e.to_string()))?)
                .map_err(EngineError::kvm("KVM_SET_CPUID2"))?;
            let read_back = vcpu
                .get_cpuid2(MAX_CPUID_ENTRIES)
                .map_err(EngineError::kvm("KVM_GET_CPUID2"))?;
            programmed_cpuid.push(from_kvm_cpuid(&read_back));
            cpu_state::set_boot_msrs(&vcpu)?;
            cpu_state::set_fpu(&vcpu)?;
            cpu_state::set_lapic_lints(&vcpu)?;
            if index == 0 {
                cpu_state::set_long_mode_entry(&vcpu, loaded.entry)?;
            }
            vcpus.push((index, vcpu));
        }
        Ok(Self {
            vcpus,
            threads: Vec::new(),
            control: Arc::new(RunControl::new()),
            devices,
            programmed_cpuid,
            _vm: vm,
            _memory: memory,
        })
    }

    /// Starts one thread per vCPU.
    pub fn start(
        &mut self,
        config: &VmConfig,
        reports: &Sender<VcpuReport>,
        first_exit: &Arc<OnceLock<Instant>>,
    ) -> Result<(), EngineError> {
        crate::engine::run_control::install_kick_handler();
        for (index, vcpu) in self.vcpus.drain(..) {
            let ctx = VcpuContext {
                index,
                devices: self.devices.clone(),
                control: self.control.clone(),
                reports: reports.clone(),
                first_exit: first_exit.clone(),
                pin: config
                    .vcpu_pins
                    .iter()
                    .find(|p| p.vcpu == index)
                    .map(|p| p.host_cpus.clone()),
            };
            let what = format!("{} vcpu {index}", config.name);
            let thread = std::thread::Builder::new()
                .name(format!("vcpu{index}"))
                .spawn(move || vcpu::run(vcpu, ctx))
                .map_err(|cause| EngineError::Thread { what, cause })?;
            self.threads.push(thread);
        }
        Ok(())
    }

    /// Pauses (`Pause`), resumes (`Run`) or stops (`Stop`) the vCPUs; returns once they obeyed.
    pub fn request(&self, desired: Desired) {
        self.control.request(desired, &self.threads);
    }

    /// Stops and joins every vCPU thread.
    pub fn stop(&mut self) {
        self.request(Desired::Stop);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }

    /// The shared devices (for console input and the power button).
    pub fn devices(&self) -> &Arc<DeviceManager> {
        &self.devices
    }

    /// KVM's copy of each vCPU's CPUID table.
    pub fn programmed_cpuid(&self) -> &[GuestCpuid] {
        &self.programmed_cpuid
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        self.stop();
    }
}

fn check_vcpu_limits(kvm: &Kvm, topo: &GuestTopology) -> Result<(), EngineError> {
    let vcpus = topo.vcpus();
    if vcpus == 0 {
        return Err(EngineError::Config("a VM needs at least one vCPU".into()));
    }
    let max = kvm.get_max_vcpus();
    if vcpus as usize > max {
        return Err(EngineError::Config(format!(
            "{vcpus} vCPUs requested but this host's KVM allows at most {max}; lower <vcpu>"
        )));
    }
    let highest_id = topo.apic_id(vcpus - 1) as usize;
    let max_id = kvm.get_max_vcpu_id();
    if highest_id >= max_id {
        return Err(EngineError::Config(format!(
            "the topology needs APIC ID {highest_id} but KVM allows IDs below {max_id}; use a denser <topology>"
        )));
    }
    Ok(())
}

/// Asks for transparent huge pages on guest RAM, as QEMU does: KVM then maps the guest with
/// 2 MiB pages where it can, so the guest's memory accesses miss the TLB far less (on most
/// distributions THP is on only where asked for, `madvise` mode). Best effort: a kernel
/// without THP keeps 4 KiB pages.
fn advise_huge_pages(memory: &GuestMemoryMmap) {
    for region in memory.iter() {
        // SAFETY: the range is a live mapping owned by `memory`; MADV_HUGEPAGE only changes
        // how the kernel backs it, never its contents.
        let rc = unsafe {
            libc::madvise(
                region.as_ptr().cast(),
                region.len() as usize,
                libc::MADV_HUGEPAGE,
            )
        };
        if rc != 0 {
            tracing::debug!(
                "MADV_HUGEPAGE on guest memory: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}

/// Registers every region of `memory` with KVM. The caller must keep `memory` alive for as long
/// as `vm` exists.
pub(crate) fn register_memory(vm: &VmFd, memory: &GuestMemoryMmap) -> Result<(), EngineError> {
    for (slot, region) in memory.iter().enumerate() {
        let region_info = kvm_bindings::kvm_userspace_memory_region {
            slot: slot as u32,
            flags: 0,
            guest_phys_addr: region.start_addr().0,
            memory_size: region.len(),
            userspace_addr: region.as_ptr() as u64,
        };
        // SAFETY: the host range is a live mmap owned by `memory`, which callers keep alive
        // for as long as the VM fd (the Machine declares the fd first, so it is dropped first).
        unsafe { vm.set_user_memory_region(region_info) }
            .map_err(EngineError::kvm("KVM_SET_USER_MEMORY_REGION"))?;
    }
    Ok(())
}
