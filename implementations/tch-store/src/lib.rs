//! `bench_tch_store`: Rust-ML parts 1 and 2 (a central parameter store over LibTorch, through
//! tch-rs) for the `tch-store` plugin: LibTorch's tensors and autograd give the gradients;
//! the store, the layers and the optimizer steps are this crate's.
//!
//! `memory`, `layers`, `model` and `loss` are the article's design; this file is the Python
//! face. It links the LibTorch of the installed torch wheel (built with LIBTORCH_USE_PYTORCH=1),
//! which the plugin has already loaded by importing torch: one LibTorch in the process, so
//! `torch.set_num_threads` (the harness's thread limit) is this extension's too.

mod layers;
mod loss;
mod memory;
mod model;

use std::collections::HashMap;
use std::sync::Mutex;

use numpy::ndarray::ArrayD;
use numpy::{
    IntoPyArray, PyArrayDescrMethods, PyReadonlyArray1, PyUntypedArray, PyUntypedArrayMethods,
};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use tch::{Device, Kind, Tensor};

use layers::Compute;
use memory::Memory;
use model::{Activation, LayerSpec, Model};

/// LibTorch's kind for a NumPy dtype.
fn kind_of(array: &Bound<'_, PyUntypedArray>) -> PyResult<Kind> {
    let dtype = array.dtype();
    match (dtype.kind(), dtype.itemsize()) {
        (b'f', 4) => Ok(Kind::Float),
        (b'f', 8) => Ok(Kind::Double),
        (b'i', 8) => Ok(Kind::Int64),
        _ => Err(PyValueError::new_err(format!(
            "no tensor kind for dtype {dtype}"
        ))),
    }
}

/// A tensor over the memory of a C-contiguous NumPy array, without copying.
///
/// # Safety
/// The array must outlive the tensor, and nothing may write to either.
unsafe fn borrow_numpy(array: &Bound<'_, PyUntypedArray>) -> PyResult<Tensor> {
    if !array.is_c_contiguous() {
        return Err(PyValueError::new_err("expected a C-contiguous array"));
    }
    let shape: Vec<i64> = array.shape().iter().map(|&n| n as i64).collect();
    // SAFETY: the data pointer and the shape describe `array`'s own buffer; the caller
    // keeps the array alive and unwritten for the tensor's lifetime.
    let data = unsafe { (*array.as_array_ptr()).fields.data as *const u8 };
    Ok(unsafe { Tensor::from_blob(data, &shape, &[], kind_of(array)?, Device::Cpu) })
}

/// A tensor on `device` owning a copy of `array`.
fn copy_numpy(array: &Bound<'_, PyUntypedArray>, device: Device) -> PyResult<Tensor> {
    // SAFETY: the borrowed tensor lives only until it is copied, within this call.
    let borrowed = unsafe { borrow_numpy(array)? };
    Ok(match device {
        Device::Cpu => borrowed.copy(),
        _ => borrowed.to_device(device),
    })
}

/// The harness's device name: `cpu`, `cuda` (the current GPU, LibTorch's first) or `cuda:N`.
fn device_of(name: &str) -> PyResult<Device> {
    match name.split_once(':') {
        None if name == "cpu" => Ok(Device::Cpu),
        None if name == "cuda" => Ok(Device::Cuda(0)),
        Some(("cuda", index)) => index
            .parse()
            .map(Device::Cuda)
            .map_err(|_| PyValueError::new_err(format!("no device {name}"))),
        _ => Err(PyValueError::new_err(format!("no device {name}"))),
    }
}

fn to_numpy<'py>(py: Python<'py>, tensor: &Tensor) -> PyResult<Bound<'py, PyAny>> {
    fn convert<'py, T: tch::kind::Element + numpy::Element + Copy>(
        py: Python<'py>,
        tensor: &Tensor,
    ) -> PyResult<Bound<'py, PyAny>> {
        let array: ArrayD<T> = tensor
            .try_into()
            .map_err(|e| PyValueError::new_err(format!("{e}")))?;
        Ok(array.into_pyarray(py).into_any())
    }
    let tensor = tensor.detach();
    match tensor.kind() {
        Kind::Float => convert::<f32>(py, &tensor),
        Kind::Double => convert::<f64>(py, &tensor),
        Kind::Int64 => convert::<i64>(py, &tensor),
        kind => Err(PyValueError::new_err(format!(
            "no NumPy dtype for {kind:?}"
        ))),
    }
}

