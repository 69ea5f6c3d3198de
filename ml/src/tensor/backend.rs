//! Compute backends and their run-time selection.

use std::sync::Arc;

use super::{gemm, Device, Tensor};
use crate::error::{MlError, Result};

/// The operations that differ between devices. Layers ask the network's backend for them, so a
/// GPU backend (cudarc + cuBLAS, behind the `cuda` feature, not implemented yet) can be added by
/// implementing this trait.
pub trait Backend: Send + Sync + std::fmt::Debug {
    /// The device this backend computes on.
    fn device(&self) -> Device;

    /// A short name for logs ("cpu", "cuda:0").
    fn name(&self) -> String {
        self.device().to_string()
    }

    /// A zero tensor on this backend's device.
    fn zeros(&self, shape: &[usize]) -> Result<Tensor> {
        Tensor::zeros(shape, self.device())
    }

    /// Moves a tensor onto this backend's device.
    fn upload(&self, t: Tensor) -> Result<Tensor> {
        t.to_device(self.device())
    }

    /// Row-major `c = alpha * op(a) * op(b) + beta * c` (see [`gemm::sgemm`]).
    #[allow(clippy::too_many_arguments)]
    fn sgemm(
        &self,
        trans_a: bool,
        trans_b: bool,
        m: usize,
        n: usize,
        k: usize,
        alpha: f32,
        a: &[f32],
        b: &[f32],
        beta: f32,
        c: &mut [f32],
    );
}

/// The CPU backend: `ndarray` arrays and the GEMM of [`gemm`].
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuBackend;

impl Backend for CpuBackend {
    fn device(&self) -> Device {
        Device::Cpu
    }

    fn sgemm(
        &self,
        trans_a: bool,
        trans_b: bool,
        m: usize,
        n: usize,
        k: usize,
        alpha: f32,
        a: &[f32],
        b: &[f32],
        beta: f32,
        c: &mut [f32],
    ) {
        gemm::sgemm(trans_a, trans_b, m, n, k, alpha, a, b, beta, c, true)
    }
}

/// Environment variable listing backends by priority, comma-separated: `cuda`, `cpu`.
pub const DEVICES_ENV: &str = "EMBER_ML_DEVICES";

/// Picks the first backend of the priority list in `EMBER_ML_DEVICES` (default `cuda,cpu`) that
/// loads. CUDA is not implemented yet, so it never loads and the CPU is used; naming an unknown
/// backend is an error, and the CPU is the fallback when the list ends without a usable one.
pub fn select_backend() -> Result<Arc<dyn Backend>> {
    let list = std::env::var(DEVICES_ENV).unwrap_or_else(|_| "cuda,cpu".to_string());
    select_backend_from(&list)
}

/// [`select_backend`] for an explicit priority list.
pub fn select_backend_from(list: &str) -> Result<Arc<dyn Backend>> {
    for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match name {
            "cpu" => return Ok(Arc::new(CpuBackend)),
            "cuda" | "gpu" => {
                tracing::debug!("CUDA backend requested but not implemented yet; trying the next");
            }
            other => {
                return Err(MlError::Backend(format!(
                    "unknown backend {other:?} in {DEVICES_ENV} (expected cuda or cpu)"
                )))
            }
        }
    }
    tracing::debug!("no backend of {list:?} loaded; falling back to the CPU");
    Ok(Arc::new(CpuBackend))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_falls_back_to_cpu_and_rejects_unknown_names() {
        assert_eq!(
            select_backend_from("cuda,cpu").unwrap().device(),
            Device::Cpu
        );
        assert_eq!(select_backend_from("cuda").unwrap().device(), Device::Cpu);
        assert_eq!(select_backend_from("").unwrap().device(), Device::Cpu);
        assert!(select_backend_from("tpu,cpu").is_err());
        let b = CpuBackend;
        let mut c = [0f32; 1];
        b.sgemm(
            false,
            false,
            1,
            1,
            2,
            1.0,
            &[1.0, 2.0],
            &[3.0, 4.0],
            0.0,
            &mut c,
        );
        assert_eq!(c[0], 11.0);
    }
}
