//! What the machine is: cores, memory, CPU, and the file system a path lives on.

use serde::{Deserialize, Serialize};
use std::path::Path;

/// The machine the figures were measured on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Machine {
    /// Cores available to this process.
    pub nproc: usize,
    /// `MemTotal` in MiB.
    pub mem_total_mib: Option<u64>,
    /// First `model name` of /proc/cpuinfo.
    pub cpu: Option<String>,
    /// The kernel (`/proc/sys/kernel/osrelease`).
    pub kernel: Option<String>,
}

impl Machine {
    /// Reads /proc.
    pub fn probe() -> Machine {
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        Machine {
            nproc: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            mem_total_mib: meminfo
                .lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .map(|kib| kib / 1024),
            cpu: cpuinfo
                .lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).trim().to_string()),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .ok()
                .map(|s| s.trim().to_string()),
        }
    }
}

/// The mount a path is on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Disk {
    /// The directory measured.
    pub path: String,
    /// Device (`/dev/vda`, `tmpfs`, …).
    pub device: String,
    /// File system type (`ext4`, `tmpfs`, …).
    pub fs_type: String,
    /// Where it is mounted.
    pub mount_point: String,
}

impl Disk {
    /// The longest mount point of /proc/mounts that contains `path`.
    pub fn of(path: &Path) -> Option<Disk> {
        let path = path.canonicalize().ok()?;
        let mounts = std::fs::read_to_string("/proc/mounts").ok()?;
        mounts
            .lines()
            .filter_map(|l| {
                let mut f = l.split_whitespace();
                Some((f.next()?, f.next()?, f.next()?))
            })
            .filter(|(_, mp, _)| path.starts_with(mp))
            .max_by_key(|(_, mp, _)| mp.len())
            .map(|(dev, mp, fs)| Disk {
                path: path.display().to_string(),
                device: dev.to_string(),
                fs_type: fs.to_string(),
                mount_point: mp.to_string(),
            })
    }

    /// Whether the path is in memory rather than on a disk.
    pub fn is_memory(&self) -> bool {
        matches!(self.fs_type.as_str(), "tmpfs" | "ramfs")
    }
}

impl std::fmt::Display for Disk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({} {} mounted at {})",
            self.path, self.device, self.fs_type, self.mount_point
        )
    }
}
