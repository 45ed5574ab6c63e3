//! A `ListResponse` as a body of chunks: the envelope, then each resource's stored bytes as they are, with
//! `,` between them, then the close. No resource is copied, and a list of every user holds no more than
//! the page it answers (a window of the snapshot's own list) whatever the directory's size. Under
//! `attributes` / `excludedAttributes` each resource is projected as it is sent, one at a time.
//!
//! When nothing is projected the length is known before the first byte, so the answer carries
//! `Content-Length`; a projected list is sent chunked.
//!
//! A resource and its comma as two frames each cost hyper's dispatch loop far more than their bytes do, and
//! a frame's `Bytes` costs two atomic operations on a count other requests for the same page touch too.
//! So the accept loop ([`super::server`]) takes the body out of the response ([`Handoff`]) and sends it
//! as [`Run`]s: a range of the page's items ([`RUN_BYTES`] or so) as one frame, whose resources are
//! borrowed from the items the run holds. A response that does not pass through that loop (a router
//! driven directly, as unit tests do) gets the same bytes, each run copied into a frame of its own.
//!
//! Resources a build packed into one block ([`block`]) that are neighbours on the page are one buffer
//! of a run, commas included: an unchanged page of a walk is a few slices of memory, as a body built for
//! it would be, and the socket's copy reads them in one stretch.
//!
//! A list of a few resources (at most [`SMALL_LIST`] bytes of them: a lookup's answer) is one buffer
//! instead ([`body`]): copying a few kilobytes costs less than the handoff.

use std::convert::Infallible;
use std::io::IoSlice;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::body::Bytes;
use bytes::Buf;
use http_body::{Body, Frame, SizeHint};

use super::support::entry_bytes;
use crate::cache::snapshot::block;
use crate::directory::read::Items;
use crate::scim::ResourceKind;
use crate::scim::attrs::AttrSelection;
use crate::scim::list::{LIST_TAIL, list_around};

/// The resources of one kind on a page, and how they are projected.
pub struct Part {
    pub items: Items,
    pub kind: ResourceKind,
    pub attrs: AttrSelection,
}

/// Bytes of resources up to which a list is answered as one buffer rather than handed off in runs.
pub const SMALL_LIST: usize = 16 * 1024;

/// A list's body: one buffer when it is small and nothing is projected, else the response's own body
/// for a [`Handoff`] the response must carry in its extensions.
pub fn body(head: Vec<u8>, parts: Vec<Part>) -> (axum::body::Body, Option<Handoff>) {
    let small = parts.iter().all(|p| p.attrs.is_default())
        && parts
            .iter()
            .flat_map(|p| p.items.iter())
            .try_fold(0usize, |n, e| {
                Some(n + e.bytes.len() + 1).filter(|n| *n <= SMALL_LIST)
            })
            .is_some();
    if small {
        let resources: Vec<&[u8]> = parts
            .iter()
            .flat_map(|p| p.items.iter())
            .map(|e| &e.bytes[..])
            .collect();
        return (axum::body::Body::from(list_around(head, &resources)), None);
    }
    let handoff = Handoff::new(ListBody::new(head, parts));
    (axum::body::Body::new(handoff.body()), Some(handoff))
}

/// The body: see the module docs.
pub struct ListBody {
    head: Option<Bytes>,
    parts: Vec<Part>,
    /// The part and the resource within it sent next.
    part: usize,
    item: usize,
    /// A `,` is owed before the next resource.
    comma: bool,
    done: bool,
    /// Bytes still to send, when known.
    remaining: Option<u64>,
}

impl ListBody {
    pub fn new(head: Vec<u8>, parts: Vec<Part>) -> ListBody {
        let remaining = parts.iter().all(|p| p.attrs.is_default()).then(|| {
            let resources: usize = parts.iter().map(|p| stored_len(&p.items)).sum();
            let joins = parts.iter().filter(|p| !p.items.is_empty()).count();
            (head.len() + resources + joins.saturating_sub(1) + LIST_TAIL.len()) as u64
        });
        ListBody {
            head: Some(Bytes::from(head)),
            parts,
            part: 0,
            item: 0,
            comma: false,
            done: false,
            remaining,
        }
    }

