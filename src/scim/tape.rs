//! The compact form of a served resource that filters, sorting and index keys read: a [`Tape`].
//!
//! A tape is the resource's JSON tree flattened in document order, 8 bytes a value. Object keys are the
//! schemas' names as numbers ([`crate::scim::view::symbol`]); a string is where its text starts in the
//! serialised resource itself (it ends at the next `"`: a string the serialiser did not escape has none
//! inside), so the tape copies no text except the rare string that was escaped; a container records how
//! many values its subtree holds, so a reader steps over it without looking inside.
//! The bytes the tape was built from are not owned by it: a reader passes them back in ([`Tape::root`]).
//!
//! A resource may be served from two documents: its default representation and the attributes returned only
//! on request, an object shaped like the resource ([`crate::scim::attrs::split_request_only`]). A tape built
//! from both reads as the merged resource: the second document's members are placed in the first's
//! root, or inside the first's object of the same key (an extension's), as
//! [`merge_request_only`](crate::scim::attrs::merge_request_only) merges them, and a URN it adds to the
//! root joins `schemas`.
//!
//! Must not know where the bytes are kept, or anything of JumpCloud.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::scim::view::{Key, Shape, UNKNOWN, View, symbol};

/// A served resource's values in document order (see the module docs). The default is an empty object.
#[derive(Clone)]
pub struct Tape {
    nodes: Box<[Node]>,
    /// Strings the serialiser escaped, unescaped, each after its length (4 bytes, little-endian), and
    /// numbers (8 bytes each).
    side: Box<[u8]>,
}

#[derive(Clone, Copy, Debug)]
struct Node {
    /// The member's key in its object ([`UNKNOWN`] for an array element or a key no schema defines).
    key: u16,
    tag: Tag,
    /// Where a string's text is: [`DOC`], [`EXTRA`] or [`SIDE`].
    src: u8,
    /// A string's offset in its source, a number's in the side buffer, a container's subtree size.
    a: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Tag {
    Null,
    False,
    True,
    Num,
    Str,
    Array,
    Object,
}

const DOC: u8 = 0;
const EXTRA: u8 = 1;
const SIDE: u8 = 2;

/// Why a tape could not be built.
#[derive(Debug)]
pub struct TapeError(String);

impl fmt::Display for TapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the resource is not a JSON object a tape can hold: {}",
            self.0
        )
    }
}

impl std::error::Error for TapeError {}

// === impl Tape ===

impl Default for Tape {
    fn default() -> Tape {
        Tape {
            nodes: Box::new([Node::container(UNKNOWN, Tag::Object)]),
            side: Box::default(),
        }
    }
}

impl Tape {
    /// The tape of `doc` (a JSON object), merged with `extra` (an object shaped like it) when given.
    pub fn build(doc: &[u8], extra: Option<&[u8]>) -> Result<Tape, TapeError> {
        let merge = match extra {
            Some(x) => Some(Builder::parse_extra(x)?),
            None => None,
        };
        let mut b = Builder::new(doc, DOC);
        if let Some(m) = &merge {
            b.side.extend_from_slice(&m.side);
        }
        b.merge = merge;
        b.nodes.push(Node::container(UNKNOWN, Tag::Object));
        let mut de = serde_json::Deserializer::from_slice(doc);
        Root { b: &mut b }
            .deserialize(&mut de)
            .and_then(|()| de.end())
            .map_err(|e| TapeError(e.to_string()))?;
        if let Some(m) = b.merge.take() {
            b.append_unmerged(&m);
        }
        b.close(0);
        // Exact-size copies, made once the growing buffers are done with.
        Ok(Tape {
            nodes: Box::from(b.nodes.as_slice()),
            side: Box::from(b.side.as_slice()),
        })
    }

