//! The Python face of the kernel: decoding and splitting a partition batch, and a shard's sessions.
//! The Python adapter is `dataflows/kernel_engine.py`; `promotion/` is the specification these
//! must match.

// PyO3 0.22's macros expand `PyResult` returns into conversions newer clippy calls useless.
#![allow(clippy::useless_conversion)]

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};

use crate::decode::decode_plain;
use crate::event::{Event, Kind, KINDS, MAX_MS, NO_TIME};
use crate::sessions::{LateEvent, ShardSessions};
use crate::shard::StepOutput;

/// One partition batch, decoded: events by record index, and the records left to Python.
#[pyclass(module = "promotions_kernel")]
pub struct Decoded {
    events: Vec<Option<Event>>,
    #[pyo3(get)]
    unvouched: Vec<usize>,
}

/// Decode a batch; an event with a ts beyond `latest_ms` (the future-timestamp guard) is left to
/// Python, which words its rejection.
#[pyfunction]
#[pyo3(signature = (values, max_bytes, latest_ms = MAX_MS))]
fn decode(values: &Bound<'_, PyList>, max_bytes: usize, latest_ms: i64) -> PyResult<Decoded> {
    let mut events = Vec::with_capacity(values.len());
    let mut unvouched = Vec::new();
    for (index, value) in values.iter().enumerate() {
        let raw = value.downcast::<PyBytes>()?.as_bytes();
        let event = decode_plain(raw, max_bytes).filter(|e| e.ts <= latest_ms);
        if event.is_none() {
            unvouched.push(index);
        }
        events.push(event);
    }
    Ok(Decoded { events, unvouched })
}

fn event_from_py(event: &Bound<'_, PyAny>) -> PyResult<Event> {
    let kind: String = event.get_item(3)?.extract()?;
    Ok(Event {
        ts: event.get_item(0)?.extract()?,
        event_id: event.get_item(1)?.extract::<String>()?.into(),
        user_id: event.get_item(2)?.extract::<String>()?.into(),
        kind: Kind::from_name(&kind).ok_or_else(|| PyValueError::new_err(format!("unknown type {kind}")))?,
        source: event.get_item(4)?.extract::<String>()?.into(),
        product_id: event.get_item(5)?.extract::<Option<String>>()?.map(Into::into),
        category: event.get_item(6)?.extract::<Option<String>>()?.map(Into::into),
        price: event.get_item(7)?.extract()?,
        quantity: event.get_item(8)?.extract()?,
    })
}

fn event_to_py<'py>(py: Python<'py>, e: &Event) -> Bound<'py, PyTuple> {
    PyTuple::new_bound(
        py,
        [
            e.ts.into_py(py),
            e.event_id.as_ref().into_py(py),
            e.user_id.as_ref().into_py(py),
            e.kind.name().into_py(py),
            e.source.as_ref().into_py(py),
            e.product_id.as_deref().into_py(py),
            e.category.as_deref().into_py(py),
            e.price.into_py(py),
            e.quantity.into_py(py),
        ],
    )
}

#[pymethods]
impl Decoded {
    /// A record the Python decoder found valid after all.
    fn accept(&mut self, index: usize, event: &Bound<'_, PyAny>) -> PyResult<()> {
        let slot = self.events.get_mut(index).ok_or_else(|| PyValueError::new_err("index out of range"))?;
        *slot = Some(event_from_py(event)?);
        Ok(())
    }

    /// Valid events per type name.
    fn type_counts<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let mut counts = [0u64; 7];
        for event in self.events.iter().flatten() {
            counts[event.kind.index()] += 1;
        }
        let out = PyDict::new_bound(py);
        for kind in KINDS {
            if counts[kind.index()] > 0 {
                out.set_item(kind.name(), counts[kind.index()])?;
            }
        }
        Ok(out)
    }

    #[getter]
    fn valid(&self) -> usize {
        self.events.iter().flatten().count()
    }

    /// Split the events by user shard (crc32 of user_id), keeping partition order; every shard
    /// gets a piece, empty or not, so each shard's watermark follows the partition.
    fn split(&mut self, partition: String, shards: usize, last: bool) -> Vec<Work> {
        let mut work: Vec<Work> = (0..shards)
            .map(|_| Work { partition: partition.clone(), events: Vec::new(), highs_before: Vec::new(), batch_high: NO_TIME, last })
            .collect();
        let mut high = NO_TIME;
        for event in std::mem::take(&mut self.events).into_iter().flatten() {
            let shard = crc32fast::hash(event.user_id.as_bytes()) as usize % shards;
            let ts = event.ts;
            work[shard].events.push(event);
            work[shard].highs_before.push(high);
            high = high.max(ts);
        }
        for piece in &mut work {
            piece.batch_high = high;
        }
        work
    }
}

/// One shard's share of one partition batch (pickles, so it can cross to another worker).
#[pyclass(module = "promotions_kernel")]
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Work {
    #[pyo3(get)]
    partition: String,
    events: Vec<Event>,
    #[pyo3(get)]
    highs_before: Vec<i64>,
    #[pyo3(get)]
    batch_high: i64,
    #[pyo3(get, name = "final")]
    last: bool,
}

#[pymethods]
impl Work {
    fn __len__(&self) -> usize {
        self.events.len()
    }

    fn __reduce__<'py>(&self, py: Python<'py>) -> PyResult<(PyObject, (Bound<'py, PyBytes>,))> {
        let bytes = serde_json::to_vec(self).map_err(|e| PyValueError::new_err(e.to_string()))?;
        let rebuild = py.import_bound("promotions_kernel")?.getattr("work_from_bytes")?;
        Ok((rebuild.unbind(), (PyBytes::new_bound(py, &bytes),)))
    }

    /// The events as Python tuples (for tests and tools).
    fn events<'py>(&self, py: Python<'py>) -> Vec<Bound<'py, PyTuple>> {
        self.events.iter().map(|e| event_to_py(py, e)).collect()
    }
}

