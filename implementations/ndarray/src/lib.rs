//! `bench_ndarray`: the MLPs of Goldbaum 2018 (Nielsen's network.py) and Qiita 2020 (Deep
//! Learning from Scratch ch.5) in Rust ndarray, for the `ndarray` plugin.
//!
//! The math is in `layers`, `loss`, `optimizer` and `network`; this file is the Python face.
//! The training data stays in the caller's NumPy arrays (read in place, never copied), and a
//! whole `train` call runs here without the GIL: Python hands over the indices of every
//! mini-batch of the call at once, drawn by the harness's `BatchSampler`.

mod layers;
mod loss;
mod network;
mod optimizer;

use std::collections::HashMap;

use ndarray::{Array1, Axis, LinalgScalar, ScalarOperand};
use num_traits::{Float, FromPrimitive};
use numpy::{
    Element, IntoPyArray, PyArray1, PyArray2, PyArrayDescrMethods, PyArrayMethods,
    PyReadonlyArray1, PyUntypedArray, PyUntypedArrayMethods, ToPyArray,
};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use layers::{Affine, Layer, Relu, Sigmoid};
use loss::{Loss, Quadratic, SoftmaxCrossEntropy};
use network::Network;
use optimizer::{Adam, EmaMomentum, Optimizer, Sgd};

/// The float types a network computes in: float32 and float64, as the scenario says.
pub trait Real:
    Float + FromPrimitive + LinalgScalar + ScalarOperand + Element + Send + Sync
{
}
impl<T: Float + FromPrimitive + LinalgScalar + ScalarOperand + Element + Send + Sync> Real for T {}

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

/// One dense layer as the plugin hands it over: W (in, out), b (out,), activation.
type DenseSpec<'py> = (
    Bound<'py, PyUntypedArray>,
    Bound<'py, PyUntypedArray>,
    Option<String>,
);

fn cast<F: Real>(value: f64) -> F {
    F::from_f64(value).expect("a hyper-parameter is a float")
}

/// The caller's training images and labels, referenced rather than copied.
type TrainingData<F> = (Py<PyArray2<F>>, Py<PyArray1<i64>>);

struct Trainer<F: Real> {
    network: Network<F>,
    data: Option<TrainingData<F>>,
}

impl<F: Real> Trainer<F> {
    fn new(layers: &[DenseSpec<'_>], loss: &str, optimizer: &OptimizerSpec) -> PyResult<Self> {
        let mut network_layers: Vec<Box<dyn Layer<F>>> = Vec::new();
        for (w, b, activation) in layers {
            let w = w.cast::<PyArray2<F>>()?.readonly().as_array().to_owned();
            let b = b.cast::<PyArray1<F>>()?.readonly().as_array().to_owned();
            network_layers.push(Box::new(Affine::new(w, b)));
            match activation.as_deref() {
                Some("relu") => network_layers.push(Box::new(Relu::new())),
                Some("sigmoid") => network_layers.push(Box::new(Sigmoid::new())),
                None => {}
                Some(other) => return Err(PyValueError::new_err(format!("no activation {other}"))),
            }
        }
        let loss: Box<dyn Loss<F>> = match loss {
            "cross-entropy" => Box::new(SoftmaxCrossEntropy::new()),
            "quadratic" => Box::new(Quadratic::new()),
            other => return Err(PyValueError::new_err(format!("no loss {other}"))),
        };
        let OptimizerSpec {
            kind,
            lr,
            momentum,
            beta1,
            beta2,
            eps,
        } = optimizer;
        let optimizer: Box<dyn Optimizer<F>> = match kind.as_str() {
            "sgd" => Box::new(Sgd { lr: cast(*lr) }),
            "ema-momentum" => Box::new(EmaMomentum::new(cast(*lr), cast(*momentum))),
            "adam" => Box::new(Adam::new(cast(*lr), cast(*beta1), cast(*beta2), cast(*eps))),
            other => return Err(PyValueError::new_err(format!("no optimizer {other}"))),
        };
        let network = Network {
            layers: network_layers,
            loss,
            optimizer,
        };
        Ok(Self {
            network,
            data: None,
        })
    }

    fn load(&mut self, x: &Bound<'_, PyUntypedArray>, y: Bound<'_, PyArray1<i64>>) -> PyResult<()> {
        self.data = Some((x.cast::<PyArray2<F>>()?.clone().unbind(), y.unbind()));
        Ok(())
    }

    /// One update per mini-batch; `indices` holds every batch of the call, one after the
    /// other, `sizes` how many indices each has.
    fn train(&mut self, py: Python<'_>, indices: &[i64], sizes: &[i64]) -> PyResult<f64> {
        let (x, y) = self
            .data
            .as_ref()
            .ok_or_else(|| PyValueError::new_err("load() first"))?;
        let (x, y) = (x.bind(py).readonly(), y.bind(py).readonly());
        let (x, y) = (x.as_array(), y.as_array());
        let network = &mut self.network;
        let loss = py.detach(|| {
            let mut loss = F::nan();
            let mut start = 0;
            for &size in sizes {
                let batch: Vec<usize> = indices[start..start + size as usize]
                    .iter()
                    .map(|&i| i as usize)
                    .collect();
                start += size as usize;
                let labels: Vec<usize> = batch.iter().map(|&i| y[i] as usize).collect();
                loss = network.train_step(x.select(Axis(0), &batch), &labels);
            }
            loss
        });
        Ok(loss.to_f64().unwrap_or(f64::NAN))
    }

    fn predict<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyUntypedArray>,
    ) -> PyResult<Bound<'py, PyArray1<i64>>> {
        let x = x.cast::<PyArray2<F>>()?.readonly();
        let x = x.as_array();
        let labels: Array1<usize> = py.detach(|| self.network.predict(x));
        Ok(labels.mapv(|label| label as i64).into_pyarray(py))
    }

    fn parameters<'py>(&self, py: Python<'py>) -> Vec<Bound<'py, PyAny>> {
        let weighted = self
            .network
            .layers
            .iter()
            .filter_map(|layer| layer.weights());
        weighted
            .flat_map(|(w, b)| [w.to_pyarray(py).into_any(), b.to_pyarray(py).into_any()])
            .collect()
    }
}

