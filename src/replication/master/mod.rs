//! The master cluster's side of replication: the task data its data nodes keep for slaves
//! ([`task_data`]), what those data nodes serve slaves ([`serve`]), and the controller's
//! answer to a slave's pull ([`pull`]). Tasks themselves are queued by the controller with
//! the commit that creates them ([`crate::replication::model::master`]).

pub mod pull;
pub mod serve;
pub mod task;
pub mod task_data;
