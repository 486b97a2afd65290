//! The judges as Python classes: `ThresholdJudge` (the guide's single look) and the peers'
//! and the sequential judge, each holding the core's parameters.

use std::sync::Arc;

use canary_cli::JudgeName;
use canary_core::judge::{
    ArgoJudge, ArgoParameters, FlaggerJudge, FlaggerParameters, JudgeFactory, KayentaJudge,
    KayentaParameters, SequentialJudge, SequentialParameters, ThresholdJudge, ThresholdParameters,
};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use pythonize::pythonize;

use crate::errors;
use crate::values::{minutes, PyPolicy};

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyThresholdJudge>()?;
    m.add_class::<PyFlaggerJudge>()?;
    m.add_class::<PyArgoJudge>()?;
    m.add_class::<PyKayentaJudge>()?;
    m.add_class::<PySequentialJudge>()?;
    Ok(())
}

/// The guide's policy as a judge fed evidence over time: one look `warmup_minutes` into each
/// step, over the last `window_minutes`.
#[pyclass(name = "ThresholdJudge", module = "canary", frozen)]
pub(crate) struct PyThresholdJudge {
    parameters: ThresholdParameters,
}

#[pymethods]
impl PyThresholdJudge {
    /// A threshold judge with `policy` (default: the guide's) and the guide's 10-minute look
    /// over a 5-minute window unless told otherwise.
    #[new]
    #[pyo3(signature = (policy = None, warmup_minutes = None, window_minutes = None))]
    fn new(
        policy: Option<PyRef<'_, PyPolicy>>,
        warmup_minutes: Option<&Bound<'_, PyAny>>,
        window_minutes: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let mut parameters = ThresholdParameters::default();
        if let Some(p) = policy {
            parameters.policy = p.policy.clone();
        }
        if let Some(w) = warmup_minutes.filter(|w| !w.is_none()) {
            parameters.warmup = minutes("warmup_minutes", w)?;
        }
        if let Some(w) = window_minutes.filter(|w| !w.is_none()) {
            parameters.window = minutes("window_minutes", w)?;
        }
        ThresholdJudge::new(parameters.clone()).map_err(errors::core)?;
        Ok(PyThresholdJudge { parameters })
    }

    /// The judge's name, `threshold`.
    #[getter]
    fn name(&self) -> &str {
        "threshold"
    }

    /// Its parameters, as they serialize.
    #[getter]
    fn parameters<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        pythonize(py, &self.parameters).map_err(|e| errors::config("judge", e))
    }

    fn __repr__(&self) -> String {
        format!(
            "ThresholdJudge(warmup_minutes={}, window_minutes={})",
            self.parameters.warmup.as_secs_f64() / 60.0,
            self.parameters.window.as_secs_f64() / 60.0
        )
    }
}

/// A peer judge's class: built from keyword parameters named as its parameters serialize
/// (durations in seconds), every other field its default; unknown names are refused.
macro_rules! peer_judge {
    ($py:ident, $pyname:literal, $params:ty, $judge:ty, $doc:literal) => {
        #[doc = $doc]
        #[pyclass(name = $pyname, module = "canary", frozen)]
        pub(crate) struct $py {
            parameters: $params,
        }

        #[pymethods]
        impl $py {
            /// A judge with the given parameters (the rest at their defaults), checked.
            #[new]
            #[pyo3(signature = (**parameters))]
            fn new(parameters: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
                let parameters: $params = match parameters {
                    Some(d) => pythonize::depythonize(d.as_any())
                        .map_err(|e| errors::config("judge parameters", e))?,
                    None => <$params>::default(),
                };
                <$judge>::new(parameters.clone()).map_err(errors::core)?;
                Ok($py { parameters })
            }

            /// The judge's name.
            #[getter]
            fn name(&self) -> &str {
                JudgeFactory::name(&self.parameters)
            }

            /// Its parameters, as they serialize.
            #[getter]
            fn parameters<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
                pythonize(py, &self.parameters).map_err(|e| errors::config("judge", e))
            }

            fn __repr__(&self) -> String {
                format!("{}()", $pyname)
            }
        }
    };
}

peer_judge!(
    PyFlaggerJudge,
    "FlaggerJudge",
    FlaggerParameters,
    FlaggerJudge,
    "Flagger's canary analysis as a judge: canary-only threshold checks every interval."
);
peer_judge!(
    PyArgoJudge,
    "ArgoJudge",
    ArgoParameters,
    ArgoJudge,
    "An Argo Rollouts analysis as a judge: measurements with success and failure conditions."
);
peer_judge!(
    PyKayentaJudge,
    "KayentaJudge",
    KayentaParameters,
    KayentaJudge,
    "Kayenta's NetflixACAJudge: Mann-Whitney per metric, scored by groups, over growing windows."
);
peer_judge!(
    PySequentialJudge,
    "SequentialJudge",
    SequentialParameters,
    SequentialJudge,
    "The sequential, anytime-valid judge: confidence sequences on counts, latency histograms and gauges, judged at every scrape."
);

/// The factory behind any of the judge classes.
pub(crate) fn judge_factory(judge: &Bound<'_, PyAny>) -> PyResult<Arc<dyn JudgeFactory>> {
    if let Ok(j) = judge.cast::<PyThresholdJudge>() {
        return Ok(Arc::new(j.get().parameters.clone()));
    }
    if let Ok(j) = judge.cast::<PyFlaggerJudge>() {
        return Ok(Arc::new(j.get().parameters.clone()));
    }
    if let Ok(j) = judge.cast::<PyArgoJudge>() {
        return Ok(Arc::new(j.get().parameters.clone()));
    }
    if let Ok(j) = judge.cast::<PyKayentaJudge>() {
        return Ok(Arc::new(j.get().parameters.clone()));
    }
    if let Ok(j) = judge.cast::<PySequentialJudge>() {
        return Ok(Arc::new(j.get().parameters.clone()));
    }
    Err(PyTypeError::new_err(
        "judge must be a canary judge: ThresholdJudge, FlaggerJudge, ArgoJudge, KayentaJudge or SequentialJudge",
    ))
}

/// The Python judge object for a judge named in a config file, with its default parameters
/// (the sequential judge's from the file's `sequential` section); `None` for the threshold
/// policy's single look (the validator's default).
pub(crate) fn judge_object(
    py: Python<'_>,
    name: JudgeName,
    sequential: &SequentialParameters,
) -> PyResult<Option<Py<PyAny>>> {
    Ok(match name {
        JudgeName::Threshold => None,
        JudgeName::Sequential => Some(
            Py::new(
                py,
                PySequentialJudge {
                    parameters: sequential.clone(),
                },
            )?
            .into_any(),
        ),
        JudgeName::Flagger => Some(
            Py::new(
                py,
                PyFlaggerJudge {
                    parameters: FlaggerParameters::default(),
                },
            )?
            .into_any(),
        ),
        JudgeName::Argo => Some(
            Py::new(
                py,
                PyArgoJudge {
                    parameters: ArgoParameters::default(),
                },
            )?
            .into_any(),
        ),
        JudgeName::Kayenta => Some(
            Py::new(
                py,
                PyKayentaJudge {
                    parameters: KayentaParameters::default(),
                },
            )?
            .into_any(),
        ),
    })
}
