//! Locality: where a task's input lives, how close a worker is to it, and how long a stage waits
//! for a closer worker before it settles for a farther one.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::{Conf, Master};

/// How close the worker that runs a task is to the task's input, best first (Spark's
/// `TaskLocality`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Locality {
    /// The worker itself holds the input (the cached block, the shuffle output it reads).
    #[serde(rename = "PROCESS_LOCAL")]
    ProcessLocal,
    /// Another worker of the same process or host holds it, or the input split or checkpoint
    /// is local to the worker's host.
    #[serde(rename = "NODE_LOCAL")]
    NodeLocal,
    /// The task has no preferred location (a generated source): any worker is as good.
    #[serde(rename = "NO_PREF")]
    NoPref,
    /// Anywhere else: the input is fetched from another process or recomputed.
    #[serde(rename = "ANY")]
    Any,
}

impl Locality {
    /// Every level, best first.
    pub const ALL: [Locality; 4] = [
        Locality::ProcessLocal,
        Locality::NodeLocal,
        Locality::NoPref,
        Locality::Any,
    ];

    /// The level's name as Spark prints it (`PROCESS_LOCAL`...).
    pub fn name(self) -> &'static str {
        match self {
            Locality::ProcessLocal => "PROCESS_LOCAL",
            Locality::NodeLocal => "NODE_LOCAL",
            Locality::NoPref => "NO_PREF",
            Locality::Any => "ANY",
        }
    }
}

impl fmt::Display for Locality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The delay-scheduling waits (`ember.locality.wait`, `.process`, `.node`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalityWaits {
    /// How long PROCESS_LOCAL is held before NODE_LOCAL is allowed.
    pub process: Duration,
    /// How long NODE_LOCAL is held before ANY is allowed.
    pub node: Duration,
}

impl LocalityWaits {
    /// The waits a configuration sets (validated when set, so never malformed here).
    pub fn from_conf(conf: &Conf) -> LocalityWaits {
        let base = conf
            .get_duration("ember.locality.wait")
            .unwrap_or(Duration::from_secs(3));
        LocalityWaits {
            process: conf
                .get_duration("ember.locality.wait.process")
                .unwrap_or(base),
            node: conf
                .get_duration("ember.locality.wait.node")
                .unwrap_or(base),
        }
    }

    /// The same wait at every level.
    pub fn uniform(wait: Duration) -> LocalityWaits {
        LocalityWaits {
            process: wait,
            node: wait,
        }
    }

    /// How long a stage holds `level` before loosening it (levels with no wait: zero).
    pub fn at(&self, level: Locality) -> Duration {
        match level {
            Locality::ProcessLocal => self.process,
            Locality::NodeLocal => self.node,
            Locality::NoPref | Locality::Any => Duration::ZERO,
        }
    }
}

/// Where workers live: processes of `threads` workers each (timely numbers workers process by
/// process), and the host of each process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Topology {
    threads: usize,
    hosts: Vec<String>,
}

impl Topology {
    /// The topology of a configuration's master.
    pub(crate) fn from_conf(conf: &Conf) -> Topology {
        match conf.master() {
            Ok(Master::Cluster { hosts, threads, .. }) => Topology {
                threads: threads.max(1),
                hosts: hosts
                    .iter()
                    .map(|h| h.rsplit_once(':').map_or(h.as_str(), |(host, _)| host))
                    .map(str::to_string)
                    .collect(),
            },
            Ok(Master::Local(n)) => Topology::local(n),
            Err(_) => Topology::local(1),
        }
    }

    /// One process of `threads` workers on this host.
    pub(crate) fn local(threads: usize) -> Topology {
        Topology {
            threads: threads.max(1),
            hosts: vec!["localhost".into()],
        }
    }

    /// The process worker `w` runs in.
    pub(crate) fn process_of(&self, w: usize) -> usize {
        w / self.threads
    }

