//! Serializable network configuration (the role of DL4J's `MultiLayerConfiguration`).

use serde::{Deserialize, Serialize};

use super::activation::Activation;
use super::init::WeightInit;
use super::loss::Loss;
use crate::error::{MlError, Result};

/// One layer of a sequential network. Shapes are per example: `[features]` for dense layers,
/// `[channels, height, width]` for convolution and pooling (NCHW batches, as in PyTorch).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LayerConfig {
    /// Fully connected: `y = act(x W^T + b)`, `W` of shape `[units, inputs]` (PyTorch's layout).
    Dense {
        /// Output width.
        units: usize,
        /// Activation applied to the output.
        #[serde(default)]
        activation: Activation,
        /// Weight initialization; `None` picks He for ReLU-like activations, Xavier otherwise.
        #[serde(default)]
        init: Option<WeightInit>,
    },
    /// 2-D convolution (cross-correlation, as in PyTorch), weight `[filters, channels, kh, kw]`.
    Conv2d {
        /// Output channels.
        filters: usize,
        /// Kernel height and width.
        kernel: [usize; 2],
        /// Stride (rows, columns).
        #[serde(default = "one2")]
        stride: [usize; 2],
        /// Zero padding (rows, columns) on each side.
        #[serde(default)]
        padding: [usize; 2],
        /// Activation applied to the output.
        #[serde(default)]
        activation: Activation,
        /// Weight initialization; `None` picks He for ReLU-like activations, Xavier otherwise.
        #[serde(default)]
        init: Option<WeightInit>,
    },
    /// Max pooling over windows of `kernel` moved by `stride`.
    MaxPool2d {
        /// Window height and width.
        kernel: [usize; 2],
        /// Stride (rows, columns).
        stride: [usize; 2],
    },
    /// Average pooling over windows of `kernel` moved by `stride`.
    AvgPool2d {
        /// Window height and width.
        kernel: [usize; 2],
        /// Stride (rows, columns).
        stride: [usize; 2],
    },
    /// Batch normalization per feature (1-D input) or per channel (3-D input), with learned scale
    /// and shift and running statistics for inference (updated as PyTorch does).
    BatchNorm {
        /// Added to the variance.
        #[serde(default = "bn_eps")]
        eps: f32,
        /// Weight of the current batch in the running statistics.
        #[serde(default = "bn_momentum")]
        momentum: f32,
    },
    /// Inverted dropout: zeroes each value with probability `rate` while training.
    Dropout {
        /// Probability of dropping a value, in [0, 1).
        rate: f32,
    },
    /// Flattens each example to one dimension.
    Flatten,
    /// A stand-alone activation.
    Activation {
        /// The function.
        activation: Activation,
    },
}

fn one2() -> [usize; 2] {
    [1, 1]
}
fn bn_eps() -> f32 {
    1e-5
}
fn bn_momentum() -> f32 {
    0.1
}

/// A sequential network: input shape, layers, loss and the seed of its random numbers
/// (initialization and dropout), so the same configuration always builds the same network.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NetworkConfig {
    /// Shape of one example.
    pub input_shape: Vec<usize>,
    /// The layers, first to last.
    pub layers: Vec<LayerConfig>,
    /// The training loss.
    pub loss: Loss,
    /// Seed of initialization and dropout.
    pub seed: u64,
}

impl NetworkConfig {
    /// Starts a configuration for examples of the given shape.
    pub fn builder(input_shape: &[usize]) -> NetworkBuilder {
        NetworkBuilder {
            config: NetworkConfig {
                input_shape: input_shape.to_vec(),
                layers: Vec::new(),
                loss: Loss::SoftmaxCrossEntropy,
                seed: 0,
            },
        }
    }

    /// The configuration as JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("configurations always serialize")
    }

    /// Parses a configuration written by [`NetworkConfig::to_json`].
    pub fn from_json(s: &str) -> Result<Self> {
        serde_json::from_str(s).map_err(|source| MlError::Json {
            what: "network configuration".into(),
            source,
        })
    }
}

/// Builds a [`NetworkConfig`] layer by layer.
#[derive(Clone, Debug)]
pub struct NetworkBuilder {
    config: NetworkConfig,
}

impl NetworkBuilder {
    /// Appends any layer.
    pub fn layer(mut self, layer: LayerConfig) -> Self {
        self.config.layers.push(layer);
        self
    }

    /// Appends a dense layer with default initialization.
    pub fn dense(self, units: usize, activation: Activation) -> Self {
        self.layer(LayerConfig::Dense {
            units,
            activation,
            init: None,
        })
    }

    /// Appends a convolution with stride 1.
    pub fn conv2d(self, filters: usize, kernel: usize, padding: usize, act: Activation) -> Self {
        self.layer(LayerConfig::Conv2d {
            filters,
            kernel: [kernel, kernel],
            stride: [1, 1],
            padding: [padding, padding],
            activation: act,
            init: None,
        })
    }

    /// Appends square max pooling.
    pub fn max_pool(self, kernel: usize, stride: usize) -> Self {
        self.layer(LayerConfig::MaxPool2d {
            kernel: [kernel, kernel],
            stride: [stride, stride],
        })
    }

    /// Appends square average pooling.
    pub fn avg_pool(self, kernel: usize, stride: usize) -> Self {
        self.layer(LayerConfig::AvgPool2d {
            kernel: [kernel, kernel],
            stride: [stride, stride],
        })
    }

    /// Appends batch normalization with PyTorch's defaults (eps 1e-5, momentum 0.1).
    pub fn batch_norm(self) -> Self {
        self.layer(LayerConfig::BatchNorm {
            eps: bn_eps(),
            momentum: bn_momentum(),
        })
    }

    /// Appends dropout.
    pub fn dropout(self, rate: f32) -> Self {
        self.layer(LayerConfig::Dropout { rate })
    }

    /// Appends a flatten layer.
    pub fn flatten(self) -> Self {
        self.layer(LayerConfig::Flatten)
    }

    /// Appends a stand-alone activation.
    pub fn activation(self, activation: Activation) -> Self {
        self.layer(LayerConfig::Activation { activation })
    }

    /// Sets the loss (default: softmax cross-entropy).
    pub fn loss(mut self, loss: Loss) -> Self {
        self.config.loss = loss;
        self
    }

    /// Sets the seed (default 0).
    pub fn seed(mut self, seed: u64) -> Self {
        self.config.seed = seed;
        self
    }

    /// The finished configuration.
    pub fn config(self) -> NetworkConfig {
        self.config
    }

    /// Builds the network (validating shapes and settings).
    pub fn build(self) -> Result<super::Network> {
        super::Network::new(self.config)
    }
}
