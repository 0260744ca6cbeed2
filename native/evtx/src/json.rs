//! A record's JSON text as a borrowed tree: strings without escapes point into
//! the text, objects are small vectors (few allocations per record).
//!
//! Objects keep the first position and the last value of a repeated key, as a
//! Python dict built by `orjson.loads` does.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

pub type Members<'a> = Vec<(Cow<'a, str>, J<'a>)>;

#[derive(Debug, Clone, Default)]
pub enum J<'a> {
    #[default]
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    /// A float, or an integer beyond 64 bits (both floats for orjson too).
    Float(f64),
    Str(Cow<'a, str>),
    Arr(Vec<J<'a>>),
    Obj(Members<'a>),
}

impl<'a> J<'a> {
    pub fn get(&self, key: &str) -> Option<&J<'a>> {
        match self {
            J::Obj(members) => get(members, key),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, J::Null)
    }
}

pub fn get<'m, 'a>(members: &'m Members<'a>, key: &str) -> Option<&'m J<'a>> {
    members.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

pub fn position(members: &Members<'_>, key: &str) -> Option<usize> {
    members.iter().position(|(k, _)| k == key)
}

pub fn remove<'a>(members: &mut Members<'a>, key: &str) -> Option<J<'a>> {
    position(members, key).map(|i| members.remove(i).1)
}

/// `members.setdefault(key, value)`
pub fn set_default<'a>(members: &mut Members<'a>, key: Cow<'a, str>, value: J<'a>) {
    if position(members, &key).is_none() {
        members.push((key, value));
    }
}

/// `members[key] = value`
pub fn insert<'a>(members: &mut Members<'a>, key: Cow<'a, str>, value: J<'a>) {
    match position(members, &key) {
        Some(i) => members[i].1 = value,
        None => members.push((key, value)),
    }
}

struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

impl<'de> Deserialize<'de> for J<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JVisitor)
    }
}

struct JVisitor;

impl<'de> Visitor<'de> for JVisitor {
    type Value = J<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("JSON")
    }
    fn visit_unit<E>(self) -> Result<J<'de>, E> {
        Ok(J::Null)
    }
    fn visit_none<E>(self) -> Result<J<'de>, E> {
        Ok(J::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<J<'de>, E> {
        Ok(J::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<J<'de>, E> {
        Ok(J::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<J<'de>, E> {
        Ok(if v <= i64::MAX as u64 { J::Int(v as i64) } else { J::UInt(v) })
    }
    fn visit_f64<E>(self, v: f64) -> Result<J<'de>, E> {
        Ok(J::Float(v))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<J<'de>, E> {
        Ok(J::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<J<'de>, E> {
        Ok(J::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<J<'de>, E> {
        Ok(J::Str(Cow::Owned(v)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<J<'de>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(4));
        while let Some(item) = seq.next_element::<J<'de>>()? {
            items.push(item);
        }
        Ok(J::Arr(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<J<'de>, A::Error> {
        let mut members: Members<'de> = Vec::with_capacity(map.size_hint().unwrap_or(8));
        // a key whose mark is not yet set is new: most keys skip the search
        let mut seen = 0u64;
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            let value = map.next_value::<J<'de>>()?;
            let bytes = key.as_bytes();
            let mark = 1u64 << ((bytes.len() * 7 + bytes.first().map_or(0, |b| *b as usize)
                + bytes.last().map_or(0, |b| *b as usize * 3)) & 63);
            if seen & mark == 0 {
                seen |= mark;
                members.push((key, value));
            } else {
                insert(&mut members, key, value);
            }
        }
        Ok(J::Obj(members))
    }
}

/// The tree of a JSON text (`None` when serde_json rejects it: lone surrogates...).
pub fn parse(text: &str) -> Option<J<'_>> {
    serde_json::from_str(text).ok()
}