    /// The resource's root object, reading strings from the bytes the tape was built from.
    pub fn root<'a>(&'a self, doc: &'a [u8], extra: Option<&'a [u8]>) -> Cursor<'a> {
        Cursor {
            tape: self,
            doc,
            extra: extra.unwrap_or_default(),
            at: 0,
        }
    }

    /// Bytes the tape holds beyond its own size (what a snapshot pays for it per resource).
    pub fn heap_bytes(&self) -> usize {
        self.nodes.len() * std::mem::size_of::<Node>() + self.side.len()
    }
}

impl fmt::Debug for Tape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tape({} values)", self.nodes.len())
    }
}

// === impl Node ===

impl Node {
    fn container(key: u16, tag: Tag) -> Node {
        Node {
            key,
            tag,
            src: DOC,
            a: 0,
        }
    }

    fn scalar(key: u16, tag: Tag) -> Node {
        Node::container(key, tag)
    }

    /// Values in this node's subtree, itself excluded.
    fn span(&self) -> usize {
        match self.tag {
            Tag::Array | Tag::Object => self.a as usize,
            _ => 0,
        }
    }
}

// === reading ===

/// One value of a tape, with the bytes its strings are read from.
#[derive(Clone, Copy)]
pub struct Cursor<'a> {
    tape: &'a Tape,
    doc: &'a [u8],
    extra: &'a [u8],
    at: usize,
}

impl fmt::Debug for Cursor<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cursor({:?})", self.node())
    }
}

impl<'a> Cursor<'a> {
    fn node(&self) -> &'a Node {
        &self.tape.nodes[self.at]
    }

    fn text(&self, n: &Node) -> &'a str {
        let raw = match n.src {
            DOC => quoted(self.doc, n.a),
            EXTRA => quoted(self.extra, n.a),
            _ => side_str(&self.tape.side, n.a),
        };
        raw.and_then(|s| std::str::from_utf8(s).ok()).unwrap_or("")
    }

    /// The children of a container, in order.
    fn children(self) -> Children<'a> {
        let node = self.node();
        Children {
            cursor: self,
            next: self.at + 1,
            end: self.at + 1 + node.span(),
        }
    }
}

/// The text of an unescaped string starting at `at`: up to the next `"`.
fn quoted(doc: &[u8], at: u32) -> Option<&[u8]> {
    let rest = doc.get(at as usize..)?;
    rest.iter().position(|&b| b == b'"').map(|end| &rest[..end])
}

/// A string of the side buffer: its length, then its bytes.
fn side_str(side: &[u8], at: u32) -> Option<&[u8]> {
    let at = at as usize;
    let len = u32::from_le_bytes(side.get(at..at + 4)?.try_into().ok()?) as usize;
    side.get(at + 4..at + 4 + len)
}

/// A number of the side buffer.
fn side_num(side: &[u8], at: u32) -> f64 {
    side.get(at as usize..at as usize + 8)
        .and_then(|b| b.try_into().ok())
        .map_or(f64::NAN, f64::from_le_bytes)
}

/// The children of a container.
pub struct Children<'a> {
    cursor: Cursor<'a>,
    next: usize,
    end: usize,
}

impl<'a> Iterator for Children<'a> {
    type Item = Cursor<'a>;

    fn next(&mut self) -> Option<Cursor<'a>> {
        if self.next >= self.end {
            return None;
        }
        let at = self.next;
        self.next = at + 1 + self.cursor.tape.nodes[at].span();
        Some(Cursor { at, ..self.cursor })
    }
}

impl<'a> View<'a> for Cursor<'a> {
    fn shape(self) -> Shape<'a> {
        let n = self.node();
        match n.tag {
            Tag::Null => Shape::Null,
            Tag::False => Shape::Bool(false),
            Tag::True => Shape::Bool(true),
            Tag::Num => Shape::Num(side_num(&self.tape.side, n.a)),
            Tag::Str => Shape::Str(self.text(n)),
            Tag::Array => Shape::Array,
            Tag::Object => Shape::Object,
        }
    }

    fn member(self, key: Key) -> Option<Self> {
        if self.node().tag != Tag::Object || key.sym == UNKNOWN {
            return None;
        }
        self.children().find(|c| c.node().key == key.sym)
    }

    fn items(self) -> impl Iterator<Item = Self> + 'a {
        self.children()
    }
}

