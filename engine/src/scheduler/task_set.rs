//! Delay scheduling of one stage's tasks (Spark's `TaskSetManager`): free workers are offered
//! pending tasks at the loosest locality level currently allowed, and the allowed level loosens
//! only after its wait passes without a launch at it.
//!
//! Timer-reset rule: the timer of the current level restarts only after an offer round in which
//! no free worker was turned away for locality (Spark 3.1's rule, not its legacy
//! reset-on-every-launch). Under the legacy rule a slow worker that keeps launching tasks on
//! its own blocks resets the timer each time, so an idle fast worker can wait forever behind a
//! straggler; under this rule the idle worker's wait counts from the first refusal and the level
//! loosens once `ember.locality.wait` has passed, however busy the local worker is.

use std::time::{Duration, Instant};

use super::locality::{Locality, LocalityWaits, Placement, Topology};

/// A task handed to a worker by an offer round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Assignment {
    /// The worker.
    pub worker: usize,
    /// The task's index in the set.
    pub task: usize,
    /// Its locality on that worker.
    pub level: Locality,
}

/// The pending tasks of a stage and the delay-scheduling state.
pub(crate) struct TaskSet {
    placements: Vec<Placement>,
    /// Indices of tasks not launched yet, in launch-preference order (partition order).
    pending: Vec<usize>,
    /// The levels this set can use, best first; always ends with ANY.
    levels: Vec<Locality>,
    current: usize,
    last_reset: Instant,
    waits: LocalityWaits,
    topo: Topology,
}

impl TaskSet {
    /// A set of tasks with the given placements, offered from `now` on.
    pub(crate) fn new(
        placements: Vec<Placement>,
        waits: LocalityWaits,
        topo: Topology,
        now: Instant,
    ) -> TaskSet {
        let pending: Vec<usize> = (0..placements.len()).collect();
        let mut set = TaskSet {
            placements,
            pending,
            levels: Vec::new(),
            current: 0,
            last_reset: now,
            waits,
            topo,
        };
        set.levels = Locality::ALL
            .into_iter()
            .filter(|&l| l == Locality::Any || set.has_pending_at(l))
            .collect();
        set
    }

    /// Where task `task`'s input lives.
    pub(crate) fn placement(&self, task: usize) -> &Placement {
        &self.placements[task]
    }

    /// Whether tasks are still waiting to be launched.
    pub(crate) fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Whether some pending task would run at `level` on a suitably placed worker.
    fn has_pending_at(&self, level: Locality) -> bool {
        self.pending.iter().any(|&t| {
            let p = &self.placements[t];
            match level {
                Locality::ProcessLocal => !p.workers.is_empty(),
                Locality::NodeLocal => !p.workers.is_empty() || !p.hosts.is_empty(),
                Locality::NoPref => p.workers.is_empty() && p.hosts.is_empty(),
                Locality::Any => true,
            }
        })
    }

    /// The loosest level allowed at `now`: levels with nothing pending are skipped at once, a
    /// level whose wait has passed since the last reset gives way to the next.
    pub(crate) fn allowed(&mut self, now: Instant) -> Locality {
        while self.current + 1 < self.levels.len() {
            let level = self.levels[self.current];
            if !self.has_pending_at(level) {
                self.current += 1;
                self.last_reset = now;
            } else if now.duration_since(self.last_reset) >= self.waits.at(level) {
                self.last_reset += self.waits.at(level);
                self.current += 1;
            } else {
                break;
            }
        }
        self.levels[self.current]
    }

