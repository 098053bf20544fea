//! The fault schedule of a chaos run, drawn from its seed, and its injection into the two
//! clusters and the proxies between them. One fault is active at a time, and each is healed
//! before the next: a process killed with `kill -9` is restarted on its files, a paused one
//! continued, a link restored.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::common::cluster::TestCluster;
use super::proxy::{FaultProxy, Link};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Master,
    Slave,
}

/// Which process of a cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The controller leader at the moment of the fault.
    Leader,
    /// The `i`-th node of the cluster (controllers first, then data nodes).
    Node(usize),
}

/// One fault. Proxy faults name a proxy in front of a master node, or all of them.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    Kill {
        side: Side,
        target: Target,
        down: Duration,
    },
    Pause {
        side: Side,
        target: Target,
        length: Duration,
    },
    DropConnections {
        proxy: Option<usize>,
    },
    Stall {
        proxy: Option<usize>,
        length: Duration,
    },
    Delay {
        proxy: Option<usize>,
        delay: Duration,
        length: Duration,
    },
    Cut {
        proxy: Option<usize>,
        length: Duration,
    },
    /// The slave cluster loses everything but its certificates (`kill -9` of every process,
    /// its homes emptied) and starts again after `down`: it attaches as a rebuilt slave and
    /// is seeded while the master writes.
    RebuildSlave {
        down: Duration,
    },
}

impl Fault {
    /// The kind, for the summary.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::Kill { .. } => "kill -9 and restart",
            Fault::Pause { .. } => "pause (SIGSTOP/SIGCONT)",
            Fault::DropConnections { .. } => "drop connections",
            Fault::Stall { .. } => "stall link",
            Fault::Delay { .. } => "delay link",
            Fault::Cut { .. } => "cut link",
            Fault::RebuildSlave { .. } => "rebuild the slave",
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let proxy = |p: &Option<usize>| match p {
            Some(i) => format!("proxy {i}"),
            None => "every proxy".to_string(),
        };
        match self {
            Fault::Kill { side, target, down } => {
                write!(f, "kill -9 {side:?} {target:?}, down {down:?}")
            }
            Fault::Pause {
                side,
                target,
                length,
            } => write!(f, "pause {side:?} {target:?} for {length:?}"),
            Fault::DropConnections { proxy: p } => write!(f, "drop connections of {}", proxy(p)),
            Fault::Stall { proxy: p, length } => write!(f, "stall {} for {length:?}", proxy(p)),
            Fault::Delay {
                proxy: p,
                delay,
                length,
            } => write!(f, "delay {} by {delay:?} for {length:?}", proxy(p)),
            Fault::Cut { proxy: p, length } => write!(f, "cut {} for {length:?}", proxy(p)),
            Fault::RebuildSlave { down } => {
                write!(f, "rebuild the slave from empty homes, down {down:?}")
            }
        }
    }
}

/// A fault and the pause before it.
#[derive(Clone, Debug)]
pub struct Step {
    pub gap: Duration,
    pub fault: Fault,
}

/// `n` faults drawn from `seed`, for clusters of `nodes` processes each and `proxies`
/// proxies.
pub fn schedule(seed: u64, n: usize, nodes: usize, proxies: usize) -> Vec<Step> {
    let mut rng = StdRng::seed_from_u64(seed);
    let ms = |rng: &mut StdRng, lo: u64, hi: u64| Duration::from_millis(rng.random_range(lo..hi));
    (0..n)
        .map(|_| {
            let side = if rng.random_bool(0.5) {
                Side::Master
            } else {
                Side::Slave
            };
            let target = if rng.random_bool(0.3) {
                Target::Leader
            } else {
                Target::Node(rng.random_range(0..nodes))
            };
            let proxy = if rng.random_bool(0.3) {
                None
            } else {
                Some(rng.random_range(0..proxies))
            };
            let fault = match rng.random_range(0..100) {
                0..35 => Fault::Kill {
                    side,
                    target,
                    down: ms(&mut rng, 0, 3000),
                },
                35..55 => Fault::Pause {
                    side,
                    target,
                    length: ms(&mut rng, 300, 4000),
                },
                55..65 => Fault::DropConnections { proxy },
                65..75 => Fault::Stall {
                    proxy,
                    length: ms(&mut rng, 300, 4000),
                },
                75..85 => Fault::Delay {
                    proxy,
                    delay: ms(&mut rng, 5, 200),
                    length: ms(&mut rng, 500, 4000),
                },
                85..98 => Fault::Cut {
                    proxy,
                    length: ms(&mut rng, 300, 5000),
                },
                _ => Fault::RebuildSlave {
                    down: ms(&mut rng, 0, 3000),
                },
            };
            Step {
                gap: ms(&mut rng, 300, 2500),
                fault,
            }
        })
        .collect()
}

