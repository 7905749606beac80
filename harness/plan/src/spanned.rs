//! `Spanned<T>`: a plan value with the line and column it was read from.
//!
//! Deserializing goes through [`serde_saphyr::Spanned`], so with the YAML reader every value
//! carries its position (where it is *used*: for an alias, the alias). Values built in code
//! ([`Spanned::new`]) have no position. Serializing writes the bare value and the JSON Schema is
//! that of `T`, so the wrapper is invisible in the plan's shape.
//!
//! Comparison, ordering, hashing, `Debug` and `Display` look at the value only.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::{Deref, DerefMut};

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A value and where in the plan file it came from (1-based line and column; 0 when unknown).
#[derive(Clone, Copy, Default)]
pub struct Spanned<T> {
    pub value: T,
    line: usize,
    column: usize,
}

impl<T> Spanned<T> {
    /// A value built in code: no location (`line()` and `column()` are 0).
    pub const fn new(value: T) -> Self {
        Self {
            value,
            line: 0,
            column: 0,
        }
    }

    /// A value with a known location (1-based).
    pub const fn at(value: T, line: usize, column: usize) -> Self {
        Self {
            value,
            line,
            column,
        }
    }

    /// 1-based line, or 0 when the value was not read from a file.
    pub const fn line(&self) -> usize {
        self.line
    }

    /// 1-based column, or 0 when the value was not read from a file.
    pub const fn column(&self) -> usize {
        self.column
    }

    /// `(line, column)` when the value was read from a file.
    pub const fn location(&self) -> Option<(usize, usize)> {
        if self.line == 0 {
            None
        } else {
            Some((self.line, self.column))
        }
    }

    pub fn into_inner(self) -> T {
        self.value
    }

    /// The same location with another value.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Spanned<U> {
        Spanned {
            value: f(self.value),
            line: self.line,
            column: self.column,
        }
    }
}

impl<T> From<T> for Spanned<T> {
    fn from(value: T) -> Self {
        Self::new(value)
    }
}

impl<T> Deref for Spanned<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T> DerefMut for Spanned<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.value
    }
}

impl<T> AsRef<T> for Spanned<T> {
    fn as_ref(&self) -> &T {
        &self.value
    }
}

impl<T: fmt::Debug> fmt::Debug for Spanned<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.value.fmt(f)
    }
}

impl<T: fmt::Display> fmt::Display for Spanned<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.value.fmt(f)
    }
}

impl<T: PartialEq> PartialEq for Spanned<T> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl<T: Eq> Eq for Spanned<T> {}

impl<T: PartialOrd> PartialOrd for Spanned<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        self.value.partial_cmp(&other.value)
    }
}

impl<T: Ord> Ord for Spanned<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.value.cmp(&other.value)
    }
}

impl<T: Hash> Hash for Spanned<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.value.hash(state);
    }
}

impl PartialEq<str> for Spanned<String> {
    fn eq(&self, other: &str) -> bool {
        self.value == other
    }
}

impl PartialEq<&str> for Spanned<String> {
    fn eq(&self, other: &&str) -> bool {
        self.value == *other
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Spanned<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = serde_saphyr::Spanned::<T>::deserialize(deserializer)?;
        let line = usize::try_from(s.referenced.line()).unwrap_or(0);
        let column = usize::try_from(s.referenced.column()).unwrap_or(0);
        Ok(Self {
            value: s.value,
            line,
            column,
        })
    }
}

impl<T: Serialize> Serialize for Spanned<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(serializer)
    }
}

impl<T: JsonSchema> JsonSchema for Spanned<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }

    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }

    fn schema_id() -> Cow<'static, str> {
        T::schema_id()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        T::json_schema(generator)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_has_no_location_and_compares_by_value() {
        let a = Spanned::new("x".to_string());
        let b = Spanned::at("x".to_string(), 3, 7);
        assert_eq!(a, b);
        assert_eq!(a.location(), None);
        assert_eq!(b.location(), Some((3, 7)));
        assert_eq!((b.line(), b.column()), (3, 7));
        assert_eq!(b.len(), 1);
        assert!(b == "x");
    }

    #[test]
    fn reads_location_and_serializes_transparently() {
        #[derive(Deserialize, Serialize)]
        struct Doc {
            a: u32,
            b: Spanned<String>,
        }
        let doc: Doc = serde_saphyr::from_str("a: 1\nb:   hello\n").unwrap();
        assert_eq!(doc.a, 1);
        assert_eq!(doc.b.value, "hello");
        assert_eq!(doc.b.location(), Some((2, 6)));
        assert_eq!(
            serde_json::to_string(&doc).unwrap(),
            r#"{"a":1,"b":"hello"}"#
        );
        // Other formats read the bare value.
        let back: Doc = serde_json::from_str(r#"{"a":1,"b":"hello"}"#).unwrap();
        assert_eq!(back.b.value, "hello");
        assert_eq!(back.b.location(), None);
    }

    #[test]
    fn schema_is_that_of_the_value() {
        let inner = schemars::schema_for!(u32);
        let outer = schemars::schema_for!(Spanned<u32>);
        assert_eq!(inner, outer);
    }
}
