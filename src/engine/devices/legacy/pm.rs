//! ACPI fixed-hardware power management: the PM1a event block (status + enable) and control
//! register the FADT points at. It gives the guest a power button (graceful shutdown) and a way
//! to power off (writing the `_S5_` sleep type with SLP_EN).

/// PM1a event block: 2 bytes status, then 2 bytes enable.
pub const PM1_EVT_PORT: u16 = 0x600;
/// PM1a control register.
pub const PM1_CNT_PORT: u16 = 0x604;
/// The ISA IRQ of the SCI.
pub const SCI_IRQ: u32 = 9;
/// The sleep type the DSDT's `_S5_` names, i.e. what the guest writes to power off.
pub const S5_SLEEP_TYPE: u16 = 5;

const PWRBTN: u16 = 1 << 8;
const SCI_EN: u16 = 1;
const SLP_EN: u16 = 1 << 13;
const SLP_TYP_SHIFT: u16 = 10;
const SLP_TYP_MASK: u16 = 0x7 << SLP_TYP_SHIFT;

/// The PM1 registers.
#[derive(Debug, Default)]
pub struct PowerManagement {
    status: u16,
    enable: u16,
    control: u16,
}

/// What a register write asks of the VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PmAction {
    /// Nothing beyond the register change.
    None,
    /// The guest entered S5: power off.
    PowerOff,
}

impl PowerManagement {
    /// Whether the SCI line should be high.
    pub fn sci_level(&self) -> bool {
        self.status & self.enable != 0
    }

    /// Presses the power button (the guest sees PWRBTN_STS and, if it enabled it, an SCI).
    pub fn press_power_button(&mut self) {
        self.status |= PWRBTN;
    }

    /// Reads `data.len()` bytes at `port`.
    pub fn read(&self, port: u16, data: &mut [u8]) {
        let regs = self.register_bytes();
        for (i, byte) in data.iter_mut().enumerate() {
            let offset = usize::from(port.wrapping_sub(PM1_EVT_PORT)) + i;
            *byte = regs.get(offset).copied().unwrap_or(0);
        }
    }

    /// Writes `data` at `port`.
    pub fn write(&mut self, port: u16, data: &[u8]) -> PmAction {
        let mut regs = self.register_bytes();
        let written_status_before = u16::from_le_bytes([regs[0], regs[1]]);
        for (i, byte) in data.iter().enumerate() {
            let offset = usize::from(port.wrapping_sub(PM1_EVT_PORT)) + i;
            if let Some(slot) = regs.get_mut(offset) {
                *slot = *byte;
            }
        }
        // Status bits are write-1-to-clear: the bytes written at the status offsets are a mask.
        let status_written = port < PM1_EVT_PORT + 2;
        if status_written {
            let mask = u16::from_le_bytes([regs[0], regs[1]]);
            self.status = written_status_before & !mask;
        }
        self.enable = u16::from_le_bytes([regs[2], regs[3]]);
        if port >= PM1_CNT_PORT {
            self.control = u16::from_le_bytes([regs[4], regs[5]]) & !SLP_EN;
            let value = u16::from_le_bytes([regs[4], regs[5]]);
            if value & SLP_EN != 0 && (value & SLP_TYP_MASK) >> SLP_TYP_SHIFT == S5_SLEEP_TYPE {
                return PmAction::PowerOff;
            }
        }
        PmAction::None
    }

    /// Status, enable and control as the guest sees them, little endian. SCI_EN always reads
    /// as set: there is no SMI handler, ACPI mode is permanent.
    fn register_bytes(&self) -> [u8; 6] {
        let [s0, s1] = self.status.to_le_bytes();
        let [e0, e1] = self.enable.to_le_bytes();
        let [c0, c1] = (self.control | SCI_EN).to_le_bytes();
        [s0, s1, e0, e1, c0, c1]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_button_raises_sci_only_when_enabled_and_clears_on_write() {
        let mut pm = PowerManagement::default();
        pm.press_power_button();
        assert!(!pm.sci_level());
        pm.write(PM1_EVT_PORT + 2, &PWRBTN.to_le_bytes());
        assert!(pm.sci_level());
        let mut status = [0; 2];
        pm.read(PM1_EVT_PORT, &mut status);
        assert_eq!(u16::from_le_bytes(status), PWRBTN);
        pm.write(PM1_EVT_PORT, &PWRBTN.to_le_bytes());
        assert!(!pm.sci_level());
    }

    #[test]
    fn writing_s5_with_slp_en_powers_off() {
        let mut pm = PowerManagement::default();
        let sleep = (S5_SLEEP_TYPE << SLP_TYP_SHIFT) | SLP_EN;
        assert_eq!(
            pm.write(PM1_CNT_PORT, &sleep.to_le_bytes()),
            PmAction::PowerOff
        );
        let s3 = (3 << SLP_TYP_SHIFT) | SLP_EN;
        assert_eq!(pm.write(PM1_CNT_PORT, &s3.to_le_bytes()), PmAction::None);
    }

    #[test]
    fn sci_en_reads_as_set() {
        let pm = PowerManagement::default();
        let mut cnt = [0; 2];
        pm.read(PM1_CNT_PORT, &mut cnt);
        assert_eq!(u16::from_le_bytes(cnt) & SCI_EN, SCI_EN);
    }
}
