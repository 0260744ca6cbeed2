//! Access-log lines (Apache, nginx) to ECS events.
//!
//! The pure-Python reference of everything here lives in `collectors/`; the
//! collector uses this module when it is installed, and tests hold the two to
//! each other over the corpora. Only lines of the plain shape are read here
//! (see `access`); every other line is handed back to the Python parser.

mod access;

use std::collections::HashMap;

use blake2::digest::consts::U16;
use blake2::{Blake2b, Digest};
use pyo3::exceptions::PyValueError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

use access::{clf_timestamp, parse_plain, url_fields, Access};

/// Entries kept in each cache before it is emptied (as the Python parser does).
const CACHE_LIMIT: usize = 4096;
/// The longest request target kept (in bytes): what repeats is short, and 4,096
/// kept megabyte-long lines would hold gigabytes.
const CACHED_TEXT: usize = 1024;

/// `blake2b(prefix + decimal offset, digest_size=16).hexdigest()`: `event.id`.
fn event_id(prefix: &[u8], offset: u64) -> [u8; 32] {
    let mut hasher = Blake2b::<U16>::new();
    hasher.update(prefix);
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut n = offset;
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    hasher.update(&digits[at..]);
    let digest = hasher.finalize();
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 32];
    for (i, byte) in digest.iter().enumerate() {
        out[2 * i] = HEX[usize::from(byte >> 4)];
        out[2 * i + 1] = HEX[usize::from(byte & 15)];
    }
    out
}

/// The compiled twin of `AccessLogParser._plain` and of the loop of
/// `textlog.line_batches` over the lines it reads.
#[pyclass(module = "govsoc_weblog")]
struct AccessLines {
    dataset: Py<PyString>,
    module: Py<PyString>,
    /// the last timestamp text and its conversion (lines come in time order)
    last_stamp: Option<(String, Py<PyString>)>,
    stamps: HashMap<String, Py<PyString>>,
    /// request targets repeat line after line: their `url.*` strings are kept
    urls: HashMap<Box<str>, UrlStrings>,
    /// `http.response.status_code` values (ints are immutable: shared, as small ints are)
    statuses: Vec<Option<Py<PyAny>>>,
}

/// The `url.*` strings of one request target.
struct UrlStrings {
    original: Py<PyString>,
    scheme: Option<Py<PyString>>,
    domain: Option<Py<PyString>>,
    path: Py<PyString>,
    query: Option<Py<PyString>>,
    extension: Option<Py<PyString>>,
}

impl UrlStrings {
    fn new(py: Python<'_>, target: &str) -> Option<Self> {
        let url = url_fields(target)?;
        let text = |value: &str| PyString::new(py, value).unbind();
        Some(Self {
            original: text(url.original),
            scheme: url.scheme.as_deref().map(text),
            domain: url.domain.map(text),
            path: text(url.path),
            query: url.query.map(text),
            extension: url.extension.as_deref().map(text),
        })
    }

    /// A new `url` dict (each event has its own) of the shared strings.
    fn dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let url = PyDict::new(py);
        url.set_item(intern!(py, "original"), self.original.bind(py))?;
        if let Some(scheme) = &self.scheme {
            url.set_item(intern!(py, "scheme"), scheme.bind(py))?;
        }
        if let Some(domain) = &self.domain {
            url.set_item(intern!(py, "domain"), domain.bind(py))?;
        }
        url.set_item(intern!(py, "path"), self.path.bind(py))?;
        if let Some(query) = &self.query {
            url.set_item(intern!(py, "query"), query.bind(py))?;
        }
        if let Some(extension) = &self.extension {
            url.set_item(intern!(py, "extension"), extension.bind(py))?;
        }
        Ok(url)
    }
}

