//! A `ListResponse` as a body of chunks: the envelope, then each resource's stored bytes as they are, with
//! `,` between them, then the close. No resource is copied, and a list of every user holds no more than
//! the page it answers (a window of the snapshot's own list) whatever the directory's size. Under
//! `attributes` / `excludedAttributes` each resource is projected as it is sent, one at a time.
//!
//! When nothing is projected the length is known before the first byte, so the answer carries
//! `Content-Length`; a projected list is sent chunked.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Bytes;
use http_body::{Body, Frame, SizeHint};

use super::support::entry_bytes;
use crate::directory::read::Items;
use crate::scim::ResourceKind;
use crate::scim::attrs::AttrSelection;
use crate::scim::list::LIST_TAIL;

/// The resources of one kind on a page, and how they are projected.
pub struct Part {
    pub items: Items,
    pub kind: ResourceKind,
    pub attrs: AttrSelection,
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
            let resources: usize = parts
                .iter()
                .flat_map(|p| p.items.iter())
                .map(|e| e.bytes.len())
                .sum();
            let count: usize = parts.iter().map(|p| p.items.len()).sum();
            (head.len() + resources + count.saturating_sub(1) + LIST_TAIL.len()) as u64
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

    /// The next chunk, or `None` once the close has been sent.
    fn next_chunk(&mut self) -> Option<Bytes> {
        if let Some(head) = self.head.take() {
            return Some(head);
        }
        while let Some(part) = self.parts.get(self.part) {
            let Some(e) = part.items.as_slice().get(self.item) else {
                self.part += 1;
                self.item = 0;
                continue;
            };
            if self.comma {
                self.comma = false;
                return Some(Bytes::from_static(b","));
            }
            self.item += 1;
            self.comma = true;
            return Some(entry_bytes(e, &part.attrs, part.kind));
        }
        if self.done {
            return None;
        }
        self.done = true;
        Some(Bytes::from_static(LIST_TAIL))
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
