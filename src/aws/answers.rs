//! Every AWS answer is read within a size limit. The SDK reads a whole answer into
//! memory before it parses it, so an endpoint that sends a gigabyte would take a
//! gigabyte of the daemon's memory, on every retry. [`AnswerLimit`], an interceptor on
//! every client, stops reading an answer at its limit, and the call fails with an
//! unreadable answer (`AwsError::Malformed`): an error for that call only.
//!
//! What it must not do: change what is sent, or let a larger answer through whole.

use std::pin::Pin;
use std::task::{Context, Poll};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeDeserializationInterceptorContextMut;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::ConfigBag;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

/// The largest answer read: far above any page of the APIs called (a page of 50
/// functions, of 100 tagged resources, a 400 KB DynamoDB item).
pub const MAX_ANSWER_BYTES: u64 = 4 * 1024 * 1024;
/// The largest `GetMetricData` answer read: 100,800 datapoints, the most one call
/// returns, take about 2 MB in CBOR.
pub const MAX_METRICS_ANSWER_BYTES: u64 = 16 * 1024 * 1024;

/// Reads each answer of the client it is set on within `0` bytes.
#[derive(Debug, Clone, Copy)]
pub struct AnswerLimit(pub u64);

impl Intercept for AnswerLimit {
    fn name(&self) -> &'static str {
        "AnswerLimit"
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let response = context.response_mut();
        let inner = response.take_body();
        *response.body_mut() = SdkBody::from_body_1_x(Limited {
            inner,
            left: self.0,
            limit: self.0,
        });
        Ok(())
    }
}

/// A body that fails once more than `limit` bytes came.
struct Limited {
    inner: SdkBody,
    left: u64,
    limit: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("the answer is larger than {} MiB; it was not read further", .0 / (1024 * 1024))]
struct TooLarge(u64);

impl Body for Limited {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let frame = match Pin::new(&mut self.inner).poll_frame(context) {
            Poll::Ready(Some(Ok(frame))) => frame,
            Poll::Ready(Some(Err(error))) => return Poll::Ready(Some(Err(error))),
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => return Poll::Pending,
        };
        if let Some(data) = frame.data_ref() {
            let size = data.len() as u64;
            if size > self.left {
                self.left = 0;
                return Poll::Ready(Some(Err(Box::new(TooLarge(self.limit)))));
            }
            self.left -= size;
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
