//! This host's identity (PROTOCOL.md §5): the kernel's node name from
//! gethostname(2), cut by the writer's rule. Never `$HOSTNAME`, never
//! `/etc/hostname`: two processes of one host must always agree.

use std::os::unix::ffi::OsStrExt;

use crate::record::Hostname;

/// This host's name as a writer stores it and a reader compares it.
pub fn local_hostname() -> Result<Hostname, nix::errno::Errno> {
    let raw = nix::unistd::gethostname()?;
    Ok(Hostname::truncated(raw.as_bytes()))
}