/// A dict with room for `size` items from the start (no resizing on the way).
fn presized_dict(py: Python<'_>, size: isize) -> PyResult<Bound<'_, PyDict>> {
    // SAFETY: _PyDict_NewPresized gives a new reference to a dict, or NULL with
    // the exception set
    unsafe {
        Ok(
            Bound::from_owned_ptr_or_err(py, pyo3::ffi::_PyDict_NewPresized(size))?
                .cast_into_unchecked(),
        )
    }
}

impl AccessLines {
    fn timestamp<'py>(&mut self, py: Python<'py>, stamp: &str) -> Option<Bound<'py, PyString>> {
        if let Some((text, value)) = &self.last_stamp {
            if text == stamp {
                return Some(value.bind(py).clone());
            }
        }
        let value = match self.stamps.get(stamp) {
            Some(value) => value.clone_ref(py),
            None => {
                let value: Py<PyString> = PyString::new(py, &clf_timestamp(stamp)?).unbind();
                if self.stamps.len() >= CACHE_LIMIT {
                    self.stamps.clear();
                }
                self.stamps.insert(stamp.to_owned(), value.clone_ref(py));
                value
            }
        };
        let bound = value.bind(py).clone();
        self.last_stamp = Some((stamp.to_owned(), value));
        Some(bound)
    }

    fn url<'py>(&mut self, py: Python<'py>, target: &str) -> PyResult<Option<Bound<'py, PyDict>>> {
        if let Some(strings) = self.urls.get(target) {
            return strings.dict(py).map(Some);
        }
        let Some(strings) = UrlStrings::new(py, target) else {
            return Ok(None);
        };
        let url = strings.dict(py)?;
        if target.len() <= CACHED_TEXT {
            if self.urls.len() >= CACHE_LIMIT {
                self.urls.clear();
            }
            self.urls.insert(target.into(), strings);
        }
        Ok(Some(url))
    }

    fn status<'py>(&mut self, py: Python<'py>, code: u16) -> Bound<'py, PyAny> {
        let slot = &mut self.statuses[usize::from(code)];
        slot.get_or_insert_with(|| code.into_pyobject(py).expect("an int").into_any().unbind())
            .bind(py)
            .clone()
    }

    /// The event of a plain line and its `event` fields, or None for a line
    /// Python is to read.
    fn event<'py>(
        &mut self,
        py: Python<'py>,
        text: &str,
    ) -> PyResult<Option<(Bound<'py, PyDict>, Bound<'py, PyDict>)>> {
        let Some(access) = parse_plain(text) else {
            return Ok(None);
        };
        let Some(timestamp) = self.timestamp(py, access.stamp) else {
            return Ok(None);
        };
        let Some(url) = self.url(py, access.target)? else {
            return Ok(None);
        };
        let Access {
            client,
            client_is_ip,
            user,
            method,
            version,
            status,
            size,
            referrer,
            agent,
            ..
        } = access;

        // with outcome and id, and with the fields line_batches adds
        let fields = presized_dict(py, 8)?;
        fields.set_item(intern!(py, "kind"), intern!(py, "event"))?;
        fields.set_item(intern!(py, "dataset"), self.dataset.bind(py))?;
        fields.set_item(intern!(py, "module"), self.module.bind(py))?;
        fields.set_item(
            intern!(py, "category"),
            PyList::new(py, [intern!(py, "web")])?,
        )?;
        fields.set_item(
            intern!(py, "type"),
            PyList::new(py, [intern!(py, "access")])?,
        )?;
        fields.set_item(intern!(py, "original"), PyString::new(py, text))?;

        let event = presized_dict(py, 8)?;
        event.set_item(intern!(py, "@timestamp"), timestamp)?;
        event.set_item(intern!(py, "event"), &fields)?;

        let source = PyDict::new(py);
        let address = PyString::new(py, client);
        source.set_item(intern!(py, "address"), &address)?;
        let key = if client_is_ip {
            intern!(py, "ip")
        } else {
            intern!(py, "domain")
        };
        source.set_item(key, &address)?;
        event.set_item(intern!(py, "source"), source)?;

        event.set_item(intern!(py, "url"), url)?;

        let request = PyDict::new(py);
        let upper;
        let method = if method.bytes().all(|c| c.is_ascii_uppercase()) {
            method
        } else {
            upper = method.to_ascii_uppercase();
            &upper
        };
        let method_value = match method {
            "GET" => intern!(py, "GET").clone(),
            "POST" => intern!(py, "POST").clone(),
            "HEAD" => intern!(py, "HEAD").clone(),
            other => PyString::new(py, other),
        };
        request.set_item(intern!(py, "method"), method_value)?;
        let http = PyDict::new(py);
        http.set_item(intern!(py, "request"), &request)?;
        let version_value = match version {
            "1.1" => intern!(py, "1.1").clone(),
            "1.0" => intern!(py, "1.0").clone(),
            "2.0" => intern!(py, "2.0").clone(),
            other => PyString::new(py, other),
        };
        http.set_item(intern!(py, "version"), version_value)?;
        if status.is_some() || size.is_some() {
            let response = PyDict::new(py);
            if let Some(code) = status {
                response.set_item(intern!(py, "status_code"), self.status(py, code))?;
                let outcome = if code >= 400 {
                    intern!(py, "failure")
                } else {
                    intern!(py, "success")
                };
                fields.set_item(intern!(py, "outcome"), outcome)?;
            }
            if let Some(bytes) = size {
                response.set_item(intern!(py, "bytes"), bytes)?;
            }
            http.set_item(intern!(py, "response"), response)?;
        }
        if let Some(referrer) = referrer.filter(|r| !r.is_empty() && *r != "-") {
            request.set_item(intern!(py, "referrer"), PyString::new(py, referrer))?;
        }
        event.set_item(intern!(py, "http"), http)?;
        if user != "-" {
            let name = PyDict::new(py);
            name.set_item(intern!(py, "name"), PyString::new(py, user))?;
            event.set_item(intern!(py, "user"), name)?;
        }
        if let Some(agent) = agent.filter(|a| !a.is_empty() && *a != "-") {
            let user_agent = PyDict::new(py);
            user_agent.set_item(intern!(py, "original"), PyString::new(py, agent))?;
            event.set_item(intern!(py, "user_agent"), user_agent)?;
        }
        Ok(Some((event, fields)))
    }
}