/// The two clusters and the proxies in front of the master's nodes.
pub struct World {
    pub master: TestCluster,
    pub slave: TestCluster,
    pub proxies: Vec<FaultProxy>,
}

impl World {
    fn cluster(&mut self, side: Side) -> &mut TestCluster {
        match side {
            Side::Master => &mut self.master,
            Side::Slave => &mut self.slave,
        }
    }

    /// The alias a target names now (the first controller while there is no leader).
    fn resolve(&mut self, side: Side, target: Target) -> String {
        let cluster = self.cluster(side);
        match target {
            Target::Leader => cluster
                .leader()
                .unwrap_or_else(|| cluster.controllers()[0].clone()),
            Target::Node(i) => cluster.nodes[i].alias.clone(),
        }
    }

    fn proxies(&self, p: Option<usize>) -> Vec<&FaultProxy> {
        match p {
            Some(i) => vec![&self.proxies[i]],
            None => self.proxies.iter().collect(),
        }
    }

    /// Injects one fault and heals it; what it did, for the log.
    pub fn inject(&mut self, fault: &Fault) -> String {
        match fault {
            Fault::Kill { side, target, down } => {
                let alias = self.resolve(*side, *target);
                let cluster = self.cluster(*side);
                cluster.kill9(&alias);
                std::thread::sleep(*down);
                cluster.start(&alias);
                format!("killed and restarted {alias}")
            }
            Fault::Pause {
                side,
                target,
                length,
            } => {
                let alias = self.resolve(*side, *target);
                let cluster = self.cluster(*side);
                cluster.pause(&alias);
                std::thread::sleep(*length);
                cluster.resume(&alias);
                format!("paused {alias}")
            }
            Fault::DropConnections { proxy } => {
                self.proxies(*proxy)
                    .iter()
                    .for_each(|p| p.drop_connections());
                "dropped".into()
            }
            Fault::Stall { proxy, length } => self.link_for(*proxy, Link::Stall, *length),
            Fault::Delay {
                proxy,
                delay,
                length,
            } => self.link_for(*proxy, Link::Delay(*delay), *length),
            Fault::Cut { proxy, length } => self.link_for(*proxy, Link::Cut, *length),
            Fault::RebuildSlave { down } => {
                self.slave.rebuild(*down);
                "rebuilt and restarted the slave".into()
            }
        }
    }

    fn link_for(&self, p: Option<usize>, link: Link, length: Duration) -> String {
        let proxies = self.proxies(p);
        proxies.iter().for_each(|p| p.set(link));
        std::thread::sleep(length);
        proxies.iter().for_each(|p| p.set(Link::Pass));
        format!("{link:?} healed")
    }
}

/// Runs the schedule; the number of faults injected by kind.
pub fn run(world: &mut World, steps: &[Step]) -> BTreeMap<&'static str, usize> {
    let mut by_kind = BTreeMap::new();
    for (i, step) in steps.iter().enumerate() {
        std::thread::sleep(step.gap);
        let what = world.inject(&step.fault);
        eprintln!("chaos: fault {i}: {} ({what})", step.fault);
        *by_kind.entry(step.fault.kind()).or_default() += 1;
    }
    by_kind
}