fn activation(name: Option<String>) -> PyResult<Activation> {
    match name.as_deref() {
        None => Ok(Activation::Identity),
        Some("relu") => Ok(Activation::Relu),
        Some("sigmoid") => Ok(Activation::Sigmoid),
        Some(other) => Err(PyValueError::new_err(format!("no activation {other}"))),
    }
}

/// One of the scenario's layer dataclasses, read by its type and attributes.
fn layer_spec(layer: &Bound<'_, PyAny>) -> PyResult<LayerSpec> {
    let attribute = |name: &str| layer.getattr(name);
    match layer.get_type().name()?.to_str()? {
        "Dense" => Ok(LayerSpec::Dense {
            activation: activation(attribute("activation")?.extract()?)?,
        }),
        "Conv2d" => Ok(LayerSpec::Conv2d {
            stride: attribute("stride")?.extract()?,
            padding: attribute("padding")?.extract()?,
            activation: activation(attribute("activation")?.extract()?)?,
        }),
        "MaxPool2d" => Ok(LayerSpec::MaxPool2d {
            size: attribute("size")?.extract()?,
            stride: attribute("stride")?.extract()?,
        }),
        "Flatten" => Ok(LayerSpec::Flatten),
        other => Err(PyValueError::new_err(format!("no layer {other}"))),
    }
}

/// `bench.api.Optimizer`, read by attribute.
#[derive(FromPyObject)]
struct OptimizerSpec {
    kind: String,
    lr: f64,
    momentum: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
}

/// The training images and labels: on the CPU, tensors over the caller's NumPy arrays,
/// which are kept here so that they live as long as the tensors; on a GPU, copies made once
/// by `load`, so that no training step copies data from the host.
struct TrainingData {
    x: Tensor,
    y: Tensor,
    _arrays: (Py<PyUntypedArray>, Py<PyUntypedArray>),
}

/// The scenario's optimizer: which of the store's updates follows each backward pass.
enum Update {
    Sgd {
        lr: f64,
    },
    Momentum {
        lr: f64,
        beta: f64,
    },
    Adam {
        lr: f64,
        beta1: f64,
        beta2: f64,
        eps: f64,
    },
}

impl Update {
    fn of(spec: OptimizerSpec) -> PyResult<Self> {
        let OptimizerSpec {
            kind,
            lr,
            momentum,
            beta1,
            beta2,
            eps,
        } = spec;
        match kind.as_str() {
            "sgd" => Ok(Self::Sgd { lr }),
            "ema-momentum" => Ok(Self::Momentum { lr, beta: momentum }),
            "adam" => Ok(Self::Adam {
                lr,
                beta1,
                beta2,
                eps,
            }),
            other => Err(PyValueError::new_err(format!("no optimizer {other}"))),
        }
    }

    fn apply(&self, mem: &mut Memory) {
        match *self {
            Self::Sgd { lr } => mem.apply_grads_sgd(lr),
            Self::Momentum { lr, beta } => mem.apply_grads_sgd_momentum(lr, beta),
            Self::Adam {
                lr,
                beta1,
                beta2,
                eps,
            } => mem.apply_grads_adam(lr, beta1, beta2, eps),
        }
    }
}

struct State {
    mem: Memory,
    model: Model,
    loss: fn(&Tensor, &Tensor) -> Tensor,
    update: Update,
    data: Option<TrainingData>,
    device: Device,
}

impl State {
    /// The article's training loop, over the given mini-batches: forward, cost, backward,
    /// the store's update. `indices` holds every batch, one after the other.
    fn train(&mut self, indices: &[i64], sizes: &[i64]) -> PyResult<f64> {
        let Self {
            mem,
            model,
            loss,
            update,
            data,
            device,
        } = self;
        let data = data
            .as_ref()
            .ok_or_else(|| PyValueError::new_err("load() first"))?;
        let indices = Tensor::from_slice(indices).to_device(*device);
        let mut error = Tensor::from(f64::NAN);
        let mut start = 0;
        for &size in sizes {
            let batch = indices.narrow(0, start, size);
            start += size;
            let pred = model.forward(mem, &data.x.index_select(0, &batch));
            error = loss(&data.y.index_select(0, &batch), &pred);
            error.backward();
            update.apply(mem);
        }
        Ok(error.double_value(&[]))
    }
}

