//! A distributed network from a model file at any storage URL (a network trained on one
//! machine, or by another application), and saved to one: every worker reads the same file,
//! so the replicas start bit-identical; saving writes once, from worker 0.

use super::master::TrainingMaster;
use super::network::DistributedNetwork;
use crate::error::{MlError, Result};
use crate::model_io;
use crate::optim::OptimizerConfig;
use ember_engine::Context;

impl DistributedNetwork {
    /// The network of the model file at `url` (`file://`, `s3://`, `memory://`, `hdfs://`, a
    /// bare path), under `master`; its optimizer state when the file holds one, else a fresh
    /// optimizer of `fallback`. A missing, truncated or corrupt file is an error naming `url`.
    pub fn load_url(
        ctx: &Context,
        url: &str,
        fallback: OptimizerConfig,
        master: impl TrainingMaster + 'static,
    ) -> Result<Self> {
        let model = model_io::load_url(url, &ctx.conf().storage_config())?;
        let opt = model.optimizer.as_ref().map_or(fallback, |o| *o.config());
        let dist = DistributedNetwork::new(ctx, model.network, opt, master)?;
        if let Some(state) = model.optimizer {
            dist.replica.borrow_mut().opt = state;
        }
        Ok(dist)
    }

    /// Saves the network and its optimizer state at `url` from worker 0 (every replica is the
    /// same after an epoch); every worker returns once it is written, with the same outcome.
    pub fn save_url(&self, url: &str) -> Result<()> {
        let outcome = if self.ctx.worker_index() == 0 {
            let rep = self.replica.borrow();
            model_io::save_url(
                url,
                &self.ctx.conf().storage_config(),
                &rep.net,
                Some(&rep.opt),
            )
            .map_err(|e| e.to_string())
        } else {
            Ok(())
        };
        let verdict = self.ctx.broadcast(outcome)?;
        match verdict.value() {
            Ok(()) => Ok(()),
            Err(reason) => Err(MlError::Config(format!(
                "saving the network at {url}: {reason}"
            ))),
        }
    }
}
