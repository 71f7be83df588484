//! The interface between models and the attacks and defences that use them.
//!
//! Attacks see a model only through these traits, so the same attack code
//! runs against an ONNX file, a safetensors model aisec trained, or a remote
//! endpoint (query-only).

/// A dense row-major `f32` tensor. The first dimension is the batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// Dimensions, batch first.
    pub shape: Vec<usize>,
    /// Values, row-major; `data.len()` equals the product of `shape`.
    pub data: Vec<f32>,
}

impl Tensor {
    /// Builds a tensor, checking that `data` fits `shape`.
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Result<Self, ModelError> {
        let n: usize = shape.iter().product();
        if n != data.len() {
            return Err(ModelError::Shape(format!(
                "shape {shape:?} needs {n} values, got {}",
                data.len()
            )));
        }
        Ok(Tensor { shape, data })
    }

    /// A tensor of zeros.
    pub fn zeros(shape: Vec<usize>) -> Self {
        let n = shape.iter().product();
        Tensor {
            shape,
            data: vec![0.0; n],
        }
    }

    /// Batch size (first dimension; 0 for a scalar).
    pub fn batch(&self) -> usize {
        self.shape.first().copied().unwrap_or(0)
    }

    /// Number of values per example.
    pub fn row_len(&self) -> usize {
        self.shape.iter().skip(1).product()
    }

    /// The values of example `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        let n = self.row_len();
        &self.data[i * n..(i + 1) * n]
    }

    /// The values of example `i`, mutable.
    pub fn row_mut(&mut self, i: usize) -> &mut [f32] {
        let n = self.row_len();
        &mut self.data[i * n..(i + 1) * n]
    }
}

/// Losses attacks and training ask gradients of. Each is computed per
/// example and the gradient returned is of the *sum* over the batch, so
/// per-example gradients are independent.
#[derive(Debug, Clone, PartialEq)]
pub enum Loss {
    /// Softmax cross-entropy against `labels`.
    CrossEntropy {
        /// True class per example.
        labels: Vec<usize>,
    },
    /// Difference of Logits Ratio (Croce & Hein 2020), untargeted:
    /// `-(z_y - max_{i!=y} z_i) / (z_pi1 - z_pi3)`.
    Dlr {
        /// True class per example.
        labels: Vec<usize>,
    },
    /// Targeted DLR: `-(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4)/2)`.
    DlrTargeted {
        /// True class per example.
        labels: Vec<usize>,
        /// Target class per example.
        targets: Vec<usize>,
    },
    /// Carlini-Wagner margin: `max(z_y - max_{i!=y} z_i, -kappa)` untargeted.
    CwMargin {
        /// True class per example.
        labels: Vec<usize>,
        /// Confidence margin.
        kappa: f32,
    },
    /// The logit of one class per example (for inversion and DeepFool).
    Logit {
        /// Class per example.
        classes: Vec<usize>,
    },
    /// Softmax cross-entropy against a target distribution per example
    /// (`[batch * classes]`, rows summing to 1): distillation onto another
    /// model's probabilities, as surrogate training in model extraction does
    /// (Hinton et al. 2015; Orekondy et al. 2019, Knockoff Nets).
    SoftCrossEntropy {
        /// Target probabilities, row-major `[batch, classes]`.
        targets: Vec<f32>,
    },
}

/// Errors from loading or running a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// Tensor shapes do not fit.
    #[error("shape error: {0}")]
    Shape(String),
    /// The model uses an operator that is not supported.
    #[error("unsupported operator {op} in node '{node}'")]
    Unsupported {
        /// Operator type.
        op: String,
        /// Node name.
        node: String,
    },
    /// The model file is malformed.
    #[error("invalid model: {0}")]
    Invalid(String),
    /// Running the model would pass an execution limit (see
    /// [`ExecLimits`](crate::ExecLimits)); nothing was allocated.
    #[error("node '{node}': {what} is {size}, over the limit of {limit}")]
    Limit {
        /// Node name and operator type.
        node: String,
        /// What would exceed the limit.
        what: String,
        /// Its size (elements or multiply-accumulates).
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// Reading a file failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// A remote model could not be queried.
    #[error("remote model: {0}")]
    Remote(String),
    /// A query would send the model more examples than the query budget allows.
    #[error("query budget of {budget} examples exhausted ({used} used, {asked} more asked)")]
    QueryBudget {
        /// The budget, in examples.
        budget: u64,
        /// Examples already sent.
        used: u64,
        /// Examples in the refused batch.
        asked: u64,
    },
}

/// A model that can be queried: scores per class. Remote endpoints and
/// label-only APIs implement this.
pub trait Classifier: Send + Sync {
    /// Shape of one example, without the batch dimension (e.g. `[1, 28, 28]`).
    fn input_shape(&self) -> &[usize];
    /// Number of classes.
    fn num_classes(&self) -> usize;
    /// Logits (or scores) `[batch, classes]` for a batch `[batch, ..input_shape]`.
    fn logits(&self, x: &Tensor) -> Result<Tensor, ModelError>;
    /// Predicted class per example.
    fn predict(&self, x: &Tensor) -> Result<Vec<usize>, ModelError> {
        let z = self.logits(x)?;
        Ok((0..z.batch()).map(|i| argmax(z.row(i))).collect())
    }
}

/// A model with gradients with respect to its input (white-box).
pub trait Differentiable: Classifier {
    /// Per-example loss values, the gradient of their sum with respect to
    /// `x` (same shape as `x`), and the logits, in one forward and backward pass.
    fn loss_grad(&self, x: &Tensor, loss: &Loss) -> Result<(Vec<f32>, Tensor, Tensor), ModelError>;
}

// A borrowed model is a model, so wrappers that own their inner model
// (`QueryCounter<C>`, `LabelOnly<C>`, `Normalized<M>`) also take `&dyn
// Classifier` or `&dyn Differentiable`.
/// `Classifier` for a pointer to one, by forwarding every method.
macro_rules! forward_classifier {
    ($($ptr:ty),*) => {$(
        impl<T: Classifier + ?Sized> Classifier for $ptr {
            fn input_shape(&self) -> &[usize] {
                (**self).input_shape()
            }
            fn num_classes(&self) -> usize {
                (**self).num_classes()
            }
            fn logits(&self, x: &Tensor) -> Result<Tensor, ModelError> {
                (**self).logits(x)
            }
            fn predict(&self, x: &Tensor) -> Result<Vec<usize>, ModelError> {
                (**self).predict(x)
            }
        }
    )*};
}

forward_classifier!(&T, Box<T>);

impl<T: Differentiable + ?Sized> Differentiable for &T {
    fn loss_grad(&self, x: &Tensor, loss: &Loss) -> Result<(Vec<f32>, Tensor, Tensor), ModelError> {
        (**self).loss_grad(x, loss)
    }
}

/// Index of the largest value (the first on ties); 0 for an empty slice.
pub fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}
