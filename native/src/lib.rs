//! govsoc's native accelerators: the hot loops of two collectors, compiled.
//!
//! Each function here has a pure-Python reference in `collectors/` that gives the
//! same events field for field; the Python side uses this module when it is
//! installed and tests hold the two to each other over the corpora.

use pyo3::prelude::*;

mod access_log;
mod evtx_ecs;

#[pymodule]
fn govsoc_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    evtx_ecs::register(m)?;
    access_log::register(m)?;
    Ok(())
}
