//! Tensors and the devices they live on.
//!
//! A [`Tensor`] is an n-dimensional `f32` array on a [`Device`]. Today only the CPU is implemented
//! (an `ndarray` array in host memory); the type is shaped so a CUDA backend built on `cudarc`
//! slots in later without changing callers:
//! - the storage is private and `#[non_exhaustive]`-style (an enum with one arm today), so a
//!   device-memory arm can be added;
//! - code asks a [`Backend`] (chosen at run time by [`select_backend`]) for the operations that
//!   differ between devices (allocation, GEMM, transfers);
//! - every tensor reports its [`Tensor::host_bytes`] and [`Tensor::device_bytes`] separately, which
//!   the engine's size trait wraps so the block manager budgets GPU memory on its own.
//!
//! The `cuda` cargo feature is declared but **not implemented yet**: with it, or with
//! `EMBER_ML_DEVICES=cuda,cpu`, selection still falls back to the CPU (and logs why).

pub mod backend;
pub mod gemm;

pub use backend::{select_backend, Backend, CpuBackend};

mod size;

use ndarray::{ArrayD, ArrayViewD, IxDyn};
use serde::{Deserialize, Serialize};

use crate::error::{MlError, Result};

/// Where a tensor's data lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Device {
    /// Host memory.
    Cpu,
    /// A CUDA GPU, by ordinal (not implemented yet: see the module docs).
    Cuda(usize),
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Device::Cpu => write!(f, "cpu"),
            Device::Cuda(i) => write!(f, "cuda:{i}"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
enum Storage {
    Cpu(ArrayD<f32>),
}

/// An n-dimensional `f32` array on a [`Device`]. Serializable, so tensors can be RDD elements;
/// they report their buffers to the engine's block manager through `SizeOf` (see `size.rs`).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Tensor {
    storage: Storage,
}

impl Tensor {
    /// A CPU tensor holding `array`.
    pub fn from_array(array: ArrayD<f32>) -> Self {
        Tensor {
            storage: Storage::Cpu(array),
        }
    }

    /// A CPU tensor of the given shape from row-major values.
    pub fn from_vec(shape: &[usize], values: Vec<f32>) -> Result<Self> {
        let n: usize = shape.iter().product();
        if n != values.len() {
            return Err(MlError::Shape(format!(
                "shape {shape:?} needs {n} values, got {}",
                values.len()
            )));
        }
        let a = ArrayD::from_shape_vec(IxDyn(shape), values)
            .map_err(|e| MlError::Shape(e.to_string()))?;
        Ok(Tensor::from_array(a))
    }

    /// A tensor of zeros on `device`.
    pub fn zeros(shape: &[usize], device: Device) -> Result<Self> {
        match device {
            Device::Cpu => Ok(Tensor::from_array(ArrayD::zeros(IxDyn(shape)))),
            Device::Cuda(_) => Err(MlError::Backend(format!(
                "cannot allocate on {device}: the CUDA backend is not implemented yet"
            ))),
        }
    }

    /// The device holding the data.
    pub fn device(&self) -> Device {
        match &self.storage {
            Storage::Cpu(_) => Device::Cpu,
        }
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        match &self.storage {
            Storage::Cpu(a) => a.shape(),
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape().iter().product()
    }

    /// True when the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A view of the data when it is in host memory.
    pub fn as_array(&self) -> Option<ArrayViewD<'_, f32>> {
        match &self.storage {
            Storage::Cpu(a) => Some(a.view()),
        }
    }

    /// The data as a host array, copying it from the device if needed.
    pub fn to_array(&self) -> ArrayD<f32> {
        match &self.storage {
            Storage::Cpu(a) => a.clone(),
        }
    }

    /// Consumes the tensor, returning a host array (copied from the device if needed).
    pub fn into_array(self) -> ArrayD<f32> {
        match self.storage {
            Storage::Cpu(a) => a,
        }
    }

    /// The tensor moved to `device`.
    pub fn to_device(self, device: Device) -> Result<Self> {
        match (self.device(), device) {
            (a, b) if a == b => Ok(self),
            (_, d) => Err(MlError::Backend(format!(
                "cannot move a tensor to {d}: the CUDA backend is not implemented yet"
            ))),
        }
    }

    /// Bytes the tensor holds in host memory (its buffer plus the struct itself).
    pub fn host_bytes(&self) -> usize {
        match &self.storage {
            Storage::Cpu(a) => {
                std::mem::size_of::<Self>()
                    + a.len() * std::mem::size_of::<f32>()
                    + 2 * a.ndim() * std::mem::size_of::<usize>()
            }
        }
    }

    /// Bytes the tensor holds in device (GPU) memory: 0 for CPU tensors.
    pub fn device_bytes(&self) -> usize {
        match &self.storage {
            Storage::Cpu(_) => 0,
        }
    }
}

impl From<ArrayD<f32>> for Tensor {
    fn from(a: ArrayD<f32>) -> Self {
        Tensor::from_array(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensor_reports_shape_and_bytes() {
        let t = Tensor::from_vec(&[2, 3], (0..6).map(|i| i as f32).collect()).unwrap();
        assert_eq!(t.shape(), &[2, 3]);
        assert_eq!(t.device(), Device::Cpu);
        assert!(t.host_bytes() >= 24, "24 bytes of data at least");
        assert!(t.host_bytes() < 24 + 256);
        assert_eq!(t.device_bytes(), 0);
        assert!(Tensor::from_vec(&[2, 2], vec![1.0; 3]).is_err());
        assert!(Tensor::zeros(&[2], Device::Cuda(0)).is_err());
        assert_eq!(t.clone().to_device(Device::Cpu).unwrap(), t);
    }
}