#[pymethods]
impl AccessLines {
    #[new]
    fn new(py: Python<'_>, server: &str) -> PyResult<Self> {
        if server != "apache" && server != "nginx" {
            return Err(PyValueError::new_err(format!(
                "unknown web server {server:?} (apache or nginx)"
            )));
        }
        Ok(Self {
            dataset: PyString::intern(py, &format!("{server}.access")).unbind(),
            module: PyString::intern(py, server).unbind(),
            last_stamp: None,
            stamps: HashMap::new(),
            urls: HashMap::new(),
            statuses: (0..1000).map(|_| None).collect(),
        })
    }

    /// `AccessLogParser._plain`'s event of ``text``, or None where the Python
    /// parser is to read the line.
    fn parse<'py>(&mut self, py: Python<'py>, text: &str) -> PyResult<Option<Bound<'py, PyDict>>> {
        Ok(self.event(py, text)?.map(|(event, _)| event))
    }

    /// Reads ``lines[start:]`` (RawLine tuples) as `line_batches` would, appending
    /// each event (with ``event.id``, ``log.file.path`` and ``log.offset``) to
    /// ``events``, until ``room`` events were made or a line comes that Python is
    /// to read (over-long, not UTF-8, not of the plain shape). Returns the index
    /// of the first line not read.
    #[allow(clippy::too_many_arguments)]
    fn take(
        &mut self,
        py: Python<'_>,
        lines: &Bound<'_, PyList>,
        start: usize,
        room: usize,
        events: &Bound<'_, PyList>,
        id_prefix: &[u8],
        path: &Bound<'_, PyString>,
    ) -> PyResult<usize> {
        let count = lines.len();
        let mut index = start;
        let mut made = 0;
        while index < count && made < room {
            let item = lines.get_item(index)?;
            // anything but a well-formed RawLine of an ordinary line is Python's
            let Ok(line) = item.cast::<PyTuple>() else {
                break;
            };
            if line.len() < 4 || line.get_item(3)?.is_truthy()? {
                break; // over-long: Python dead-letters it
            }
            let data = line.get_item(2)?;
            let Ok(data) = data.cast::<PyBytes>() else {
                break;
            };
            let Ok(offset) = line.get_item(1)?.extract::<u64>() else {
                break;
            };
            let Ok(text) = std::str::from_utf8(data.as_bytes()) else {
                break;
            };
            let Some((event, fields)) = self.event(py, text)? else {
                break;
            };
            place(py, &event, &fields, id_prefix, offset, path)?;
            events.append(event)?;
            made += 1;
            index += 1;
        }
        Ok(index)
    }

    /// `take` over the lines of ``data`` (a ``LineBlock``'s) from position
    /// ``start``, the line there being at file offset ``offset``; it stops as
    /// well at a line longer than ``max_bytes`` and where no newline follows.
    /// Returns the position of the first line not taken and how many were.
    #[allow(clippy::too_many_arguments)]
    fn take_block(
        &mut self,
        py: Python<'_>,
        data: &Bound<'_, PyBytes>,
        start: usize,
        offset: u64,
        max_bytes: usize,
        room: usize,
        events: &Bound<'_, PyList>,
        id_prefix: &[u8],
        path: &Bound<'_, PyString>,
    ) -> PyResult<(usize, usize)> {
        let bytes = data.as_bytes();
        let (mut pos, mut offset, mut made) = (start, offset, 0);
        while made < room && pos < bytes.len() {
            let Some(size) = memchr::memchr(b'\n', &bytes[pos..]) else {
                break;
            };
            if size > max_bytes {
                break;
            }
            // as read_lines gives it: without its newline and trailing carriage returns
            let mut line = &bytes[pos..pos + size];
            while let [head @ .., b'\r'] = line {
                line = head;
            }
            let Ok(text) = std::str::from_utf8(line) else {
                break;
            };
            let Some((event, fields)) = self.event(py, text)? else {
                break;
            };
            place(py, &event, &fields, id_prefix, offset, path)?;
            events.append(event)?;
            made += 1;
            pos += size + 1;
            offset += size as u64 + 1;
        }
        Ok((pos, made))
    }
}

