//! Security: what a client that proves nothing can reach, tried as an attacker would through
//! real processes and real clients. Every attack is refused and the node keeps serving; the
//! positive paths (a member node, a trusted slave, a TLS client) keep working.

#[path = "../common/mod.rs"]
mod common;

mod default_password;
mod http;
mod limits;
mod nodes;
mod pgwire;
