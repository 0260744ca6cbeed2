//! Windows EVTX records to ECS events, compiled over the evtx crate.
//!
//! The pure-Python reference of everything here lives in `collectors/`
//! (`collectors.windows.winlog.winlog_event` and `collectors.windows.ecs.enrich`);
//! the collector uses this module when it is installed, and tests hold the two to
//! each other over the corpora.
//!
//! [`EvtxRecords`] reads a file's chunks the way the `evtx` Python package
//! (pyevtx-rs) does — same crate, same settings, same order — renders each record
//! as that package's JSON text, and maps it to the event dict. A record whose
//! mapping meets anything this code is not sure to answer as Python would is
//! handed back as its JSON text, for the Python mapping; the first parser error
//! stops the reader, and the caller goes on from there with the Python package.

mod ecs;
mod json;
mod pytext;
mod tree;
mod winlog;

use std::fs::File;
use std::sync::Arc;

use blake2::digest::consts::U16;
use blake2::{Blake2b, Digest};
use evtx::err::EvtxError;
use evtx::{EvtxParser, IntoIterChunks, ParserSettings, SerializedEvtxRecord};
use pyo3::exceptions::{PyOSError, PyRuntimeError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};

use crate::pytext::{py_lower, Fallback, R};
use std::hash::Hasher;

use crate::tree::{obj_to_py, Strings, V};

type Blake2b128 = Blake2b<U16>;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// What the events of one (computer, channel) share: the dataset and the start
/// of the bytes their ids hash.
struct Source {
    computer: String,
    channel: String,
    dataset: Py<PyString>,
    /// blake2b over `evtx:<computer>:<channel>\0` (lower-cased)
    prefix: Blake2b128,
    /// `evtx:<computer>:<channel>\0content:` (lower-cased)
    content_prefix: String,
}

const SOURCE_SLOTS: usize = 64;

// The state kept from record to record, and from file to file (field names,
// channels): one per thread, as the interpreter is. Never dropped: it lives as
// long as the module.
thread_local! {
    static CONTEXT: std::mem::ManuallyDrop<std::cell::RefCell<Context>> =
        std::mem::ManuallyDrop::new(std::cell::RefCell::new(Context::new()));
}

/// Runs `f` with the thread's context (a fresh one when it is in use: a
/// finalizer run by the collector in the middle of a record may map another).
fn with_context<T>(f: impl FnOnce(&mut Context) -> T) -> T {
    CONTEXT.with(|context| match context.try_borrow_mut() {
        Ok(mut shared) => f(&mut shared),
        Err(_) => f(&mut Context::new()),
    })
}

/// String objects and sources.
struct Context {
    strings: Strings,
    sources: Vec<Option<Source>>,
}

impl Context {
    fn new() -> Self {
        Context { strings: Strings::default(), sources: (0..SOURCE_SLOTS).map(|_| None).collect() }
    }

    fn source(&mut self, py: Python<'_>, computer: &str, channel: &str) -> R<&Source> {
        let mut hasher = tree::FxHasher::default();
        hasher.write(computer.as_bytes());
        hasher.write(b"\x00");
        hasher.write(channel.as_bytes());
        let slot = hasher.finish() as usize % SOURCE_SLOTS;
        let known = matches!(&self.sources[slot],
                             Some(s) if s.computer == computer && s.channel == channel);
        if !known {
            let lowered = format!("evtx:{}:{}\x00", py_lower(computer)?, py_lower(channel)?);
            let mut prefix = Blake2b128::new();
            prefix.update(lowered.as_bytes());
            self.sources[slot] = Some(Source {
                computer: computer.to_owned(),
                channel: channel.to_owned(),
                dataset: PyString::new(py, &winlog::dataset_for_channel(channel)?).unbind(),
                prefix,
                content_prefix: format!("{lowered}content:"),
            });
        }
        self.sources[slot].as_ref().ok_or(Fallback)
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

/// The event of one record's JSON text, or `None` when Python is to map it.
fn map_record<'py>(py: Python<'py>, text: &str, original: Bound<'py, PyString>,
                   context: &mut Context) -> PyResult<Option<Bound<'py, PyDict>>> {
    let Some(value) = json::parse(text) else { return Ok(None) };
    match build(py, value, text, context) {
        Ok(mut event) => {
            event.sub("event").set("original", V::P(original.into_any().unbind()));
            Ok(Some(obj_to_py(py, event, &mut context.strings)?))
        }
        Err(Fallback) => Ok(None),
    }
}

