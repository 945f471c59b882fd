//! Adapts a hub [`tollgate_events::Watch`] channel to the `Stream` of SSE events that
//! axum's `Sse` response sends.

use axum::response::sse::Event as SseEvent;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use tollgate_events::{Watch, WatchItem};

/// Turns each watch item into SSE events with `render`, in order.
pub(crate) struct WatchStream<F> {
    items: Watch,
    pending: VecDeque<SseEvent>,
    render: F,
}

impl<F: FnMut(WatchItem) -> Vec<SseEvent>> WatchStream<F> {
    pub(crate) fn new(items: Watch, render: F) -> Self {
        Self {
            items,
            pending: VecDeque::new(),
            render,
        }
    }
}

impl<F: FnMut(WatchItem) -> Vec<SseEvent> + Unpin> futures_core::Stream for WatchStream<F> {
    type Item = Result<SseEvent, Infallible>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(event) = this.pending.pop_front() {
                return Poll::Ready(Some(Ok(event)));
            }
            match this.items.poll_recv(cx) {
                Poll::Ready(Some(item)) => this.pending.extend((this.render)(item)),
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}
