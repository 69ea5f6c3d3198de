//! The network copies that evaluation and inference tasks run on (DL4J's `evalNumWorkers`):
//! a pool per job and process, holding at most `eval_num_workers` copies, each charged to the
//! block manager of the worker that made it. The pool is shared by the process's workers, so
//! the copies a process keeps are bounded whatever its number of tasks; a task takes a free
//! copy (or makes one, while fewer than the limit exist), or waits for one.
//!
//! Before a job starts, [`CopyPlan::new`] checks that the copies one worker may make fit its
//! memory budget; a worker then reserves each copy's bytes as it makes it, evicting cached
//! blocks if need be, so more copies than the budget holds is an error, never an
//! out-of-memory crash.
//!
//! Waiting for a copy cannot deadlock: a task's input iterator is created (and any cached block
//! of another process fetched) before the task's code runs, and shuffle input is local by then,
//! so a task holding copies computes without waiting on any other worker and returns them when
//! its partition ends.

use std::cell::{OnceCell, RefCell};
use std::rc::Rc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use ember_engine::{Context, MemoryReservation};
use indicatif::{ProgressBar, ProgressStyle};

use super::inference_error::InferenceError;
use super::network::DistributedNetwork;
use super::replica::Replica;
use crate::error::{MlError, Result};
use crate::nn::Network;

/// The settings of distributed evaluation and inference (DL4J's `evalNumWorkers` and
/// `evalBatchSize`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EvalOptions {
    /// Network copies per process: how many of its tasks run at once (default: its workers).
    pub num_workers: Option<usize>,
    /// Examples per forward pass (default 64). Results do not depend on it.
    pub batch_size: usize,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            num_workers: None,
            batch_size: 64,
        }
    }
}

impl EvalOptions {
    /// `eval_num_workers`: network copies per process.
    pub fn num_workers(mut self, copies: usize) -> Self {
        self.num_workers = Some(copies);
        self
    }

    /// `eval_batch_size`: examples per forward pass.
    pub fn batch_size(mut self, examples: usize) -> Self {
        self.batch_size = examples;
        self
    }
}

/// Worker threads per process of the application `ctx` belongs to.
pub(crate) fn threads_per_process(ctx: &Context) -> Result<usize> {
    Ok(match ctx.conf().master()? {
        ember_engine::Master::Local(n) => n,
        ember_engine::Master::Cluster { threads, .. } => threads,
    }
    .max(1))
}

/// Bytes charged for one copy of `net` running batches of `batch` examples: its parameters,
/// gradient buffer and running statistics, plus the input and output of one batch.
pub(crate) fn copy_bytes(net: &Network, batch: usize) -> u64 {
    let input: usize = net.config().input_shape.iter().product();
    let output: usize = net.output_shape().iter().product();
    let values = 2 * net.num_params() + net.buffers().len() + batch * (input + output);
    (values * std::mem::size_of::<f32>() + std::mem::size_of::<Network>()) as u64
}

/// A network with the same configuration, parameters and running statistics as `net`.
pub(crate) fn copy_network(net: &Network) -> Result<Network> {
    let mut copy = Network::new(net.config().clone())?;
    copy.set_params(net.params())?;
    copy.buffers_mut().copy_from_slice(net.buffers());
    Ok(copy)
}

/// How many copies a job keeps, checked against the memory budget before it starts.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CopyPlan {
    /// Copies per process.
    pub per_process: usize,
    /// Copies one task takes when it can (the process's copies shared by its workers).
    pub per_task: usize,
    /// Bytes charged per copy.
    pub copy_bytes: u64,
}

impl CopyPlan {
    /// The plan for `net` under `opts`; a batch size or copy count of 0, or more copies per
    /// worker than its budget holds, is an error (the same on every worker: it depends on the
    /// configuration only).
    pub fn new(ctx: &Context, net: &Network, opts: &EvalOptions) -> Result<CopyPlan> {
        if opts.batch_size == 0 {
            return Err(InferenceError::Setting {
                setting: "eval_batch_size",
                value: 0,
                reason: "a forward pass needs at least 1 example".into(),
            }
            .into());
        }
        let threads = threads_per_process(ctx)?;
        let per_process = opts.num_workers.unwrap_or(threads);
        if per_process == 0 {
            return Err(InferenceError::Setting {
                setting: "eval_num_workers",
                value: 0,
                reason: "a process needs at least 1 network copy".into(),
            }
            .into());
        }
        let per_task = per_process.div_ceil(threads);
        let copy_bytes = copy_bytes(net, opts.batch_size);
        let needed = copy_bytes.saturating_mul(per_task as u64);
        let budget = ctx.memory_budget().0;
        if needed > budget {
            return Err(InferenceError::MemoryBudget {
                copies: per_process,
                per_worker: per_task,
                copy_bytes,
                needed,
                budget,
            }
            .into());
        }
        tracing::debug!(
            per_process,
            per_task,
            copy_bytes,
            budget,
            "network copies of an evaluation or inference job"
        );
        Ok(CopyPlan {
            per_process,
            per_task,
            copy_bytes,
        })
    }
}

#[derive(Default)]
struct PoolState {
    free: Vec<Network>,
    made: usize,
    charges: Vec<MemoryReservation>,
}

/// One job's copies in one process, shared by its workers ([`Context::process_value`]).
pub(crate) struct CopyPool {
    plan: CopyPlan,
    state: Mutex<PoolState>,
    freed: Condvar,
    bar: ProgressBar,
}

