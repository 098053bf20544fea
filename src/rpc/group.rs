//! Which member of a raft group to call: the leader when it is known, otherwise each member in
//! turn. A follower that is asked answers with the leader's address ([`super::RemoteError`]'s
//! `leader`), which is taken as the next target; an unreachable member sends the caller on to
//! the next. Used by a data node's controller client and by a slave's puller (whose group is
//! the master's controllers).

use std::sync::Mutex;

use super::RpcError;

/// A raft group as its callers see it.
#[derive(Debug)]
pub struct Group {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    members: Vec<String>,
    leader: Option<String>,
    next: usize,
}

impl Group {
    /// A group known by the addresses of its members (`host:port`); at least one.
    pub fn new(members: Vec<String>) -> Self {
        Group {
            state: Mutex::new(State {
                members,
                leader: None,
                next: 0,
            }),
        }
    }

    /// The member to call next: the leader if known, else the next in turn.
    pub fn target(&self) -> String {
        let mut s = crate::lock(&self.state);
        if let Some(leader) = &s.leader {
            return leader.clone();
        }
        if s.members.is_empty() {
            return String::new();
        }
        let i = s.next % s.members.len();
        s.next = s.next.wrapping_add(1);
        s.members[i].clone()
    }

    /// `addr` is the leader (it answered a call only the leader answers, or said so).
    pub fn set_leader(&self, addr: Option<String>) {
        let mut s = crate::lock(&self.state);
        if let Some(a) = &addr {
            if !s.members.contains(a) {
                s.members.push(a.clone());
            }
        }
        s.leader = addr;
    }

    /// Takes what a failed call says about the leader: the leader it names, or none known.
    /// Returns whether the error named one (the call can go there at once).
    pub fn failed(&self, e: &RpcError) -> bool {
        let named = match e {
            RpcError::Remote(r) => r.leader.clone(),
            _ => None,
        };
        let redirected = named.is_some();
        self.set_leader(named);
        redirected
    }

    /// The group's members as its leader reported them (the leader stays the target).
    pub fn set_members(&self, members: Vec<String>) {
        if members.is_empty() {
            return;
        }
        let mut s = crate::lock(&self.state);
        s.members = members;
        if let Some(l) = s.leader.clone() {
            if !s.members.contains(&l) {
                s.members.push(l);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::RemoteError;

    #[test]
    fn the_leader_is_called_until_a_call_fails_then_each_member_in_turn() {
        let g = Group::new(vec!["a:1".into(), "b:1".into(), "c:1".into()]);
        assert_eq!((g.target(), g.target()), ("a:1".into(), "b:1".into()));
        let mut hint = RemoteError::retryable(
            crate::sqlstate::SqlState::CANNOT_CONNECT_NOW,
            "not the leader",
        );
        hint.leader = Some("d:1".into());
        assert!(g.failed(&RpcError::Remote(hint)));
        assert_eq!((g.target(), g.target()), ("d:1".into(), "d:1".into()));
        assert!(!g.failed(&RpcError::Ticket));
        // A named leader joins the members: without a leader, each is called in turn.
        let next: Vec<String> = (0..4).map(|_| g.target()).collect();
        assert_eq!(next, ["c:1", "d:1", "a:1", "b:1"]);
        g.set_leader(Some("b:1".into()));
        g.set_members(vec!["x:1".into()]);
        assert_eq!(g.target(), "b:1");
        // The members the leader reported, and the leader itself, in turn.
        g.set_leader(None);
        let next: Vec<String> = (0..2).map(|_| g.target()).collect();
        assert_eq!(next, ["x:1", "b:1"]);
    }
}