#[pyfunction]
fn work_from_bytes(data: &[u8]) -> PyResult<Work> {
    serde_json::from_slice(data).map_err(|e| PyValueError::new_err(e.to_string()))
}

/// One user shard: sessions, profiles, rules in force, and what closed sessions produce.
#[pyclass(module = "promotions_kernel")]
pub struct Shard {
    inner: crate::shard::Shard,
}

type StepLists<'py> = (Bound<'py, PyList>, Bound<'py, PyList>);

/// (notifications as (user_id, value, notification_id, action, rule), closed sessions as
/// (close_reason, start, end, events)).
fn step_to_py<'py>(py: Python<'py>, out: StepOutput) -> PyResult<StepLists<'py>> {
    let notifications = PyList::empty_bound(py);
    for n in out.notifications {
        notifications.append((&*n.user_id, PyBytes::new_bound(py, &n.value), n.id, n.action, n.rule))?;
    }
    let closed = PyList::empty_bound(py);
    for c in out.closed {
        closed.append((c.reason.name(), c.start, c.end, c.events))?;
    }
    Ok((notifications, closed))
}

fn late_to_py<'py>(py: Python<'py>, late: Vec<LateEvent>, partition: &str) -> PyResult<Bound<'py, PyList>> {
    let out = PyList::empty_bound(py);
    for l in late {
        out.append((event_to_py(py, &l.event), l.watermark, partition))?;
    }
    Ok(out)
}

#[pymethods]
impl Shard {
    #[new]
    fn new(gap_ms: i64, lateness_ms: i64, idle_timeout_ms: i64, profile_ttl_ms: i64, partitions: Vec<String>, now_ms: i64) -> Self {
        let sessions = ShardSessions::new(gap_ms, lateness_ms, idle_timeout_ms, &partitions, now_ms);
        Shard { inner: crate::shard::Shard::new(sessions, profile_ttl_ms) }
    }

    /// Decide with this rules document (JSON of `promotion.rules.dump_rules`, validated).
    fn set_rules(&mut self, document: &[u8]) -> PyResult<()> {
        self.inner.set_rules(document).map_err(|e| PyValueError::new_err(format!("rules document: {e}")))
    }

    /// The rules document in force (JSON bytes), or None.
    fn rules_document<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        self.inner.rules_document().map(|d| PyBytes::new_bound(py, d))
    }

    /// (notifications, closed sessions, late events as (event, watermark, partition)).
    fn on_batch<'py>(&mut self, py: Python<'py>, work: &Bound<'py, Work>, now_ms: i64) -> PyResult<(Bound<'py, PyList>, Bound<'py, PyList>, Bound<'py, PyList>)> {
        let mut piece = work.borrow_mut();
        let events = std::mem::take(&mut piece.events);
        let highs = std::mem::take(&mut piece.highs_before);
        let mut closed = Vec::new();
        let mut late = Vec::new();
        self.inner.sessions.on_batch(&piece.partition, events, &highs, piece.batch_high, now_ms, piece.last, &mut closed, &mut late);
        let mut out = StepOutput::default();
        self.inner.finish(closed, &mut out);
        let (notifications, closed) = step_to_py(py, out)?;
        Ok((notifications, closed, late_to_py(py, late, &piece.partition)?))
    }

    fn on_tick<'py>(&mut self, py: Python<'py>, now_ms: i64) -> PyResult<StepLists<'py>> {
        let mut closed = Vec::new();
        self.inner.sessions.on_tick(now_ms, &mut closed);
        let mut out = StepOutput::default();
        self.inner.finish(closed, &mut out);
        step_to_py(py, out)
    }

    fn on_eof<'py>(&mut self, py: Python<'py>) -> PyResult<StepLists<'py>> {
        let mut closed = Vec::new();
        self.inner.sessions.on_eof(&mut closed);
        let mut out = StepOutput::default();
        self.inner.finish(closed, &mut out);
        step_to_py(py, out)
    }

    #[getter]
    fn watermark(&self) -> i64 {
        self.inner.sessions.watermark.value
    }

    #[getter]
    fn open_users(&self) -> usize {
        self.inner.sessions.users.len()
    }

    #[getter]
    fn profiles(&self) -> usize {
        self.inner.profiles.len()
    }

    fn __contains__(&self, user_id: &str) -> bool {
        self.inner.sessions.users.contains_key(user_id)
    }

    /// (sessions started, repeated events dropped) since the last call.
    fn take_counts(&mut self) -> (u64, u64) {
        let s = &mut self.inner.sessions;
        let counts = (s.opened, s.duplicates);
        s.opened = 0;
        s.duplicates = 0;
        counts
    }

    /// The shard as a format-7 snapshot document (`promotion/snapshot.py`), JSON bytes.
    fn snapshot<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new_bound(py, &self.inner.snapshot())
    }

    /// Adopt a format-7 document (JSON bytes): profiles, rules, watermark and users.
    fn restore(&mut self, document: &[u8], now_ms: i64) -> PyResult<()> {
        self.inner.restore(document, now_ms).map_err(|e| PyValueError::new_err(format!("shard snapshot: {e}")))
    }
}

#[pymodule]
fn promotions_kernel(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("SNAPSHOT_VERSION", 7)?;
    m.add_function(wrap_pyfunction!(decode, m)?)?;
    m.add_function(wrap_pyfunction!(work_from_bytes, m)?)?;
    m.add_class::<Decoded>()?;
    m.add_class::<Work>()?;
    m.add_class::<Shard>()?;
    Ok(())
}
