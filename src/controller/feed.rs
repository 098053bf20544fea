//! The metadata change feed: how a data node keeps its own copy of the controller's metadata.
//!
//! The state machine records every applied log entry (index and command, `None` for blank and
//! membership entries) in a bounded in-memory [`Feed`]. A watcher that holds the metadata at
//! applied index `v` asks for what came after `v`: if the feed still covers `v + 1` it gets the
//! commands and applies them itself ([`Metadata::apply`] is deterministic, so its copy equals
//! the controller's); otherwise (it is too far behind, or the controller restarted or
//! installed a snapshot) it gets the whole metadata.
//!
//! Wire format: [`MetadataUpdate`] travels as JSON inside the RPC envelope (version 1).

use std::collections::VecDeque;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::metadata::{Command, Metadata};

/// How many recent entries the feed keeps.
pub const FEED_CAPACITY: usize = 8192;

/// Recently applied entries, oldest first, with contiguous indices.
#[derive(Debug, Default)]
pub struct Feed {
    entries: VecDeque<(u64, Option<Command>)>,
}

impl Feed {
    /// Records an applied entry. An index that does not follow the last one restarts the feed.
    pub fn push(&mut self, index: u64, cmd: Option<Command>) {
        if self
            .entries
            .back()
            .is_some_and(|(last, _)| *last + 1 != index)
        {
            self.entries.clear();
        }
        if self.entries.len() == FEED_CAPACITY {
            self.entries.pop_front();
        }
        self.entries.push_back((index, cmd));
    }

    /// Forgets everything (a snapshot replaced the state).
    pub fn reset(&mut self) {
        self.entries.clear();
    }

    /// The entries after `applied_index` up to `upto`, if the feed still has all of them.
    pub fn since(&self, applied_index: u64, upto: u64) -> Option<Vec<(u64, Option<Command>)>> {
        if upto <= applied_index {
            return Some(Vec::new());
        }
        let first = self.entries.front()?.0;
        if first > applied_index + 1 {
            return None;
        }
        let out: Vec<_> = self
            .entries
            .iter()
            .filter(|(i, _)| *i > applied_index && *i <= upto)
            .cloned()
            .collect();
        (out.last().map(|(i, _)| *i) == Some(upto)).then_some(out)
    }
}

/// What a watcher receives.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum MetadataUpdate {
    /// Entries to apply in order.
    Changes(Vec<(u64, Option<Command>)>),
    /// The whole metadata.
    Snapshot(Box<Metadata>),
}

impl MetadataUpdate {
    /// Applies the update to a copy of the metadata; returns whether anything changed.
    pub fn apply_to(self, metadata: &mut Arc<Metadata>) -> bool {
        match self {
            MetadataUpdate::Snapshot(m) => {
                if m.applied_index < metadata.applied_index {
                    return false;
                }
                *metadata = Arc::new(*m);
                true
            }
            MetadataUpdate::Changes(entries) => {
                let mut changed = false;
                for (index, cmd) in entries {
                    if index != metadata.applied_index + 1 {
                        continue;
                    }
                    let m = Arc::make_mut(metadata);
                    // As on the controllers: the applied index first, then the command.
                    m.applied_index = index;
                    if let Some(cmd) = cmd {
                        m.apply(&cmd);
                    }
                    changed = true;
                }
                changed
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covers_contiguous_ranges_only() {
        let mut feed = Feed::default();
        for i in 5..=10 {
            feed.push(i, None);
        }
        assert_eq!(feed.since(4, 10).map(|v| v.len()), Some(6));
        assert_eq!(feed.since(7, 10).map(|v| v.len()), Some(3));
        assert!(feed.since(3, 10).is_none(), "entry 4 is missing");
        assert!(feed.since(7, 11).is_none(), "entry 11 not recorded yet");
        feed.push(12, None);
        assert!(feed.since(9, 12).is_none(), "a gap restarts the feed");
        assert_eq!(feed.since(11, 12).map(|v| v.len()), Some(1));
    }

    #[test]
    fn a_replica_applies_changes_in_order() {
        let mut leader = Metadata::default();
        let mut feed = Feed::default();
        let cmds = [
            Command::SyncNodes {
                datanodes: vec![("dn1".into(), "127.0.0.1:1".into())],
            },
            Command::SyncNodes {
                datanodes: vec![("dn2".into(), "127.0.0.1:2".into())],
            },
        ];
        for (i, cmd) in cmds.iter().enumerate() {
            leader.applied_index = i as u64 + 1;
            leader.apply(cmd);
            feed.push(leader.applied_index, Some(cmd.clone()));
        }
        let mut replica = Arc::new(Metadata::default());
        let update = MetadataUpdate::Changes(feed.since(0, 2).unwrap());
        assert!(update.apply_to(&mut replica));
        assert_eq!(*replica, leader);
        // A duplicate delivery changes nothing.
        let again = MetadataUpdate::Changes(feed.since(0, 2).unwrap());
        assert!(!again.apply_to(&mut replica));
    }
}
