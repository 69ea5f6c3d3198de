//! [`View`]: a collection that a live differential dataflow derives from an arrangement and
//! keeps up to date as the arrangement changes.

use std::rc::Rc;

use differential_dataflow::operators::arrange::ShutdownButton;
use timely::dataflow::operators::probe::Handle as ProbeHandle;
use timely::dataflow::operators::CapabilitySet;

use super::capture::Capture;
use super::output::worker_local_rdd;
use super::{DiffData, Version};
use crate::context::Context;
use crate::error::Result;
use crate::rdd::Rdd;

/// A collection derived from an [`Arranged`](super::Arranged) by a live dataflow (made by
/// [`Arranged::view`](super::Arranged::view), [`Arranged::iterate`](super::Arranged::iterate)
/// and the [`graph`](super::graph) algorithms). Each worker holds the part its dataflow
/// produced. When the arrangement is updated, the view changes by differences; dropping the
/// view ends its dataflow.
pub struct View<T: DiffData> {
    ctx: Context,
    name: String,
    capture: Capture<T>,
    probe: Rc<ProbeHandle<Version>>,
    button: Option<ShutdownButton<CapabilitySet<Version>>>,
    /// Snapshots taken so far (names their RDDs).
    snapshots: std::cell::Cell<usize>,
}

impl<T: DiffData> View<T> {
    pub(crate) fn new(
        ctx: Context,
        name: String,
        capture: Capture<T>,
        button: ShutdownButton<CapabilitySet<Version>>,
    ) -> View<T> {
        let probe = Rc::new(capture.probe().clone());
        View {
            ctx,
            name,
            capture,
            probe,
            button: Some(button),
            snapshots: std::cell::Cell::new(0),
        }
    }

    /// The probe an update of the arrangement waits on.
    pub(crate) fn probe(&self) -> &Rc<ProbeHandle<Version>> {
        &self.probe
    }

    /// Steps until the view holds every difference up to `version`.
    pub(crate) fn wait(&self, version: Version) -> Result<()> {
        self.capture.wait(&self.ctx, version, &self.name)
    }

    /// This worker's part, every worker agreeing that none failed.
    pub(crate) fn contents(&self) -> Result<Vec<T>> {
        self.capture.snapshot_agreed(&self.ctx, &self.name)
    }

    /// The view's current contents as an RDD with one partition per worker (a snapshot: a
    /// later update of the arrangement does not change it).
    pub fn rdd(&self) -> Result<Rdd<T>> {
        let n = self.snapshots.get();
        self.snapshots.set(n + 1);
        let local = self.contents()?;
        worker_local_rdd(
            &self.ctx,
            &format!("{}-snapshot-{n}", self.name),
            "differential view",
            local,
        )
    }

    /// The view's current contents, sorted, on every worker (as [`Rdd::collect`]).
    pub fn collect(&self) -> Result<Vec<T>> {
        let local = self.contents()?;
        let mut round = self.ctx.round::<Vec<T>>(&format!("{}-collect", self.name));
        round.send_to_all(local);
        let mut all: Vec<T> = round.finish()?.into_iter().flatten().collect();
        all.sort();
        Ok(all)
    }
}

impl<T: DiffData> Drop for View<T> {
    fn drop(&mut self) {
        if let Some(mut button) = self.button.take() {
            button.press();
        }
    }
}
