//! What the process asks of the operating system when it starts.

/// Descriptors kept for what is not a client connection: the listener,
/// the stores, Redis, logs, a model's HTTP connections.
const RESERVED_FILES: u64 = 64;

/// Raises the open-file soft limit to the hard limit: every connection
/// holds a descriptor, and the usual soft limit of 1,024 would refuse
/// connections long before `max_connections`. Warns when even the hard
/// limit is too low for it.
pub fn raise_open_files(max_connections: usize) {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(soft) => {
            let wanted = (max_connections as u64).saturating_add(RESERVED_FILES);
            if soft < wanted {
                log::warn!(soft:%, max_connections:%, reachable:% = soft.saturating_sub(RESERVED_FILES); "open_files_limit_low");
            } else {
                log::info!(soft:%; "open_files_limit");
            }
        }
        Err(err) => log::warn!(error:% = err; "open_files_limit_unchanged"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_soft_limit_rises_to_the_hard_one() {
        super::raise_open_files(1);
        let (soft, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).expect("getrlimit");
        assert_eq!(soft, hard.min(soft.max(hard)), "soft {soft}, hard {hard}");
        assert!(soft >= 1024.min(hard));
    }
}