    /// The host worker `w` runs on.
    pub(crate) fn host_of(&self, w: usize) -> &str {
        self.hosts
            .get(self.process_of(w))
            .map_or("localhost", String::as_str)
    }

    /// Whether two workers share a process.
    pub(crate) fn same_process(&self, a: usize, b: usize) -> bool {
        self.process_of(a) == self.process_of(b)
    }

    /// Whether two workers share a process or a host.
    pub(crate) fn same_node(&self, a: usize, b: usize) -> bool {
        self.same_process(a, b) || self.host_of(a) == self.host_of(b)
    }
}

/// Where a task's input lives, as the scheduler sees it when the stage starts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Placement {
    /// Workers that hold the input: cached block holders, the owner of the shuffle output, the
    /// writer of a checkpoint partition.
    pub workers: Vec<usize>,
    /// Hosts where the input is local (input splits whose store knows block hosts).
    pub hosts: Vec<String>,
    /// The task can only run in this process (its shuffle output is readable only there).
    pub process: Option<usize>,
    /// The cached block the task reads, when it is cached somewhere: fetched or recomputed by
    /// a task running in another process.
    pub block: Option<CachedBlock>,
}

/// A cached block known to the registry, with what the fetch-or-recompute rule weighs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CachedBlock {
    /// The RDD and partition.
    pub id: (usize, usize),
    /// Its size in the holder's memory or on its disk.
    pub bytes: u64,
    /// How long computing it took when it was cached.
    pub compute: Duration,
}

impl Placement {
    /// Whether worker `w` may run the task at all.
    pub(crate) fn allows(&self, w: usize, topo: &Topology) -> bool {
        self.process.is_none_or(|p| topo.process_of(w) == p)
    }

    /// The locality a task with this placement has on worker `w`.
    pub(crate) fn level_on(&self, w: usize, topo: &Topology) -> Locality {
        if self.workers.contains(&w) {
            Locality::ProcessLocal
        } else if self.workers.iter().any(|&h| topo.same_node(h, w))
            || self.hosts.iter().any(|h| h == topo.host_of(w))
        {
            Locality::NodeLocal
        } else if self.workers.is_empty() && self.hosts.is_empty() {
            Locality::NoPref
        } else {
            Locality::Any
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_follow_workers_processes_and_hosts() {
        let topo = Topology {
            threads: 2,
            hosts: vec!["a".into(), "a".into(), "b".into()],
        };
        let p = Placement {
            workers: vec![1],
            ..Placement::default()
        };
        assert_eq!(p.level_on(1, &topo), Locality::ProcessLocal);
        assert_eq!(p.level_on(0, &topo), Locality::NodeLocal);
        assert_eq!(p.level_on(3, &topo), Locality::NodeLocal, "same host a");
        assert_eq!(p.level_on(4, &topo), Locality::Any);
        assert_eq!(Placement::default().level_on(4, &topo), Locality::NoPref);
        let split = Placement {
            hosts: vec!["b".into()],
            ..Placement::default()
        };
        assert_eq!(split.level_on(5, &topo), Locality::NodeLocal);
        assert_eq!(split.level_on(0, &topo), Locality::Any);
        let pinned = Placement {
            process: Some(1),
            ..Placement::default()
        };
        assert!(pinned.allows(3, &topo) && !pinned.allows(4, &topo));
    }

    #[test]
    fn waits_default_to_the_base_wait() {
        let conf = Conf::new()
            .with("ember.locality.wait", "100ms")
            .unwrap()
            .with("ember.locality.wait.node", "0")
            .unwrap();
        let w = LocalityWaits::from_conf(&conf);
        assert_eq!(w.process, Duration::from_millis(100));
        assert_eq!(w.node, Duration::ZERO);
        assert_eq!(
            LocalityWaits::from_conf(&Conf::new()),
            LocalityWaits::uniform(Duration::from_secs(3))
        );
    }
}
