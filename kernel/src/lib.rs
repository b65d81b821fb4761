#[cfg(feature = "python")]
use pyo3::prelude::*;

#[cfg(feature = "python")]
#[pymodule]
fn promotions_kernel(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("FORMAT_VERSION", 7)?;
    Ok(())
}