enum Precision {
    Single(Trainer<f32>),
    Double(Trainer<f64>),
}

/// The same call on whichever precision the network has.
macro_rules! on_trainer {
    ($precision:expr, $trainer:ident => $call:expr) => {
        match $precision {
            Precision::Single($trainer) => $call,
            Precision::Double($trainer) => $call,
        }
    };
}

/// A multi-layer perceptron of dense layers, in the dtype of its initial weights.
#[pyclass(module = "bench_ndarray")]
struct Mlp(Precision);

#[pymethods]
impl Mlp {
    #[new]
    fn new(layers: Vec<DenseSpec<'_>>, loss: &str, optimizer: OptimizerSpec) -> PyResult<Self> {
        let first = layers
            .first()
            .ok_or_else(|| PyValueError::new_err("no layers"))?;
        let dtype = first.0.dtype();
        if dtype.is_equiv_to(&numpy::dtype::<f32>(first.0.py())) {
            Ok(Self(Precision::Single(Trainer::new(
                &layers, loss, &optimizer,
            )?)))
        } else if dtype.is_equiv_to(&numpy::dtype::<f64>(first.0.py())) {
            Ok(Self(Precision::Double(Trainer::new(
                &layers, loss, &optimizer,
            )?)))
        } else {
            Err(PyValueError::new_err(format!(
                "weights of dtype {dtype}: float32 or float64"
            )))
        }
    }

    /// Keep references to the training data (C-contiguous, the network's dtype; int64 labels).
    fn load(&mut self, x: Bound<'_, PyUntypedArray>, y: Bound<'_, PyArray1<i64>>) -> PyResult<()> {
        on_trainer!(&mut self.0, trainer => trainer.load(&x, y))
    }

    /// Train on each mini-batch in turn; return the last mini-batch's loss.
    fn train(
        &mut self,
        py: Python<'_>,
        indices: PyReadonlyArray1<'_, i64>,
        sizes: PyReadonlyArray1<'_, i64>,
    ) -> PyResult<f64> {
        let (indices, sizes) = (indices.as_slice()?, sizes.as_slice()?);
        on_trainer!(&mut self.0, trainer => trainer.train(py, indices, sizes))
    }

    fn predict<'py>(
        &self,
        py: Python<'py>,
        x: Bound<'py, PyUntypedArray>,
    ) -> PyResult<Bound<'py, PyArray1<i64>>> {
        on_trainer!(&self.0, trainer => trainer.predict(py, &x))
    }

    /// Copies of W1, b1, W2, b2, ... in canonical layout.
    fn parameters<'py>(&self, py: Python<'py>) -> Vec<Bound<'py, PyAny>> {
        on_trainer!(&self.0, trainer => trainer.parameters(py))
    }
}

/// Threads of matrixmultiply's GEMM pool. matrixmultiply 0.3 has no public query, so this
/// applies its rule (src/threading.rs): MATMUL_NUM_THREADS, else the physical cores, clamped
/// to 1..=4, read once when the first product runs.
fn matmul_threads() -> usize {
    let requested = match std::env::var("MATMUL_NUM_THREADS") {
        Ok(value) if !value.is_empty() => value.parse().unwrap_or(1),
        _ => num_cpus::get_physical(),
    };
    requested.clamp(1, 4)
}

/// Thread pools of this extension and their sizes, for `Implementation.thread_counts()`.
#[pyfunction]
fn thread_counts() -> HashMap<&'static str, usize> {
    HashMap::from([("matrixmultiply", matmul_threads())])
}

#[pymodule]
fn bench_ndarray(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<Mlp>()?;
    module.add_function(wrap_pyfunction!(thread_counts, module)?)?;
    Ok(())
}