    /// When the allowed level next loosens by itself, if it can.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        if self.pending.is_empty() || self.current + 1 >= self.levels.len() {
            return None;
        }
        Some(self.last_reset + self.waits.at(self.levels[self.current]))
    }

    /// One offer round: each free worker gets at most one task, local ones first. Workers are
    /// offered tasks at each level in turn, so no worker takes a task from a level looser than
    /// one where another free worker has a local task.
    pub(crate) fn offer(&mut self, free: &[usize], now: Instant) -> Vec<Assignment> {
        let allowed = self.allowed(now);
        let mut out: Vec<Assignment> = Vec::new();
        let mut busy = vec![false; free.len()];
        for max in Locality::ALL {
            for (slot, &w) in free.iter().enumerate() {
                if busy[slot] {
                    continue;
                }
                if let Some((pos, level)) = self.best_for(w, max, allowed) {
                    let task = self.pending.remove(pos);
                    busy[slot] = true;
                    out.push(Assignment {
                        worker: w,
                        task,
                        level,
                    });
                }
            }
        }
        let turned_away = free.iter().enumerate().any(|(slot, &w)| {
            !busy[slot]
                && self
                    .pending
                    .iter()
                    .any(|&t| self.placements[t].allows(w, &self.topo))
        });
        let best = out
            .iter()
            .map(|a| a.level)
            .filter(|&l| l != Locality::NoPref)
            .min();
        if let (Some(best), false) = (best, turned_away) {
            if let Some(i) = self.levels.iter().position(|&l| l == best) {
                self.current = i;
            }
            self.last_reset = now;
        }
        out
    }

    /// The pending task best placed for `w` within `max` and the allowed level: its position in
    /// `pending` and its level. Tasks without preferences are exempt from the allowed level.
    fn best_for(&self, w: usize, max: Locality, allowed: Locality) -> Option<(usize, Locality)> {
        let limit = max.min(allowed);
        let mut best: Option<(usize, Locality)> = None;
        for (pos, &t) in self.pending.iter().enumerate() {
            let p = &self.placements[t];
            if !p.allows(w, &self.topo) {
                continue;
            }
            let level = p.level_on(w, &self.topo);
            let ok = if level == Locality::NoPref {
                max >= Locality::NoPref
            } else {
                level <= limit
            };
            if ok && best.is_none_or(|(_, b)| level < b) {
                best = Some((pos, level));
                if level == Locality::ProcessLocal {
                    break;
                }
            }
        }
        best
    }

    /// A barrier stage's launch: every pending task at once, each on a different free worker,
    /// the best placed first (locality honoured where it can be, no waiting). `None` when the
    /// free workers cannot take every task (too few of them, or a task pinned to a process
    /// whose workers are taken).
    pub(crate) fn offer_all(&mut self, free: &[usize]) -> Option<Vec<Assignment>> {
        let mut taken = vec![false; free.len()];
        let mut out = Vec::with_capacity(self.pending.len());
        for &task in &self.pending {
            let p = &self.placements[task];
            let (slot, level) = free
                .iter()
                .enumerate()
                .filter(|&(slot, &w)| !taken[slot] && p.allows(w, &self.topo))
                .map(|(slot, &w)| (slot, p.level_on(w, &self.topo)))
                .min_by_key(|&(_, level)| level)?;
            taken[slot] = true;
            out.push(Assignment {
                worker: free[slot],
                task,
                level,
            });
        }
        self.pending.clear();
        Some(out)
    }

    /// Puts every task back to pending (a barrier stage restarting after a failed task).
    pub(crate) fn repend_all(&mut self) {
        self.pending = (0..self.placements.len()).collect();
    }

    /// How long until the allowed level can loosen (for parking), if it can.
    pub(crate) fn time_to_deadline(&self, now: Instant) -> Option<Duration> {
        self.next_deadline()
            .map(|d| d.saturating_duration_since(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on(worker: usize) -> Placement {
        Placement {
            workers: vec![worker],
            ..Placement::default()
        }
    }

    fn two_processes() -> Topology {
        Topology::from_conf(
            &crate::config::Conf::new()
                .with("ember.master", "cluster")
                .unwrap()
                .with("ember.cluster.hosts", "a:1,b:2")
                .unwrap()
                .with("ember.cluster.threads", "1")
                .unwrap(),
        )
    }

    #[test]
    fn zero_wait_gives_a_remote_task_at_once() {
        let t0 = Instant::now();
        let mut set = TaskSet::new(
            vec![on(0), on(0)],
            LocalityWaits::uniform(Duration::ZERO),
            two_processes(),
            t0,
        );
        let got = set.offer(&[0, 1], t0);
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].worker, got[0].level), (0, Locality::ProcessLocal));
        assert_eq!((got[1].worker, got[1].level), (1, Locality::Any));
    }

    #[test]
    fn a_refused_worker_waits_until_the_wait_passes_even_while_local_launches_go_on() {
        let t0 = Instant::now();
        let wait = Duration::from_millis(100);
        let mut set = TaskSet::new(
            vec![on(0); 4],
            LocalityWaits::uniform(wait),
            two_processes(),
            t0,
        );
        // Worker 1 is refused, worker 0 launches locally: the timer is not reset.
        let got = set.offer(&[0, 1], t0);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].worker, 0);
        let got = set.offer(&[0, 1], t0 + wait / 2);
        assert_eq!(got.iter().map(|a| a.worker).collect::<Vec<_>>(), vec![0]);
        assert_eq!(set.next_deadline(), Some(t0 + wait));
        // Past one wait NODE_LOCAL is allowed (nobody is node-local here), past two ANY.
        assert!(set.offer(&[1], t0 + wait).is_empty());
        let got = set.offer(&[1], t0 + 2 * wait);
        assert_eq!(
            got,
            vec![Assignment {
                worker: 1,
                task: 2,
                level: Locality::Any
            }]
        );
        assert!(set.has_pending());
    }

    #[test]
    fn levels_without_pending_tasks_are_skipped_at_once() {
        let t0 = Instant::now();
        let mut set = TaskSet::new(
            vec![Placement::default(); 3],
            LocalityWaits::uniform(Duration::from_secs(3)),
            two_processes(),
            t0,
        );
        let got = set.offer(&[0, 1], t0);
        assert!(got.iter().all(|a| a.level == Locality::NoPref));
        assert_eq!(got.len(), 2);
    }

    #[test]
    fn pinned_tasks_never_leave_their_process() {
        let t0 = Instant::now();
        let pinned = Placement {
            workers: vec![0],
            process: Some(0),
            ..Placement::default()
        };
        let mut set = TaskSet::new(
            vec![pinned],
            LocalityWaits::uniform(Duration::ZERO),
            two_processes(),
            t0,
        );
        assert!(set.offer(&[1], t0 + Duration::from_secs(10)).is_empty());
        assert_eq!(set.offer(&[0], t0 + Duration::from_secs(10)).len(), 1);
    }

    #[test]
    fn a_barrier_launch_gives_every_task_its_own_worker_locally_where_it_can() {
        let t0 = Instant::now();
        let mut set = TaskSet::new(
            vec![on(1), on(1), Placement::default()],
            LocalityWaits::uniform(Duration::from_secs(3)),
            Topology::local(3),
            t0,
        );
        let got = set.offer_all(&[0, 1, 2]).unwrap();
        let workers: Vec<usize> = got.iter().map(|a| a.worker).collect();
        assert_eq!(workers[0], 1, "the first task runs where its block is");
        let mut sorted = workers.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 3, "one task per worker: {workers:?}");
        assert!(!set.has_pending());
        set.repend_all();
        assert!(
            set.offer_all(&[0, 1]).is_none(),
            "three tasks need three workers"
        );
    }
}
