//! The CMOS real-time clock at ports 0x70/0x71 (an MC146818). A guest reads the wall-clock time
//! from it at boot ("Unable to read current time from RTC" without it, and Linux's rtc_cmos
//! driver probes it). It tells UTC (libvirt's default `<clock offset='utc'/>`); a guest that sets
//! the clock (hwclock, NTP's 11-minute mode) moves an offset, never the host's time. Periodic,
//! alarm and update interrupts are not generated: Linux keeps time with kvm-clock or the TSC.

use std::time::{SystemTime, UNIX_EPOCH};

/// The index port (bit 7 of a write masks NMIs on real hardware; ignored here).
pub const INDEX_PORT: u16 = 0x70;
/// The data port.
pub const DATA_PORT: u16 = 0x71;

const SECONDS: u8 = 0x00;
const MINUTES: u8 = 0x02;
const HOURS: u8 = 0x04;
const WEEKDAY: u8 = 0x06;
const DAY: u8 = 0x07;
const MONTH: u8 = 0x08;
const YEAR: u8 = 0x09;
const STATUS_A: u8 = 0x0a;
const STATUS_B: u8 = 0x0b;
const STATUS_C: u8 = 0x0c;
const STATUS_D: u8 = 0x0d;
const CENTURY: u8 = 0x32;

/// Status B: updates halted while the guest sets the clock.
const B_SET: u8 = 0x80;
/// Status B: binary instead of BCD.
const B_BINARY: u8 = 0x04;
/// Status B: 24-hour instead of 12-hour.
const B_24H: u8 = 0x02;
/// Status D: the battery is good and the time valid.
const D_VALID: u8 = 0x80;

/// A calendar time in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Civil {
    year: i64,
    month: u8,
    day: u8,
    hour: u8,
    minute: u8,
    second: u8,
    /// 1 = Sunday, as the RTC counts.
    weekday: u8,
}

/// Days since 1970-01-01 → (year, month, day), after Howard Hinnant's `civil_from_days`.
fn civil_from_days(z: i64) -> (i64, u8, u8) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// (year, month, day) → days since 1970-01-01, after Howard Hinnant's `days_from_civil`.
fn days_from_civil(year: i64, month: u8, day: u8) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

impl Civil {
    fn from_unix(secs: i64) -> Self {
        let days = secs.div_euclid(86_400);
        let rest = secs.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        Self {
            year,
            month,
            day,
            hour: (rest / 3600) as u8,
            minute: (rest / 60 % 60) as u8,
            second: (rest % 60) as u8,
            // 1970-01-01 was a Thursday (5 in the RTC's 1 = Sunday count).
            weekday: ((days + 4).rem_euclid(7) + 1) as u8,
        }
    }

    fn to_unix(self) -> i64 {
        days_from_civil(self.year, self.month, self.day) * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
    }
}

fn host_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The CMOS RTC and its 128 bytes of NVRAM.
pub struct Cmos {
    index: u8,
    ram: [u8; 128],
    /// Guest time minus host time, in seconds.
    offset: i64,
    now: fn() -> i64,
}

impl Default for Cmos {
    fn default() -> Self {
        Self::with_clock(host_now)
    }
}

impl Cmos {
    fn with_clock(now: fn() -> i64) -> Self {
        let mut ram = [0u8; 128];
        ram[usize::from(STATUS_A)] = 0x26; // 32.768 kHz time base, 1024 Hz rate
        ram[usize::from(STATUS_B)] = B_24H;
        ram[usize::from(STATUS_D)] = D_VALID;
        Self {
            index: 0,
            ram,
            offset: 0,
            now,
        }
    }

    fn binary(&self) -> bool {
        self.ram[usize::from(STATUS_B)] & B_BINARY != 0
    }

    fn encode(&self, v: u8) -> u8 {
        if self.binary() {
            v
        } else {
            ((v / 10) << 4) | (v % 10)
        }
    }

    fn decode(&self, v: u8) -> u8 {
        if self.binary() {
            v
        } else {
            (v >> 4) * 10 + (v & 0x0f)
        }
    }

    fn encode_hour(&self, hour: u8) -> u8 {
        if self.ram[usize::from(STATUS_B)] & B_24H != 0 {
            return self.encode(hour);
        }
        let pm = if hour >= 12 { 0x80 } else { 0 };
        let h12 = match hour % 12 {
            0 => 12,
            h => h,
        };
        self.encode(h12) | pm
    }

    fn decode_hour(&self, v: u8) -> u8 {
        if self.ram[usize::from(STATUS_B)] & B_24H != 0 {
            return self.decode(v);
        }
        let h12 = self.decode(v & 0x7f) % 12;
        if v & 0x80 != 0 { h12 + 12 } else { h12 }
    }

    /// Latches the running clock into the time registers.
    fn latch(&mut self) {
        let t = Civil::from_unix((self.now)() + self.offset);
        let year = t.year.rem_euclid(100) as u8;
        let century = t.year.div_euclid(100).clamp(0, 99) as u8;
        let values = [
            (SECONDS, self.encode(t.second)),
            (MINUTES, self.encode(t.minute)),
            (HOURS, self.encode_hour(t.hour)),
            (WEEKDAY, self.encode(t.weekday)),
            (DAY, self.encode(t.day)),
            (MONTH, self.encode(t.month)),
            (YEAR, self.encode(year)),
            (CENTURY, self.encode(century)),
        ];
        for (reg, v) in values {
            self.ram[usize::from(reg)] = v;
        }
    }

