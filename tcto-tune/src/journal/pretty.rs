//! serde_json's pretty layout (two-space indent), written with one call per
//! line break instead of one per indent level.
//!
//! A record is rewritten after every step of a transaction, so its
//! serialisation is a fixed cost of each step; serde_json's
//! `PrettyFormatter` writes a line's indent as one two-byte `write_all` per
//! level (steps sit four levels deep). The bytes are the same: a test
//! compares them with `serde_json::to_vec_pretty`.

use std::io::{self, Write};

use serde_json::ser::Formatter;

/// A newline followed by the deepest indent written at once.
const BREAK: &[u8; 1 + 2 * 16] = b"\n                                ";

#[derive(Default)]
pub(super) struct Pretty {
    depth: usize,
    has_value: bool,
}

impl Pretty {
    fn line<W: ?Sized + Write>(&self, w: &mut W) -> io::Result<()> {
        let n = 1 + 2 * self.depth;
        if n <= BREAK.len() {
            w.write_all(&BREAK[..n])
        } else {
            w.write_all(b"\n")?;
            (0..self.depth).try_for_each(|_| w.write_all(b"  "))
        }
    }

    fn open<W: ?Sized + Write>(&mut self, w: &mut W, bracket: &[u8]) -> io::Result<()> {
        self.depth += 1;
        self.has_value = false;
        w.write_all(bracket)
    }

    fn close<W: ?Sized + Write>(&mut self, w: &mut W, bracket: &[u8]) -> io::Result<()> {
        self.depth -= 1;
        if self.has_value {
            self.line(w)?;
        }
        w.write_all(bracket)
    }

    fn item<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        if !first {
            w.write_all(b",")?;
        }
        self.line(w)
    }
}

impl Formatter for Pretty {
    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.open(w, b"[")
    }

    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.close(w, b"]")
    }

    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.item(w, first)
    }

    fn end_array_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }

    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.open(w, b"{")
    }

    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.close(w, b"}")
    }

    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.item(w, first)
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }

    fn end_object_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }
}

/// `serde_json::to_vec_pretty(value)`, into a buffer sized for a record.
pub(super) fn to_vec<T: serde::Serialize>(value: &T) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(4096);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, Pretty::default());
    value.serialize(&mut ser)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn the_bytes_are_serde_jsons_pretty_layout() {
        let mut deep = json!("leaf");
        for i in 0..20 {
            deep = json!({ "level": i, "next": [deep, [], {}, [1, {"a": null}]] });
        }
        for v in [
            json!(null),
            json!([]),
            json!({}),
            json!({"a": [], "b": {}, "c": [[]], "d": [{}], "e": "x\n\"y\""}),
            json!([1, [2, [3, {"k": [4, 5]}]], {"z": {"y": {"x": true}}}]),
            deep,
        ] {
            assert_eq!(
                String::from_utf8(super::to_vec(&v).unwrap()).unwrap(),
                serde_json::to_string_pretty(&v).unwrap()
            );
        }
    }
}
