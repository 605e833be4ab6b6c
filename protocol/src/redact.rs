//! `Debug` output for secrets: the type name and a length, never the value.

use std::fmt;

pub(crate) struct Redacted<'a>(pub &'a str);

impl fmt::Debug for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<redacted {} bytes>", self.0.len())
    }
}

pub(crate) struct RedactedOpt<'a>(pub &'a Option<String>);

impl fmt::Debug for RedactedOpt<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(value) => Redacted(value).fmt(f),
            None => f.write_str("None"),
        }
    }
}