/// A network of the scenario's layers on a `Memory`, trained by the store's own optimizer.
#[pyclass(module = "bench_tch_store")]
struct Trainer {
    // LibTorch tensors may move between threads but not be shared: one call at a time.
    state: Mutex<State>,
}

impl Trainer {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[pymethods]
impl Trainer {
    /// `layers`: the scenario's layer dataclasses; `weights`: (W, b) of every dense or conv
    /// layer, in order; `loss`: "cross-entropy" or "quadratic"; `device`: where the store,
    /// the data and every step live.
    #[new]
    #[pyo3(signature = (layers, weights, loss, optimizer, device = "cpu"))]
    fn new(
        layers: Vec<Bound<'_, PyAny>>,
        weights: Vec<(Bound<'_, PyUntypedArray>, Bound<'_, PyUntypedArray>)>,
        loss: &str,
        optimizer: OptimizerSpec,
        device: &str,
    ) -> PyResult<Self> {
        let device = device_of(device)?;
        let layers = layers
            .iter()
            .map(layer_spec)
            .collect::<PyResult<Vec<_>>>()?;
        let weights = weights
            .iter()
            .map(|(w, b)| Ok((copy_numpy(w, device)?, copy_numpy(b, device)?)))
            .collect::<PyResult<Vec<_>>>()?;
        let loss = match loss {
            "cross-entropy" => loss::cross_entropy,
            "quadratic" => loss::quadratic,
            other => return Err(PyValueError::new_err(format!("no loss {other}"))),
        };
        let mut mem = Memory::new();
        let model = Model::new(&mut mem, layers, weights);
        let state = State {
            mem,
            model,
            loss,
            update: Update::of(optimizer)?,
            data: None,
            device,
        };
        Ok(Self {
            state: Mutex::new(state),
        })
    }

    /// Keep the training data (C-contiguous, the weights' dtype; int64 labels): uncopied on
    /// the CPU, copied to the GPU once.
    fn load(&self, x: Bound<'_, PyUntypedArray>, y: Bound<'_, PyUntypedArray>) -> PyResult<()> {
        let mut state = self.state();
        let (x_tensor, y_tensor) = match state.device {
            // SAFETY: TrainingData keeps both arrays alive as long as the tensors; the
            // tensors are only read (index_select copies the batches out).
            Device::Cpu => unsafe { (borrow_numpy(&x)?, borrow_numpy(&y)?) },
            device => (copy_numpy(&x, device)?, copy_numpy(&y, device)?),
        };
        let arrays = (x.unbind(), y.unbind());
        state.data = Some(TrainingData {
            x: x_tensor,
            y: y_tensor,
            _arrays: arrays,
        });
        Ok(())
    }

    /// Train on each mini-batch in turn; return the last mini-batch's loss.
    fn train(
        &self,
        py: Python<'_>,
        indices: PyReadonlyArray1<'_, i64>,
        sizes: PyReadonlyArray1<'_, i64>,
    ) -> PyResult<f64> {
        let (indices, sizes) = (indices.as_slice()?, sizes.as_slice()?);
        py.detach(|| self.state().train(indices, sizes))
    }

    fn predict<'py>(
        &self,
        py: Python<'py>,
        x: Bound<'py, PyUntypedArray>,
    ) -> PyResult<Bound<'py, PyAny>> {
        // SAFETY: `x` is borrowed for this call only and read, never written.
        let inputs = unsafe { borrow_numpy(&x)? };
        let state = self.state();
        let inputs = inputs.to_device(state.device);
        let labels = tch::no_grad(|| state.model.forward(&state.mem, &inputs).argmax(1, false));
        to_numpy(py, &labels.to_device(Device::Cpu))
    }

    /// Copies of the store's tensors in push order: W1, b1, W2, b2, ...
    fn parameters<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyAny>>> {
        self.state()
            .mem
            .values()
            .iter()
            .map(|t| to_numpy(py, &t.to_device(Device::Cpu)))
            .collect()
    }
}

/// Threads of LibTorch's pools, as this extension sees them.
#[pyfunction]
fn thread_counts() -> HashMap<&'static str, usize> {
    HashMap::from([
        ("libtorch intra-op", tch::get_num_threads() as usize),
        ("libtorch inter-op", tch::get_num_interop_threads() as usize),
    ])
}

#[pymodule]
fn bench_tch_store(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<Trainer>()?;
    module.add_function(wrap_pyfunction!(thread_counts, module)?)?;
    Ok(())
}