impl Drop for CopyPool {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

/// Copies taken from a pool; they go back when it is dropped.
pub(crate) struct Lease {
    pool: Arc<CopyPool>,
    /// The copies (at least one).
    pub nets: Vec<Network>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        let mut st = self.pool.lock();
        st.free.append(&mut self.nets);
        drop(st);
        self.pool.freed.notify_all();
    }
}

impl CopyPool {
    fn new(plan: CopyPlan, what: &str) -> CopyPool {
        CopyPool {
            plan,
            state: Mutex::new(PoolState::default()),
            freed: Condvar::new(),
            bar: job_bar(what),
        }
    }

    fn lock(&self) -> MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn progress(&self, examples: u64) {
        self.bar.inc(examples);
    }

    /// Takes up to `plan.per_task` copies, at least one: free ones first, new ones (made with
    /// `make` from this worker's network and charged to this worker) while the process has
    /// fewer than its limit, else waits until another task returns one.
    pub fn take(
        self: &Arc<Self>,
        ctx: &Context,
        make: &dyn Fn() -> Result<Network>,
    ) -> Result<Lease> {
        let want = self.plan.per_task;
        let mut nets = Vec::with_capacity(want);
        let mut st = self.lock();
        loop {
            while nets.len() < want {
                match st.free.pop() {
                    Some(n) => nets.push(n),
                    None => break,
                }
            }
            let to_make = (want - nets.len()).min(self.plan.per_process - st.made);
            if to_make > 0 {
                st.made += to_make;
                drop(st);
                let made = self.make_copies(ctx, make, to_make);
                let mut again = self.lock();
                match made {
                    Ok((copies, charge)) => {
                        nets.extend(copies);
                        again.charges.push(charge);
                    }
                    Err(e) => {
                        again.made -= to_make;
                        again.free.append(&mut nets);
                        drop(again);
                        self.freed.notify_all();
                        return Err(e);
                    }
                }
                drop(again);
                break;
            }
            if !nets.is_empty() {
                break;
            }
            st = self.freed.wait(st).unwrap_or_else(|e| e.into_inner());
        }
        Ok(Lease {
            pool: Arc::clone(self),
            nets,
        })
    }

    fn make_copies(
        &self,
        ctx: &Context,
        make: &dyn Fn() -> Result<Network>,
        n: usize,
    ) -> Result<(Vec<Network>, MemoryReservation)> {
        let charge = ctx.reserve_memory(
            &format!("{n} network copies"),
            self.plan.copy_bytes * n as u64,
            0,
        )?;
        let copies = (0..n).map(|_| make()).collect::<Result<Vec<_>>>()?;
        Ok((copies, charge))
    }
}

/// What the tasks of one job on this worker take network copies with: the job's pool (made
/// once the job's RDD exists, [`Copies::attach`]: its id names the pool, the same on every
/// worker) and this worker's replica, which new copies are made from.
pub(crate) struct Copies {
    ctx: Context,
    slot: OnceCell<Arc<CopyPool>>,
    replica: Rc<RefCell<Replica>>,
}

impl Copies {
    /// Copies of `dist`'s replica.
    pub fn new(dist: &DistributedNetwork) -> Copies {
        Copies {
            ctx: dist.ctx.clone(),
            slot: OnceCell::new(),
            replica: Rc::clone(&dist.replica),
        }
    }

    /// Gets (or makes) the pool of the job whose RDD is `rdd_id`, with a progress bar `what`.
    pub fn attach(&self, rdd_id: usize, plan: CopyPlan, what: &str) -> Result<()> {
        let key = format!("ember-ml/network-copies/{rdd_id}");
        let pool = self
            .ctx
            .process_value(&key, || CopyPool::new(plan, what))
            .map_err(MlError::from)?;
        let _ = self.slot.set(pool);
        Ok(())
    }

    fn pool(&self) -> Result<&Arc<CopyPool>> {
        self.slot
            .get()
            .ok_or_else(|| MlError::Config("a task ran before its job was set up".into()))
    }

    /// Takes this task's copies ([`CopyPool::take`]).
    pub fn take(&self) -> Result<Lease> {
        let replica = Rc::clone(&self.replica);
        let make = move || copy_network(&replica.borrow().net);
        self.pool()?.take(&self.ctx, &make)
    }

    /// Counts `examples` more done on the job's progress bar.
    pub fn progress(&self, examples: usize) {
        (self.progress_counter())(examples)
    }

    /// [`Copies::progress`] for threads a task starts.
    pub fn progress_counter(&self) -> impl Fn(usize) + Sync + Send {
        let pool = self.slot.get().cloned();
        move |n| {
            if let Some(p) = &pool {
                p.progress(n as u64);
            }
        }
    }
}

/// The progress bar of a job on stderr, when a person is watching (stderr is a terminal); one
/// per process, counting the examples its tasks have done.
fn job_bar(what: &str) -> ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{prefix} {spinner} {human_pos} examples {per_sec} {elapsed}")
            .expect("valid template"),
    );
    bar.set_prefix(what.to_string());
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
}

/// Fails the running task with `e` (the job then fails naming it) instead of panicking; used
/// by transformations that meet bad input.
pub(crate) fn fail_task(operation: &str, e: MlError) {
    let err = ember_engine::EngineError::InvalidArgument {
        operation: operation.into(),
        reason: e.to_string(),
    };
    match ember_engine::current_task() {
        Some(tc) => tc.fail(err),
        None => tracing::error!(operation, error = %err, "failed outside a task"),
    }
}
