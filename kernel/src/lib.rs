use pyo3::prelude::*;

#[pymodule]
fn promotions_kernel(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("FORMAT_VERSION", 7)?;
    Ok(())
}