// === building ===

/// The members of the second document, to be merged while the first is read.
struct Merge {
    /// Each top-level member: its key, whether it is an object, and its subtree (itself first).
    members: Vec<(u16, bool, Vec<Node>)>,
    /// URNs among those keys, which `schemas` must list.
    urns: Vec<String>,
    /// Its side buffer: the tape's starts with it, so its offsets hold.
    side: Vec<u8>,
}

struct Builder<'x> {
    nodes: Vec<Node>,
    side: Vec<u8>,
    /// The document being read: borrowed strings are ranges of it.
    doc: &'x [u8],
    src: u8,
    merge: Option<Merge>,
    /// The top-level keys the first document had, so the unmerged rest is appended at the end.
    merged: Vec<u16>,
}

impl<'x> Builder<'x> {
    fn new(doc: &'x [u8], src: u8) -> Builder<'x> {
        Builder {
            nodes: Vec::new(),
            side: Vec::new(),
            doc,
            src,
            merge: None,
            merged: Vec::new(),
        }
    }

    /// Read the second document into a [`Merge`].
    fn parse_extra(extra: &[u8]) -> Result<Merge, TapeError> {
        let mut b = Builder::new(extra, EXTRA);
        b.nodes.push(Node::container(UNKNOWN, Tag::Object));
        let mut de = serde_json::Deserializer::from_slice(extra);
        let mut keys = Vec::new();
        ExtraRoot {
            b: &mut b,
            keys: &mut keys,
        }
        .deserialize(&mut de)
        .and_then(|()| de.end())
        .map_err(|e| TapeError(e.to_string()))?;
        let mut members = Vec::new();
        let mut urns = Vec::new();
        let mut at = 1;
        for name in keys {
            let node = b.nodes[at];
            let end = at + 1 + node.span();
            members.push((node.key, node.tag == Tag::Object, b.nodes[at..end].to_vec()));
            if name.starts_with("urn:") {
                urns.push(name);
            }
            at = end;
        }
        Ok(Merge {
            members,
            urns,
            side: b.side,
        })
    }

    /// Set the subtree size of the container at `at`, now that its children are in.
    fn close(&mut self, at: usize) {
        let span = self.nodes.len() - at - 1;
        self.nodes[at].a = u32::try_from(span).unwrap_or(u32::MAX);
    }

    fn string(&mut self, key: u16, s: &str, borrowed: bool) {
        let (src, off) = if borrowed {
            (
                self.src,
                (s.as_ptr() as usize).saturating_sub(self.doc.as_ptr() as usize),
            )
        } else {
            let off = self.side.len();
            let len = u32::try_from(s.len()).unwrap_or(u32::MAX);
            self.side.extend_from_slice(&len.to_le_bytes());
            self.side.extend_from_slice(s.as_bytes());
            (SIDE, off)
        };
        self.nodes.push(Node {
            key,
            tag: Tag::Str,
            src,
            a: u32::try_from(off).unwrap_or(u32::MAX),
        });
    }

    /// After a top-level member of the first document: the second's members inside it (an object of the
    /// same key) or, for `schemas`, the URNs the second adds.
    fn after_top(&mut self, key: u16, at: usize) {
        let Some(m) = self.merge.take() else {
            return;
        };
        self.merge_into(&m, key, at);
        self.merge = Some(m);
    }

    fn merge_into(&mut self, m: &Merge, key: u16, at: usize) {
        self.merged.push(key);
        if key == symbol("schemas") && self.nodes[at].tag == Tag::Array {
            let listed: Vec<String> = (at + 1..self.nodes.len())
                .filter(|&i| self.nodes[i].tag == Tag::Str && self.nodes[i].src != EXTRA)
                .map(|i| self.str_at(i).to_owned())
                .collect();
            for urn in &m.urns {
                if !listed.iter().any(|l| l.eq_ignore_ascii_case(urn)) {
                    self.string(UNKNOWN, urn, false);
                }
            }
            self.close(at);
            return;
        }
        if self.nodes[at].tag != Tag::Object {
            return;
        }
        for (k, is_obj, sub) in &m.members {
            if *k == key && *is_obj && key != UNKNOWN {
                self.nodes.extend_from_slice(&sub[1..]);
            }
        }
        self.close(at);
    }

    fn str_at(&self, i: usize) -> &str {
        let n = self.nodes[i];
        let raw = match n.src {
            SIDE => side_str(&self.side, n.a),
            _ => quoted(self.doc, n.a),
        };
        raw.and_then(|s| std::str::from_utf8(s).ok()).unwrap_or("")
    }

    /// The second document's members the first had no member for.
    fn append_unmerged(&mut self, m: &Merge) {
        for (k, is_obj, sub) in &m.members {
            let merged_in = *is_obj && *k != UNKNOWN && self.merged.contains(k);
            if !merged_in {
                self.nodes.extend_from_slice(sub);
            }
        }
    }
}

/// The root object of the first document: its members become the tape root's children.
struct Root<'b, 'x> {
    b: &'b mut Builder<'x>,
}

/// The root object of the second document, recording its top-level key names.
struct ExtraRoot<'b, 'x> {
    b: &'b mut Builder<'x>,
    keys: &'b mut Vec<String>,
}

/// One value under `key`.
struct ValueSeed<'b, 'x> {
    b: &'b mut Builder<'x>,
    key: u16,
}

/// A key, read as its number (and its text when the caller needs it).
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = (u16, String);

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for KeySeed {
    type Value = (u16, String);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
        let sym = symbol(s);
        // The text is kept only for URNs, which the merge must list in `schemas`.
        let text = if s.starts_with("urn:") {
            s.to_owned()
        } else {
            String::new()
        };
        Ok((sym, text))
    }
}

