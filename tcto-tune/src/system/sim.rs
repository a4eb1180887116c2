//! Simulated backends: an in-memory host. Dry-run runs the real transaction
//! against these, seeded from the live state; tests inject faults into them.

use std::collections::BTreeMap;
use std::io;

use super::{Files, Firewall, Host, Sockets, Sysctls, SystemError};
use crate::names::SysctlName;
use crate::notrack::{FilterChain, NotrackTable};
use crate::state::{ListenSocket, SysctlReading, SystemState};

/// In-memory sysctls (what `read_state` reads of a simulated host; the
/// faults a transaction meets are [`super::SimEffects`]').
#[derive(Debug, Clone, Default)]
pub struct SimSysctls {
    /// Current readings.
    pub values: BTreeMap<String, SysctlReading>,
}

impl SimSysctls {
    /// Seed from a state snapshot.
    pub fn from_state(state: &SystemState) -> Self {
        Self {
            values: state.sysctls.clone(),
        }
    }
}

impl Sysctls for SimSysctls {
    fn read(&self, key: &SysctlName) -> Result<Option<String>, SystemError> {
        Ok(self.values.get(key.as_str()).and_then(|r| r.value.clone()))
    }

    fn writable(&self, key: &SysctlName) -> bool {
        self.values.get(key.as_str()).is_some_and(|r| r.writable)
    }

    fn write(&mut self, key: &SysctlName, value: &str) -> Result<(), SystemError> {
        let err = |errno| SystemError::SysctlWrite {
            key: key.to_string(),
            value: value.to_owned(),
            source: io::Error::from_raw_os_error(errno),
        };
        let stored = value.to_owned();
        match self.values.get_mut(key.as_str()) {
            None | Some(SysctlReading { value: None, .. }) => Err(err(libc::ENOENT)),
            Some(r) if !r.writable => Err(err(libc::EACCES)),
            Some(r) => {
                r.value = Some(stored);
                Ok(())
            }
        }
    }
}

/// Fixed listening sockets.
#[derive(Debug, Clone, Default)]
pub struct SimSockets(pub Vec<ListenSocket>);

impl Sockets for SimSockets {
    fn listeners(&self) -> Result<Vec<ListenSocket>, SystemError> {
        Ok(self.0.clone())
    }
}

/// Fixed host facts.
#[derive(Debug, Clone, Default)]
pub struct SimHost {
    /// `MemTotal`.
    pub mem_total_bytes: Option<u64>,
    /// Initial namespace or not.
    pub in_initial_netns: bool,
}

impl Host for SimHost {
    fn mem_total_bytes(&self) -> Result<Option<u64>, SystemError> {
        Ok(self.mem_total_bytes)
    }
    fn in_initial_netns(&self) -> Result<bool, SystemError> {
        Ok(self.in_initial_netns)
    }
}

/// Fixed nftables state.
#[derive(Debug, Clone, Default)]
pub struct SimFirewall {
    /// The `inet tcto_tune` table.
    pub table: Option<NotrackTable>,
    /// Other tables' filter chains.
    pub chains: Vec<FilterChain>,
}

impl Firewall for SimFirewall {
    fn notrack_table(&self) -> Result<Option<NotrackTable>, SystemError> {
        Ok(self.table.clone())
    }
    fn filter_chains(&self) -> Result<Vec<FilterChain>, SystemError> {
        Ok(self.chains.clone())
    }

    fn write_table(&mut self, table: Option<&NotrackTable>) -> Result<(), SystemError> {
        // What the kernel refuses of a NOTRACK table, the simulation refuses.
        if let Some(e) = table.and_then(super::nft::kernel_refusal) {
            return Err(e);
        }
        self.table = table.cloned();
        Ok(())
    }
}

/// In-memory files, by absolute path.
#[derive(Debug, Clone, Default)]
pub struct SimFiles(pub BTreeMap<std::path::PathBuf, crate::change::Value>);

impl Files for SimFiles {
    fn read(&mut self, path: &std::path::Path) -> Result<crate::change::Value, SystemError> {
        Ok(self
            .0
            .get(path)
            .cloned()
            .unwrap_or(crate::change::Value::Absent))
    }

    fn write(
        &mut self,
        path: &std::path::Path,
        value: &crate::change::Value,
    ) -> Result<(), SystemError> {
        match value {
            crate::change::Value::Absent => self.0.remove(path),
            v => self.0.insert(path.to_owned(), v.clone()),
        };
        Ok(())
    }
}
