//! The runner's control protocol: one JSON request line from the client, one JSON reply line
//! from the runner. Typed on both ends (serde), so a field the client expects cannot silently
//! become a parse of free text, and a runner from another Vireo version answers with an error
//! the user can read instead of garbage.
//!
//! After a [`Reply::Console`] the connection carries the raw serial stream in both directions.

use serde::{Deserialize, Serialize};

/// What a client asks of a runner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "request")]
pub enum Request {
    /// Press the ACPI power button (answered at once; the guest decides).
    Shutdown,
    /// Force the VM off (answered once it has stopped).
    Destroy,
    /// Hard-reset the VM.
    Reboot,
    /// virsh's `reboot --mode acpi`: press the ACPI power button, and once the guest has
    /// powered off, start it again in the same runner process (the same id).
    AcpiReboot,
    /// Pause the vCPUs (answered once they are paused).
    Suspend,
    /// Resume paused vCPUs (answered once they run).
    Resume,
    /// The VM's state and size.
    Info,
    /// The concrete `<cpu>` the guest runs with.
    CpuXml,
    /// Attach to the serial console.
    Console,
    /// A PNG of the guest's screen (virsh's `screenshot`).
    Screenshot,
    /// Press Linux key codes together on the virtio keyboard, hold them `hold_ms`, release
    /// them in reverse order (virsh's `send-key`).
    SendKeys { codes: Vec<u16>, hold_ms: u32 },
    /// Move the virtio tablet's pointer to (`x`, `y`) on its 0..=32767 scale with `buttons`
    /// held (bit 0 left, 1 right, 2 middle).
    Pointer { x: u32, y: u32, buttons: u8 },
    /// Attach a viewer to the guest's screen: the connection then carries screen updates one
    /// way and keys, pointer and window size the other ([`super::screen`]).
    Screen,
}

impl Request {
    /// The verb as users know it (virsh's), for messages.
    pub fn verb(&self) -> &'static str {
        match self {
            Request::Shutdown => "shutdown",
            Request::Destroy => "destroy",
            Request::Reboot => "reset",
            Request::AcpiReboot => "reboot",
            Request::Suspend => "suspend",
            Request::Resume => "resume",
            Request::Info => "dominfo",
            Request::CpuXml => "cpu-xml",
            Request::Console => "console",
            Request::Screenshot => "screenshot",
            Request::SendKeys { .. } => "send-key",
            Request::Pointer { .. } => "pointer",
            Request::Screen => "screen",
        }
    }
}

/// A runner's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "reply")]
pub enum Reply {
    /// Done.
    Ok,
    /// The answer to [`Request::Info`].
    Info(RunnerInfo),
    /// The answer to [`Request::CpuXml`].
    CpuXml {
        /// The `<cpu>` element.
        xml: String,
    },
    /// The serial stream follows on this connection.
    Console,
    /// A PNG of `bytes` bytes follows on this connection.
    Screenshot {
        /// The PNG's length.
        bytes: u64,
    },
    /// Screen updates follow on this connection ([`super::screen`]).
    Screen,
    /// Refused or failed; the message says why.
    Error {
        /// For the user.
        message: String,
    },
}

/// What a runner reports about its VM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunnerInfo {
    /// The domain's name.
    pub name: String,
    /// `running`, `paused`, or how the VM ended while the runner winds down.
    pub state: String,
    /// vCPU count.
    pub vcpus: u32,
    /// Guest RAM in bytes.
    pub memory_bytes: u64,
    /// The named CPU model the guest was given; `None` for the host CPU.
    pub cpu_model: Option<String>,
    /// The runner's process id (for CPU use).
    pub runner_pid: u32,
    /// The domain's id while it runs (virsh's `Id` column), stable across `reboot`; 0 from a
    /// runner older than ids.
    #[serde(default)]
    pub id: u32,
    /// Seconds since the VM started.
    pub uptime_s: u64,
    /// Warnings from the start (e.g. more vCPUs than host CPUs).
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Where the VM's VNC server listens, as virsh's `domdisplay` prints it; `None` without
    /// one (or from a runner older than VNC).
    #[serde(default)]
    pub display: Option<String>,
}

impl RunnerInfo {
    /// virsh's `dominfo` layout.
    pub fn to_dominfo(&self) -> String {
        format!(
            "Id:             {}\nName:           {}\nState:          {}\nCPU(s):         {}\nMax memory:     {} KiB\n\
             Used memory:    {} KiB\nCPU model:      {}\nRunner PID:     {}\nUptime:         {} s\n",
            self.id,
            self.name,
            self.state,
            self.vcpus,
            self.memory_bytes >> 10,
            self.memory_bytes >> 10,
            self.cpu_model.as_deref().unwrap_or("(host CPU)"),
            self.runner_pid,
            self.uptime_s
        )
    }
}

/// One line of JSON, newline-terminated.
pub fn encode<T: Serialize>(message: &T) -> String {
    let mut line = serde_json::to_string(message).expect("protocol types always serialize");
    line.push('\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_replies_round_trip_as_one_line_each() {
        for request in [
            Request::Shutdown,
            Request::Info,
            Request::Console,
            Request::SendKeys {
                codes: vec![29, 56, 111],
                hold_ms: 100,
            },
        ] {
            let line = encode(&request);
            assert_eq!(line.matches('\n').count(), 1);
            assert_eq!(serde_json::from_str::<Request>(&line).unwrap(), request);
        }
        let info = Reply::Info(RunnerInfo {
            name: "a\nb".into(),
            state: "running".into(),
            vcpus: 2,
            memory_bytes: 64 << 20,
            cpu_model: None,
            runner_pid: 7,
            id: 3,
            uptime_s: 3,
            warnings: vec!["w".into()],
            display: Some("vnc://127.0.0.1:5900".into()),
        });
        let line = encode(&info);
        assert_eq!(line.matches('\n').count(), 1, "{line}");
        assert_eq!(serde_json::from_str::<Reply>(&line).unwrap(), info);
    }

    #[test]
    fn an_old_text_request_is_not_a_request() {
        assert!(serde_json::from_str::<Request>("info").is_err());
        assert!(serde_json::from_str::<Request>(r#"{"request":"format-disk"}"#).is_err());
    }

    #[test]
    fn dominfo_reads_like_virsh() {
        let info = RunnerInfo {
            name: "vm".into(),
            state: "paused".into(),
            vcpus: 1,
            memory_bytes: 128 << 20,
            cpu_model: Some("EPYC".into()),
            runner_pid: 1,
            id: 1,
            uptime_s: 0,
            warnings: vec![],
            display: None,
        };
        let text = info.to_dominfo();
        assert!(text.contains("State:          paused\n"), "{text}");
        assert!(text.contains("Max memory:     131072 KiB\n"), "{text}");
        assert!(text.contains("CPU model:      EPYC\n"), "{text}");
    }
}