    /// The next run of the body, or `None` once the close has been sent: the envelope, a projected
    /// resource or the close as bytes of their own; resources sent as stored as a range of the page's
    /// items (borrowed, no reference count touched per resource) up to about [`RUN_BYTES`].
    pub fn next_run(&mut self) -> Option<Run> {
        let run = self.take_run()?;
        if let Some(r) = self.remaining.as_mut() {
            *r = r.saturating_sub(run.remaining() as u64);
        }
        Some(run)
    }

    fn take_run(&mut self) -> Option<Run> {
        if let Some(head) = self.head.take() {
            return Some(Run::from(head));
        }
        while let Some(part) = self.parts.get(self.part) {
            let slice = part.items.as_slice();
            if self.item >= slice.len() {
                self.part += 1;
                self.item = 0;
                continue;
            }
            if !part.attrs.is_default() {
                let e = &slice[self.item];
                let bytes = entry_bytes(e, &part.attrs, part.kind);
                let comma = std::mem::replace(&mut self.comma, true);
                self.item += 1;
                return Some(if comma {
                    Run::from(Bytes::from_static(b",")).then(bytes)
                } else {
                    Run::from(bytes)
                });
            }
            let mut pieces: Vec<Piece> = Vec::new();
            let mut len = 0;
            while self.item < slice.len() && len < RUN_BYTES {
                let i = self.item;
                if let Some((end, bytes)) = stretch(&part.items, i) {
                    if self.comma {
                        pieces.push(Piece::Comma);
                    }
                    pieces.push(Piece::Stretch {
                        first: i,
                        last: end,
                    });
                    len += bytes + usize::from(self.comma);
                    self.comma = true;
                    self.item = end + 1;
                    continue;
                }
                let e = &slice[i];
                match pieces.last_mut() {
                    // The neighbour of the resource before it in a block: one slice with the comma.
                    Some(Piece::Stretch { last, .. })
                        if *last + 1 == i && block::adjacent(&slice[*last], e) =>
                    {
                        *last = i;
                    }
                    _ => {
                        if self.comma {
                            pieces.push(Piece::Comma);
                        }
                        pieces.push(Piece::Stretch { first: i, last: i });
                        if e.block.is_none() {
                            prefetch(&e.bytes);
                        }
                    }
                }
                len += e.bytes.len() + usize::from(self.comma);
                self.comma = true;
                self.item += 1;
            }
            return Some(Run::stored(part.items.clone(), pieces, len));
        }
        if self.done {
            return None;
        }
        self.done = true;
        Some(Run::from(Bytes::from_static(LIST_TAIL)))
    }

    /// The next chunk as bytes of its own (the body sent frame by frame), or `None` once the close has
    /// been sent.
    fn next_chunk(&mut self) -> Option<Bytes> {
        let mut run = self.take_run()?;
        Some(run.copy_to_bytes(run.remaining()))
    }
}

impl Body for ListBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        let chunk = this.next_chunk();
        if let (Some(c), Some(r)) = (&chunk, this.remaining.as_mut()) {
            *r = r.saturating_sub(c.len() as u64);
        }
        Poll::Ready(chunk.map(|c| Ok(Frame::data(c))))
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        match self.remaining {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}

/// About how many bytes of stored resources one [`Run`] spans: a frame hyper may copy into its write
/// buffer whole, so it stays well under that buffer's bound.
pub const RUN_BYTES: usize = 64 * 1024;

/// A stretch of a list body as one buffer: bytes of its own (with perhaps a second piece), or the
/// stored bytes of a range of a page's items with `,` between them, borrowed rather than copied.
pub struct Run {
    what: What,
    remaining: usize,
}