/// What `line_batches` adds to every event of a line: `event.id`, `log.file.path`
/// and `log.offset`.
fn place(
    py: Python<'_>,
    event: &Bound<'_, PyDict>,
    fields: &Bound<'_, PyDict>,
    id_prefix: &[u8],
    offset: u64,
    path: &Bound<'_, PyString>,
) -> PyResult<()> {
    let id = event_id(id_prefix, offset);
    let id = std::str::from_utf8(&id).expect("hex digits");
    fields.set_item(intern!(py, "id"), PyString::new(py, id))?;
    let file = PyDict::new(py);
    file.set_item(intern!(py, "path"), path)?;
    let log = PyDict::new(py);
    log.set_item(intern!(py, "file"), file)?;
    log.set_item(intern!(py, "offset"), offset)?;
    event.set_item(intern!(py, "log"), log)
}

/// `blake2b(prefix + str(offset), digest_size=16).hexdigest()` (for tests).
#[pyfunction]
fn line_event_id(prefix: &[u8], offset: u64) -> String {
    String::from_utf8(event_id(prefix, offset).to_vec()).expect("hex digits")
}

#[pymodule]
fn govsoc_weblog(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<AccessLines>()?;
    m.add_function(wrap_pyfunction!(line_event_id, m)?)?;
    Ok(())
}