fn build<'a>(py: Python<'_>, value: json::J<'a>, text: &'a str, context: &mut Context)
             -> R<tree::Obj<'a>> {
    let mut base = winlog::base_event(value)?;
    ecs::enrich(&mut base.event, &base.data, &base.provider_name, &base.code)?;
    let source = context.source(py, &base.computer, &base.channel)?;
    // `record_identity` / `content_identity` of collectors.windows.winlog
    let id = if base.record_id.is_empty() {
        let digest = hex(&Blake2b128::digest(text.as_bytes()));
        let mut hasher = Blake2b128::new();
        hasher.update(source.content_prefix.as_bytes());
        hasher.update(digest.as_bytes());
        hex(&hasher.finalize())
    } else {
        let mut hasher = source.prefix.clone();
        hasher.update(base.record_id.as_bytes());
        hasher.update(b"@");
        // the time cut to milliseconds (the timestamp is ASCII here)
        hasher.update(&base.timestamp.as_bytes()[..23.min(base.timestamp.len())]);
        hex(&hasher.finalize())
    };
    let fields = base.event.sub("event");
    fields.set("dataset", V::P(source.dataset.clone_ref(py).into_any()));
    fields.set("id", V::U(std::borrow::Cow::Owned(id)));
    if !base.data.is_empty() {
        base.event.sub("winlog").set("event_data", V::J(base.data));
    }
    Ok(base.event)
}

type Rendered = Result<SerializedEvtxRecord<String>, EvtxError>;

/// The records of one EVTX file as ECS events, read in runs.
#[pyclass(unsendable, module = "govsoc_evtx")]
pub struct EvtxRecords {
    chunks: IntoIterChunks<File>,
    settings: Arc<ParserSettings>,
    pending: std::vec::IntoIter<Rendered>,
    /// Records taken from the parser so far (mapped here or handed back).
    #[pyo3(get)]
    consumed: u64,
    /// The parser failed (a chunk or record it could not read): the caller goes on
    /// with the Python package after `consumed` records.
    #[pyo3(get)]
    failed: bool,
    finished: bool,
}

impl EvtxRecords {
    /// The next rendered record; `Err` when the parser could not read on.
    fn next_record(&mut self) -> Option<Result<SerializedEvtxRecord<String>, ()>> {
        if self.failed || self.finished {
            return None;
        }
        loop {
            if let Some(record) = self.pending.next() {
                return Some(record.map_err(|_| ()));
            }
            match self.chunks.next() {
                None => {
                    self.finished = true;
                    return None;
                }
                Some(Err(_)) => return Some(Err(())),
                Some(Ok(mut data)) => match data.parse(self.settings.clone()) {
                    Err(_) => return Some(Err(())),
                    Ok(mut chunk) => {
                        let records: Vec<Rendered> = chunk
                            .iter()
                            .map(|record| record.and_then(|r| r.into_json()))
                            .collect();
                        self.pending = records.into_iter();
                    }
                },
            }
        }
    }
}

#[pymethods]
impl EvtxRecords {
    /// Opens ``path`` as the ``evtx`` package does (``PyEvtxParser(path)``).
    #[new]
    fn new(path: std::path::PathBuf) -> PyResult<Self> {
        let file = File::open(&path).map_err(|e| PyOSError::new_err(e.to_string()))?;
        let settings = ParserSettings::new();
        let parser = EvtxParser::from_read_seek(file)
            .map_err(|e| PyRuntimeError::new_err(e.to_string()))?
            .with_configuration(settings.clone());
        // values repeat within a log; each file starts its own
        with_context(|context| context.strings.forget_values());
        Ok(EvtxRecords {
            chunks: parser.into_chunks(),
            settings: Arc::new(settings),
            pending: Vec::new().into_iter(),
            consumed: 0,
            failed: false,
            finished: false,
        })
    }

    /// Maps up to ``limit`` records, appending their events to ``events``.
    ///
    /// Returns ``(taken, last_record_id, handed_back)``: the records taken, the
    /// record id of the last, and — when the last could not be mapped here — its
    /// JSON text for the Python mapping (it is not in ``events``). ``taken`` is 0
    /// at the end of the file or when the parser failed (see ``failed``).
    fn read<'py>(&mut self, py: Python<'py>, events: &Bound<'py, PyList>, limit: usize)
                 -> PyResult<(usize, Option<u64>, Option<String>)> {
        let mut taken = 0;
        let mut last = None;
        while taken < limit {
            let record = match self.next_record() {
                None => break,
                Some(Err(_)) => {
                    self.failed = true;
                    break;
                }
                Some(Ok(record)) => record,
            };
            self.consumed += 1;
            taken += 1;
            last = Some(record.event_record_id);
            // SAFETY: an owned reference to a new str
            let original = unsafe {
                Bound::from_owned_ptr(py, tree::new_str(py, &record.data)?).cast_into_unchecked()
            };
            match with_context(|context| map_record(py, &record.data, original, context))? {
                Some(event) => events.append(event)?,
                None => return Ok((taken, last, Some(record.data))),
            }
        }
        Ok((taken, last, None))
    }
}

/// The ECS event of one record's JSON text (as ``evtx`` renders it), or None
/// when the Python mapping is to decide (``collectors.evtx.record_to_event`` is
/// the reference). For tests of the mapping on records no file holds.
#[pyfunction]
fn map_json<'py>(py: Python<'py>, text: &str) -> PyResult<Option<Bound<'py, PyDict>>> {
    with_context(|context| map_record(py, text, PyString::new(py, text), context))
}

#[pymodule]
fn govsoc_evtx(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<EvtxRecords>()?;
    m.add_function(wrap_pyfunction!(map_json, m)?)?;
    Ok(())
}