enum What {
    Bytes(Bytes, Option<Bytes>),
    Stored {
        items: Items,
        pieces: Vec<Piece>,
        /// The piece sent next, and its bytes already sent.
        at: usize,
        off: usize,
    },
}

/// The stretch of neighbours item `i` begins, when the items know it and it holds more than `i`: its last
/// item and its length, commas included; read from its two ends only.
fn stretch(items: &Items, i: usize) -> Option<(usize, usize)> {
    let end = items.stretch_end(i).filter(|end| *end > i)?;
    let slice = items.as_slice();
    let bytes = block::span(slice.get(i)?, slice.get(end)?)?;
    Some((end, bytes.len()))
}

/// The stored bytes of `items` with `,` between them, in bytes.
fn stored_len(items: &Items) -> usize {
    let slice = items.as_slice();
    let (mut i, mut len, mut pieces) = (0, 0, 0usize);
    while let Some(e) = slice.get(i) {
        match stretch(items, i) {
            Some((end, bytes)) => {
                len += bytes;
                i = end + 1;
            }
            None => {
                len += e.bytes.len();
                i += 1;
            }
        }
        pieces += 1;
    }
    len + pieces.saturating_sub(1)
}

/// One buffer of a run of stored resources.
#[derive(Debug, Clone, Copy)]
enum Piece {
    Comma,
    /// Resources `first..=last` of the items: one resource, or neighbours in one block
    /// ([`block::adjacent`]) whose bytes and commas are one slice ([`block::span`]).
    Stretch {
        first: usize,
        last: usize,
    },
}

impl Piece {
    fn bytes(self, items: &Items) -> &[u8] {
        let slice = items.as_slice();
        match self {
            Piece::Comma => b",",
            Piece::Stretch { first, last } if first == last => {
                slice.get(first).map_or(&[], |e| &e.bytes[..])
            }
            Piece::Stretch { first, last } => match (slice.get(first), slice.get(last)) {
                (Some(a), Some(b)) => block::span(a, b).unwrap_or_default(),
                _ => &[],
            },
        }
    }
}

impl Run {
    /// This run followed by `next`.
    fn then(self, next: Bytes) -> Run {
        match self.what {
            What::Bytes(b, None) => Run {
                remaining: self.remaining + next.len(),
                what: What::Bytes(b, Some(next)),
            },
            what => Run {
                what,
                remaining: self.remaining,
            },
        }
    }

    fn stored(items: Items, pieces: Vec<Piece>, len: usize) -> Run {
        Run {
            what: What::Stored {
                items,
                pieces,
                at: 0,
                off: 0,
            },
            remaining: len,
        }
    }
}

/// Ask for `bytes` to be brought into the cache as a run is cut, before hyper writes it: the resources
/// of a page lie apart in memory, and the write's copy would otherwise wait on each one in turn.
#[inline]
fn prefetch(bytes: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    for line in bytes.chunks(64).take(PREFETCH_LINES) {
        // SAFETY: a prefetch is a hint; it reads nothing and cannot fault.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                line.as_ptr().cast(),
            );
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = bytes;
}

/// Cache lines of each resource [`prefetch`] asks for.
const PREFETCH_LINES: usize = 32;

impl From<Bytes> for Run {
    fn from(b: Bytes) -> Run {
        Run {
            remaining: b.len(),
            what: What::Bytes(b, None),
        }
    }
}

impl Buf for Run {
    fn remaining(&self) -> usize {
        self.remaining
    }

    fn chunk(&self) -> &[u8] {
        match &self.what {
            What::Bytes(a, b) if a.is_empty() => b.as_deref().unwrap_or_default(),
            What::Bytes(a, _) => a,
            What::Stored {
                items,
                pieces,
                at,
                off,
            } => pieces
                .get(*at)
                .map_or(&[], |p| p.bytes(items).get(*off..).unwrap_or_default()),
        }
    }

