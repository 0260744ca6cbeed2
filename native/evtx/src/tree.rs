//! The event while it is built (small ordered maps), and its turning into
//! Python dicts with shared key objects.

use std::borrow::Cow;
use std::hash::Hasher;

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use crate::json::{Members, J};

/// A value of the event.
pub enum V<'a> {
    S(Cow<'a, str>),
    K(&'static str),
    I(i64),
    L(Vec<V<'a>>),
    D(Obj<'a>),
    /// A data section (`winlog.event_data`, `winlog.user_data`): strings and lists.
    J(Members<'a>),
    /// A Python object made once and shared (a cached string).
    P(Py<PyAny>),
    /// A string that repeats from event to event (channel, computer, provider,
    /// event code...): one shared string object per value.
    R(Cow<'a, str>),
    /// A string unique to its event (ids, times): never looked up in the cache.
    U(Cow<'a, str>),
}

/// A small insertion-ordered map with static keys.
#[derive(Default)]
pub struct Obj<'a>(pub Vec<(&'static str, V<'a>)>);

impl<'a> Obj<'a> {
    pub fn new() -> Self {
        Obj(Vec::with_capacity(8))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn get(&self, key: &str) -> Option<&V<'a>> {
        self.0.iter().find(|(k, _)| same(k, key)).map(|(_, v)| v)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut V<'a>> {
        self.0.iter_mut().find(|(k, _)| same(k, key)).map(|(_, v)| v)
    }

    pub fn contains(&self, key: &str) -> bool {
        self.0.iter().any(|(k, _)| same(k, key))
    }

    /// `node[key] = value`
    pub fn set(&mut self, key: &'static str, value: V<'a>) {
        match self.get_mut(key) {
            Some(slot) => *slot = value,
            None => self.0.push((key, value)),
        }
    }

    /// `_sub(node, key)`: the child object, made when missing.
    pub fn sub(&mut self, key: &'static str) -> &mut Obj<'a> {
        let index = match self.0.iter().position(|(k, _)| same(k, key)) {
            Some(i) => i,
            None => {
                self.0.push((key, V::D(Obj::new())));
                self.0.len() - 1
            }
        };
        match &mut self.0[index].1 {
            V::D(obj) => obj,
            other => {
                *other = V::D(Obj::new());
                match other {
                    V::D(obj) => obj,
                    _ => unreachable!(),
                }
            }
        }
    }
}

/// Key equality, cheap for the usual cases: the same literal, or a different
/// first byte.
#[inline]
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && (a.as_ptr() == b.as_ptr()
            || (a.as_bytes().first() == b.as_bytes().first() && a.as_bytes() == b.as_bytes()))
}

/// FxHash: keys are short and trusted (field names), so a fast hash pays.
#[derive(Default)]
pub struct FxHasher(u64);

impl Hasher for FxHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let word = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
            self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ b as u64).wrapping_mul(K);
        }
    }
}


/// Python string objects for names and repeated values, made once: direct-mapped
/// tables (a miss replaces the slot; dicts hold their own references).
pub struct Strings {
    statics: Vec<Option<StaticSlot>>,
    names: Vec<Option<NameSlot>>,
    values: Vec<Option<(u64, Py<PyString>)>>,
    /// the value slots in use, so forgetting them does not walk the table
    filled: Vec<usize>,
}

/// (address, length) of a `&'static str` and its string object
type StaticSlot = (usize, usize, Py<PyString>);
/// (hash, text) of a name and its string object
type NameSlot = (u64, Box<str>, Py<PyString>);

const STATIC_SLOTS: usize = 1024;
const NAME_SLOTS: usize = 4096;
const VALUE_SLOTS: usize = 8192;
/// Strings up to this length are shared between events when they repeat (user
/// names, images, SIDs, codes...); longer ones are rarely the same twice.
const SHARED_MAX: usize = 64;

impl Default for Strings {
    fn default() -> Self {
        Strings {
            statics: (0..STATIC_SLOTS).map(|_| None).collect(),
            names: (0..NAME_SLOTS).map(|_| None).collect(),
            values: (0..VALUE_SLOTS).map(|_| None).collect(),
            filled: Vec::new(),
        }
    }
}

impl Strings {
    /// A borrowed reference to the (interned) string object of `s`.
    fn of_static(&mut self, py: Python<'_>, s: &'static str) -> *mut ffi::PyObject {
        let (ptr, len) = (s.as_ptr() as usize, s.len());
        let slot = ((ptr >> 3) ^ (ptr >> 13) ^ len) % STATIC_SLOTS;
        match &self.statics[slot] {
            Some((p, l, object)) if *p == ptr && *l == len => object.as_ptr(),
            _ => {
                let object = PyString::intern(py, s).unbind();
                let raw = object.as_ptr();
                self.statics[slot] = Some((ptr, len, object));
                raw
            }
        }
    }

    /// A borrowed reference to the interned string object of a key.
    fn of_name(&mut self, py: Python<'_>, s: &str) -> *mut ffi::PyObject {
        cached(&mut self.names, py, s)
    }

    /// A new reference to a string object of `s`, shared with earlier events
    /// when one of them had the same value (strings are immutable).
    pub fn of_value(&mut self, py: Python<'_>, s: &str) -> PyResult<*mut ffi::PyObject> {
        let hash = fx_hash(s.as_bytes());
        let slot = (hash as usize ^ (hash >> 32) as usize) % VALUE_SLOTS;
        if let Some((h, object)) = &self.values[slot] {
            if *h == hash && same_text(object.as_ptr(), s) {
                let raw = object.as_ptr();
                // SAFETY: a new reference to a cached live object
                unsafe { ffi::Py_INCREF(raw) };
                return Ok(raw);
            }
        }
        let raw = new_str(py, s)?;
        if self.values[slot].is_none() {
            self.filled.push(slot);
        }
        // SAFETY: raw is a live string; the slot keeps its own reference
        self.values[slot] = Some((hash, unsafe { Py::from_borrowed_ptr(py, raw) }));
        Ok(raw)
    }

    /// Drops the shared values (the names stay).
    pub fn forget_values(&mut self) {
        for slot in self.filled.drain(..) {
            self.values[slot] = None;
        }
    }

    fn value(&mut self, py: Python<'_>, s: &str) -> PyResult<*mut ffi::PyObject> {
        if s.len() <= SHARED_MAX { self.of_value(py, s) } else { new_str(py, s) }
    }
}

fn fx_hash(bytes: &[u8]) -> u64 {
    let mut hasher = FxHasher::default();
    hasher.write(bytes);
    hasher.finish()
}

/// Whether the string object holds `s` (its UTF-8 form; for ASCII strings that
/// is the object's own storage).
fn same_text(object: *mut ffi::PyObject, s: &str) -> bool {
    let mut size: ffi::Py_ssize_t = 0;
    // SAFETY: object is a live str; the pointer stays valid while it lives
    let data = unsafe { ffi::PyUnicode_AsUTF8AndSize(object, &mut size) };
    if data.is_null() {
        // SAFETY: the GIL is held; a failed conversion only means "not equal"
        unsafe { ffi::PyErr_Clear() };
        return false;
    }
    size as usize == s.len()
        // SAFETY: data points at size bytes
        && unsafe { std::slice::from_raw_parts(data.cast::<u8>(), size as usize) } == s.as_bytes()
}

fn cached(slots: &mut [Option<NameSlot>], py: Python<'_>, s: &str) -> *mut ffi::PyObject {
    let hash = fx_hash(s.as_bytes());
    let slot = (hash as usize ^ (hash >> 32) as usize) % slots.len();
    match &slots[slot] {
        Some((h, name, object)) if *h == hash && **name == *s => object.as_ptr(),
        _ => {
            let object = PyString::intern(py, s).unbind();
            let raw = object.as_ptr();
            slots[slot] = Some((hash, s.into(), object));
            raw
        }
    }
}

/// An owned reference, or the Python error.
fn check(py: Python<'_>, object: *mut ffi::PyObject) -> PyResult<*mut ffi::PyObject> {
    if object.is_null() {
        Err(PyErr::fetch(py))
    } else {
        Ok(object)
    }
}

fn new_dict(py: Python<'_>, size: usize) -> PyResult<*mut ffi::PyObject> {
    // SAFETY: the GIL is held (py); the result is checked for NULL.
    check(py, unsafe {
        if size > 5 { ffi::_PyDict_NewPresized(size as ffi::Py_ssize_t) } else { ffi::PyDict_New() }
    })
}

/// `dict[key] = value`, taking over the reference to `value`.
fn put(py: Python<'_>, dict: *mut ffi::PyObject, key: *mut ffi::PyObject,
       value: *mut ffi::PyObject) -> PyResult<()> {
    // SAFETY: dict and key are live objects, value an owned reference.
    let status = unsafe {
        let status = ffi::PyDict_SetItem(dict, key, value);
        ffi::Py_DECREF(value);
        status
    };
    if status < 0 { Err(PyErr::fetch(py)) } else { Ok(()) }
}

pub fn new_str(py: Python<'_>, s: &str) -> PyResult<*mut ffi::PyObject> {
    if s.len() > 1 && s.is_ascii() {
        // an ASCII string is its bytes: no decoding pass
        // SAFETY: PyUnicode_New(n, 127) makes a compact ASCII string with room for
        // n bytes (and its terminating NUL, already written)
        unsafe {
            let object = check(py, ffi::PyUnicode_New(s.len() as ffi::Py_ssize_t, 127))?;
            std::ptr::copy_nonoverlapping(s.as_ptr(), ffi::PyUnicode_DATA(object).cast::<u8>(),
                                          s.len());
            return Ok(object);
        }
    }
    // SAFETY: the GIL is held; pointer and length describe valid UTF-8.
    check(py, unsafe {
        ffi::PyUnicode_FromStringAndSize(s.as_ptr().cast(), s.len() as ffi::Py_ssize_t)
    })
}

fn new_list(py: Python<'_>, items: Vec<*mut ffi::PyObject>) -> PyResult<*mut ffi::PyObject> {
    // SAFETY: PyList_New gives a list of NULL slots; SET_ITEM fills each, taking
    // over the item references.
    unsafe {
        let list = ffi::PyList_New(items.len() as ffi::Py_ssize_t);
        if list.is_null() {
            for item in items {
                ffi::Py_DECREF(item);
            }
            return Err(PyErr::fetch(py));
        }
        for (i, item) in items.into_iter().enumerate() {
            ffi::PyList_SET_ITEM(list, i as ffi::Py_ssize_t, item);
        }
        Ok(list)
    }
}

fn drop_all(items: Vec<*mut ffi::PyObject>) {
    for item in items {
        // SAFETY: owned references made above
        unsafe { ffi::Py_DECREF(item) };
    }
}

pub fn obj_to_py<'py>(py: Python<'py>, obj: Obj<'_>, strings: &mut Strings)
                      -> PyResult<Bound<'py, PyDict>> {
    let raw = obj_raw(py, obj, strings)?;
    // SAFETY: an owned reference to a new dict
    Ok(unsafe { Bound::from_owned_ptr(py, raw).cast_into_unchecked() })
}

fn obj_raw(py: Python<'_>, obj: Obj<'_>, strings: &mut Strings) -> PyResult<*mut ffi::PyObject> {
    let dict = new_dict(py, obj.0.len())?;
    for (key, value) in obj.0 {
        let result = v_raw(py, value, strings)
            .and_then(|item| put(py, dict, strings.of_static(py, key), item));
        if let Err(error) = result {
            // SAFETY: the owned dict made above
            unsafe { ffi::Py_DECREF(dict) };
            return Err(error);
        }
    }
    untrack(dict);
    Ok(dict)
}

/// Takes a finished dict out of the cyclic collector's lists. An event is a tree
/// of fresh dicts, lists and strings: it cannot hold a cycle, yet, tracked, every
/// collection between batches would walk every event still held. (A dict that
/// later gets a container inserted is tracked again by CPython itself.)
fn untrack(dict: *mut ffi::PyObject) {
    // SAFETY: a live dict; untracking an untracked object is a no-op
    unsafe { ffi::PyObject_GC_UnTrack(dict.cast()) };
}

fn v_raw(py: Python<'_>, value: V<'_>, strings: &mut Strings) -> PyResult<*mut ffi::PyObject> {
    match value {
        V::S(s) => strings.value(py, &s),
        V::U(s) => new_str(py, &s),
        V::K(s) => {
            let object = strings.of_static(py, s);
            // SAFETY: a new reference to a cached live object
            unsafe { ffi::Py_INCREF(object) };
            Ok(object)
        }
        V::I(n) => Ok(n.into_pyobject(py)?.into_ptr()),
        V::L(items) => {
            let mut made = Vec::with_capacity(items.len());
            for item in items {
                match v_raw(py, item, strings) {
                    Ok(object) => made.push(object),
                    Err(error) => {
                        drop_all(made);
                        return Err(error);
                    }
                }
            }
            new_list(py, made)
        }
        V::D(obj) => obj_raw(py, obj, strings),
        V::J(members) => members_raw(py, members, strings),
        V::P(object) => Ok(object.into_ptr()),
        V::R(s) => strings.of_value(py, &s),
    }
}

fn members_raw(py: Python<'_>, members: Members<'_>, strings: &mut Strings)
               -> PyResult<*mut ffi::PyObject> {
    let dict = new_dict(py, members.len())?;
    for (key, value) in members {
        let result = json_raw(py, value, strings)
            .and_then(|item| put(py, dict, strings.of_name(py, &key), item));
        if let Err(error) = result {
            // SAFETY: the owned dict made above
            unsafe { ffi::Py_DECREF(dict) };
            return Err(error);
        }
    }
    untrack(dict);
    Ok(dict)
}

/// Data values are strings and lists of strings by the time they get here.
fn json_raw(py: Python<'_>, value: J<'_>, strings: &mut Strings) -> PyResult<*mut ffi::PyObject> {
    Ok(match value {
        J::Str(s) => return strings.value(py, &s),
        J::Arr(items) => {
            let mut made = Vec::with_capacity(items.len());
            for item in items {
                match json_raw(py, item, strings) {
                    Ok(object) => made.push(object),
                    Err(error) => {
                        drop_all(made);
                        return Err(error);
                    }
                }
            }
            return new_list(py, made);
        }
        J::Obj(members) => return members_raw(py, members, strings),
        J::Null => py.None().into_ptr(),
        J::Bool(b) => pyo3::types::PyBool::new(py, b).to_owned().into_ptr(),
        J::Int(i) => i.into_pyobject(py)?.into_ptr(),
        J::UInt(u) => u.into_pyobject(py)?.into_ptr(),
        J::Float(f) => f.into_pyobject(py)?.into_ptr(),
    })
}