    /// The time the guest wrote into the registers while updates were halted.
    fn written_time(&self) -> Civil {
        let r = |reg: u8| self.ram[usize::from(reg)];
        Civil {
            year: i64::from(self.decode(r(CENTURY))) * 100 + i64::from(self.decode(r(YEAR))),
            month: self.decode(r(MONTH)).clamp(1, 12),
            day: self.decode(r(DAY)).clamp(1, 31),
            hour: self.decode_hour(r(HOURS)),
            minute: self.decode(r(MINUTES)),
            second: self.decode(r(SECONDS)),
            weekday: self.decode(r(WEEKDAY)),
        }
    }

    fn read_register(&mut self, reg: u8) -> u8 {
        let halted = self.ram[usize::from(STATUS_B)] & B_SET != 0;
        match reg {
            SECONDS | MINUTES | HOURS | WEEKDAY | DAY | MONTH | YEAR | CENTURY if !halted => {
                self.latch();
                self.ram[usize::from(reg)]
            }
            // Update-in-progress never reads as set: the registers are always consistent.
            STATUS_A => self.ram[usize::from(STATUS_A)] & 0x7f,
            STATUS_C => std::mem::take(&mut self.ram[usize::from(STATUS_C)]),
            r => self.ram[usize::from(r & 0x7f)],
        }
    }

    fn write_register(&mut self, reg: u8, value: u8) {
        match reg {
            STATUS_A => self.ram[usize::from(STATUS_A)] = value & 0x7f,
            STATUS_B => {
                let was_halted = self.ram[usize::from(STATUS_B)] & B_SET != 0;
                if !was_halted && value & B_SET != 0 {
                    self.latch();
                }
                self.ram[usize::from(STATUS_B)] = value;
                if was_halted && value & B_SET == 0 {
                    self.offset = self.written_time().to_unix() - (self.now)();
                }
            }
            STATUS_C | STATUS_D => {}
            r => self.ram[usize::from(r & 0x7f)] = value,
        }
    }

    /// A guest `in`.
    pub fn read(&mut self, port: u16) -> u8 {
        if port == DATA_PORT {
            self.read_register(self.index)
        } else {
            0xff
        }
    }

    /// A guest `out`.
    pub fn write(&mut self, port: u16, value: u8) {
        if port == INDEX_PORT {
            self.index = value & 0x7f;
        } else {
            self.write_register(self.index, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-12-01 22:14:40 UTC, a Tuesday.
    fn fixed() -> i64 {
        1_796_163_280
    }

    fn reg(c: &mut Cmos, r: u8) -> u8 {
        c.write(INDEX_PORT, r);
        c.read(DATA_PORT)
    }

    #[test]
    fn calendar_conversions_round_trip() {
        for secs in [0, 951_782_400, 1_796_163_280, 4_102_444_800, -86_400] {
            assert_eq!(Civil::from_unix(secs).to_unix(), secs);
        }
        let t = Civil::from_unix(fixed());
        assert_eq!((t.year, t.month, t.day), (2026, 12, 1));
        assert_eq!((t.hour, t.minute, t.second), (22, 14, 40));
        assert_eq!(t.weekday, 3, "Tuesday");
    }

    #[test]
    fn reads_the_host_time_in_bcd_24_hour() {
        let mut c = Cmos::with_clock(fixed);
        assert_eq!(reg(&mut c, SECONDS), 0x40);
        assert_eq!(reg(&mut c, MINUTES), 0x14);
        assert_eq!(reg(&mut c, HOURS), 0x22);
        assert_eq!(reg(&mut c, DAY), 0x01);
        assert_eq!(reg(&mut c, MONTH), 0x12);
        assert_eq!(reg(&mut c, YEAR), 0x26);
        assert_eq!(reg(&mut c, CENTURY), 0x20);
        assert_eq!(reg(&mut c, STATUS_D), D_VALID);
        assert_eq!(reg(&mut c, STATUS_A) & 0x80, 0, "never update-in-progress");
    }

    #[test]
    fn binary_and_12_hour_modes() {
        let mut c = Cmos::with_clock(fixed);
        c.write(INDEX_PORT, STATUS_B);
        c.write(DATA_PORT, B_BINARY);
        assert_eq!(reg(&mut c, SECONDS), 40);
        assert_eq!(reg(&mut c, HOURS), 0x80 | 10, "10 PM");
    }

    #[test]
    fn a_guest_setting_the_clock_moves_only_its_offset() {
        let mut c = Cmos::with_clock(fixed);
        c.write(INDEX_PORT, STATUS_B);
        c.write(DATA_PORT, B_24H | B_SET);
        for (r, v) in [
            (YEAR, 0x27),
            (HOURS, 0x08),
            (MINUTES, 0x00),
            (SECONDS, 0x00),
        ] {
            c.write(INDEX_PORT, r);
            c.write(DATA_PORT, v);
        }
        c.write(INDEX_PORT, STATUS_B);
        c.write(DATA_PORT, B_24H);
        assert_eq!(reg(&mut c, YEAR), 0x27);
        assert_eq!(reg(&mut c, HOURS), 0x08);
        assert_eq!(reg(&mut c, DAY), 0x01);
    }
}