    fn advance(&mut self, mut n: usize) {
        n = n.min(self.remaining);
        self.remaining -= n;
        match &mut self.what {
            What::Bytes(a, b) => {
                let first = n.min(a.len());
                a.advance(first);
                if let Some(b) = b {
                    b.advance((n - first).min(b.len()));
                }
            }
            What::Stored {
                items,
                pieces,
                at,
                off,
            } => {
                while n > 0
                    && let Some(p) = pieces.get(*at)
                {
                    let left = p.bytes(items).len().saturating_sub(*off);
                    if n < left {
                        *off += n;
                        return;
                    }
                    n -= left;
                    *off = 0;
                    *at += 1;
                }
            }
        }
    }

    fn chunks_vectored<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        let mut n = 0;
        let mut put = |bytes: &'a [u8]| {
            if bytes.is_empty() {
                return true;
            }
            match dst.get_mut(n) {
                Some(slot) => {
                    *slot = IoSlice::new(bytes);
                    n += 1;
                    true
                }
                None => false,
            }
        };
        match &self.what {
            What::Bytes(a, b) => {
                let _ = put(a) && put(b.as_deref().unwrap_or_default());
            }
            What::Stored {
                items,
                pieces,
                at,
                off,
            } => {
                let mut o = *off;
                for p in pieces.iter().skip(*at) {
                    if !put(p.bytes(items).get(o..).unwrap_or_default()) {
                        break;
                    }
                    o = 0;
                }
            }
        }
        n
    }
}

/// A list body left in a response's extensions for the accept loop to send as [`Run`]s; the response's
/// own body ([`Handoff::body`]) sends it frame by frame unless the loop has taken it.
#[derive(Clone)]
pub struct Handoff(Arc<Mutex<Option<ListBody>>>);

impl Handoff {
    pub fn new(body: ListBody) -> Handoff {
        Handoff(Arc::new(Mutex::new(Some(body))))
    }

    /// The body, once: `None` when it was taken already.
    pub fn take(&self) -> Option<ListBody> {
        self.0.lock().ok().and_then(|mut b| b.take())
    }

    /// The response's own body: the list frame by frame, or nothing if the accept loop took it.
    pub fn body(&self) -> HandoffBody {
        let hint = self
            .0
            .lock()
            .ok()
            .and_then(|b| b.as_ref().map(ListBody::size_hint))
            .unwrap_or_default();
        HandoffBody {
            slot: Some(self.clone()),
            body: None,
            hint,
        }
    }
}

/// See [`Handoff::body`].
pub struct HandoffBody {
    slot: Option<Handoff>,
    body: Option<ListBody>,
    hint: SizeHint,
}

