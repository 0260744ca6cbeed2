//! Access-log lines (Apache, nginx) to ECS events.
//!
//! The pure-Python reference of everything here lives in `collectors/`; the
//! collector uses this module when it is installed, and tests hold the two to
//! each other over the corpora.

use pyo3::prelude::*;

#[pymodule]
fn govsoc_weblog(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