fn members<'de, A: MapAccess<'de>>(
    b: &mut Builder<'_>,
    mut map: A,
    top: bool,
    mut keys: Option<&mut Vec<String>>,
) -> Result<(), A::Error> {
    while let Some((key, text)) = map.next_key_seed(KeySeed)? {
        let at = b.nodes.len();
        map.next_value_seed(ValueSeed { b: &mut *b, key })?;
        if let Some(keys) = keys.as_deref_mut() {
            keys.push(text);
        }
        if top {
            b.after_top(key, at);
        }
    }
    Ok(())
}

impl<'de> DeserializeSeed<'de> for Root<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Root<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        members(self.b, map, true, None)
    }
}

impl<'de> DeserializeSeed<'de> for ExtraRoot<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ExtraRoot<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        members(self.b, map, false, Some(self.keys))
    }
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.b.nodes.push(Node::scalar(self.key, Tag::Null));
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        let tag = if v { Tag::True } else { Tag::False };
        self.b.nodes.push(Node::scalar(self.key, tag));
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        let off = u32::try_from(self.b.side.len()).unwrap_or(u32::MAX);
        self.b.side.extend_from_slice(&v.to_le_bytes());
        self.b.nodes.push(Node {
            key: self.key,
            tag: Tag::Num,
            src: SIDE,
            a: off,
        });
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.visit_f64(v as f64)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.visit_f64(v as f64)
    }

    fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<(), E> {
        self.b.string(self.key, s, true);
        Ok(())
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<(), E> {
        self.b.string(self.key, s, false);
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let at = self.b.nodes.len();
        self.b.nodes.push(Node::container(self.key, Tag::Array));
        while seq
            .next_element_seed(ValueSeed {
                b: &mut *self.b,
                key: UNKNOWN,
            })?
            .is_some()
        {}
        self.b.close(at);
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        let at = self.b.nodes.len();
        self.b.nodes.push(Node::container(self.key, Tag::Object));
        members(self.b, map, false, None)?;
        self.b.close(at);
        Ok(())
    }
}

#[cfg(test)]
#[path = "tape_tests.rs"]
mod tests;