impl Body for HandoffBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        if let Some(slot) = this.slot.take() {
            this.body = slot.take();
        }
        match this.body.as_mut() {
            Some(b) => Pin::new(b).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.as_ref().is_some_and(ListBody::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.body
            .as_ref()
            .map_or_else(|| self.hint, ListBody::size_hint)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::cache::{Entry, Seen};
    use crate::scim::list::{Position, list_head, list_response};

    /// Users whose bytes are `size` long (give or take their number), so that runs split where they must.
    fn entries(n: usize, size: usize) -> Arc<[Arc<Entry>]> {
        (0..n)
            .map(|i| {
                let body = format!("{{\"id\":\"u{i}\",\"pad\":\"{}\"}}", "x".repeat(size));
                Arc::new(Entry::restored(
                    format!("u{i}").into(),
                    ResourceKind::User,
                    None,
                    Bytes::from(body),
                    None,
                    Seen {
                        hash: [0; 16],
                        created: jiff::Timestamp::UNIX_EPOCH,
                        last_modified: jiff::Timestamp::UNIX_EPOCH,
                    },
                ))
            })
            .collect()
    }

    fn body(
        all: &Arc<[Arc<Entry>]>,
        range: std::ops::Range<usize>,
        attrs: AttrSelection,
    ) -> ListBody {
        let parts = vec![Part {
            items: Items::Shared(all.clone(), range.clone(), block::stretch_ends(all)),
            kind: ResourceKind::User,
            attrs,
        }];
        ListBody::new(list_head(all.len(), range.len(), Position::Index(1)), parts)
    }

    fn expected(all: &[Arc<Entry>], range: std::ops::Range<usize>) -> Vec<u8> {
        let bytes: Vec<&[u8]> = all[range].iter().map(|e| &e.bytes[..]).collect();
        list_response(all.len(), Position::Index(1), &bytes)
    }

    /// Reads a run the way hyper's flattening write does: `chunk` and `advance`, in steps of `step`.
    fn drain_by_chunks(run: &mut Run, step: usize, out: &mut Vec<u8>) {
        while run.has_remaining() {
            let c = run.chunk();
            assert!(!c.is_empty(), "a run with bytes left offers an empty chunk");
            let n = c.len().min(step);
            out.extend_from_slice(&c[..n]);
            run.advance(n);
        }
    }

    /// Reads a run the way hyper's vectored write does: `chunks_vectored` into `slots` buffers, then an
    /// advance by part of what was offered.
    fn drain_vectored(run: &mut Run, slots: usize, out: &mut Vec<u8>) {
        while run.has_remaining() {
            let mut iov = vec![IoSlice::new(&[]); slots];
            let n = run.chunks_vectored(&mut iov);
            assert!(n > 0, "a run with bytes left offers no buffer");
            let offered: Vec<u8> = iov[..n].iter().flat_map(|s| s.iter().copied()).collect();
            // A short write: take two thirds of what was offered, at least a byte.
            let took = (offered.len() * 2 / 3).max(1);
            out.extend_from_slice(&offered[..took]);
            run.advance(took);
        }
    }

    #[test]
    fn runs_read_by_chunks_or_vectored_are_the_list_byte_for_byte() {
        // 40 resources of ~5 KB: several runs, each ending where RUN_BYTES is passed.
        let all = entries(40, 5000);
        for range in [0..40, 3..17, 0..1, 0..0] {
            let want = expected(&all, range.clone());
            for step in [1, 7, 4096, usize::MAX] {
                let mut list = body(&all, range.clone(), AttrSelection::default());
                let exact = list.size_hint().exact();
                let mut got = Vec::new();
                while let Some(mut run) = list.next_run() {
                    drain_by_chunks(&mut run, step, &mut got);
                }
                assert_eq!(got, want, "by chunks of {step}, range {range:?}");
                assert_eq!(exact, Some(want.len() as u64), "the length announced");
            }
            for slots in [1, 2, 5, 64] {
                let mut list = body(&all, range.clone(), AttrSelection::default());
                let mut got = Vec::new();
                while let Some(mut run) = list.next_run() {
                    drain_vectored(&mut run, slots, &mut got);
                }
                assert_eq!(got, want, "vectored into {slots}, range {range:?}");
            }
        }
    }

    /// `entries` packed into blocks as a build packs them, with `replaced` then re-derived by writes
    /// (bytes of their own) and `removed` gone.
    fn packed(n: usize, size: usize, replaced: &[usize], removed: &[usize]) -> Arc<[Arc<Entry>]> {
        let mut all: Vec<Arc<Entry>> = entries(n, size).to_vec();
        block::pack(&mut all);
        for &i in replaced {
            all[i] = entries(i + 1, size)[i].clone();
        }
        let all: Vec<_> = all
            .into_iter()
            .enumerate()
            .filter(|(i, _)| !removed.contains(i))
            .map(|(_, e)| e)
            .collect();
        all.into()
    }

    #[test]
    fn packed_neighbours_go_out_as_one_buffer_and_the_list_is_unchanged() {
        let all = packed(40, 1500, &[], &[]);
        let mut list = body(&all, 5..35, AttrSelection::default());
        let _head = list.next_run();
        let run = list.next_run().expect("resources");
        let mut iov = vec![IoSlice::new(&[]); 64];
        assert_eq!(run.chunks_vectored(&mut iov), 1, "30 neighbours, one slice");

        let all = packed(60, 1500, &[7, 8, 30], &[20, 45]);
        for range in [0..58, 6..10, 19..22, 0..1] {
            let want = expected(&all, range.clone());
            for step in [1, 333, usize::MAX] {
                let mut list = body(&all, range.clone(), AttrSelection::default());
                let mut got = Vec::new();
                while let Some(mut run) = list.next_run() {
                    drain_by_chunks(&mut run, step, &mut got);
                }
                assert_eq!(got, want, "by chunks of {step}, range {range:?}");
            }
            for slots in [1, 3, 64] {
                let mut list = body(&all, range.clone(), AttrSelection::default());
                let mut got = Vec::new();
                while let Some(mut run) = list.next_run() {
                    drain_vectored(&mut run, slots, &mut got);
                }
                assert_eq!(got, want, "vectored into {slots}, range {range:?}");
            }
            // Chosen one by one (a filter's matches): neighbours found entry by entry.
            let parts = vec![Part {
                items: Items::Owned(all[range.clone()].to_vec()),
                kind: ResourceKind::User,
                attrs: AttrSelection::default(),
            }];
            let mut list =
                ListBody::new(list_head(all.len(), range.len(), Position::Index(1)), parts);
            assert_eq!(list.size_hint().exact(), Some(want.len() as u64));
            let mut got = Vec::new();
            while let Some(mut run) = list.next_run() {
                drain_vectored(&mut run, 64, &mut got);
            }
            assert_eq!(got, want, "owned items, range {range:?}");
        }
    }

    #[test]
    fn a_run_spans_about_run_bytes_of_resources() {
        let all = entries(100, 5000);
        let mut list = body(&all, 0..100, AttrSelection::default());
        let head = list.next_run().expect("the envelope");
        assert!(head.remaining() < 200, "the envelope comes first, alone");
        let run = list.next_run().expect("resources");
        assert!(run.remaining() >= RUN_BYTES, "{} bytes", run.remaining());
        assert!(
            run.remaining() < RUN_BYTES + 5100,
            "{} bytes",
            run.remaining()
        );
    }

    #[test]
    fn the_body_the_router_sees_sends_the_list_unless_the_loop_took_it() {
        let all = entries(30, 3000);
        let want = expected(&all, 0..30);
        let handoff = Handoff::new(body(&all, 0..30, AttrSelection::default()));
        let mut own = handoff.body();
        assert_eq!(own.size_hint().exact(), Some(want.len() as u64));
        let mut got = Vec::new();
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        while let Poll::Ready(Some(Ok(frame))) = Pin::new(&mut own).poll_frame(&mut cx) {
            got.extend_from_slice(&frame.into_data().unwrap_or_default());
        }
        assert_eq!(got, want);
        assert!(handoff.take().is_none(), "the router's body took the list");

        let handoff = Handoff::new(body(&all, 0..30, AttrSelection::default()));
        let mut own = handoff.body();
        assert!(handoff.take().is_some(), "the accept loop takes it");
        assert!(matches!(
            Pin::new(&mut own).poll_frame(&mut cx),
            Poll::Ready(None)
        ));
    }

    #[test]
    fn a_projected_list_is_sent_resource_by_resource_and_still_whole() {
        let all = entries(5, 100);
        let attrs = AttrSelection::parse(Some("id"), None, ResourceKind::User).expect("attributes");
        let mut list = body(&all, 0..5, attrs);
        assert_eq!(
            list.size_hint().exact(),
            None,
            "a projection's length is not known"
        );
        let mut got = Vec::new();
        while let Some(mut run) = list.next_run() {
            drain_by_chunks(&mut run, usize::MAX, &mut got);
        }
        let v: serde_json::Value = serde_json::from_slice(&got).expect("JSON");
        let ids: Vec<&str> = v["Resources"]
            .as_array()
            .expect("Resources")
            .iter()
            .map(|r| r["id"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(ids, ["u0", "u1", "u2", "u3", "u4"]);
        assert!(v["Resources"][0].get("pad").is_none(), "projected");
    }
}
