//! The worker's side of smart render: the farm-wide segment store behind the local segment
//! cache (FetchSegment / StoreSegment), and publishing a running attempt's live stream
//! (PublishStream).
//!
//! Both are called from render threads (blocking), so they enter the runtime with
//! `Handle::block_on`. Neither can fail a render: a segment that cannot be fetched is
//! rendered, one that cannot be stored is only not shared, and a stream that cannot be
//! published is only not watchable.

use std::path::Path;
use std::sync::Weak;
use std::time::Duration;

use proto::v1::{
    publish_stream_request, store_segment_request, AttemptRef, FetchSegmentRequest,
    PublishStreamHeader, PublishStreamRequest, StoreSegmentHeader, StoreSegmentRequest,
};
use render_core::segments::SharedSegments;
use tokio::runtime::Handle;
use tonic::Code;

use crate::client::{self, Client};
use crate::runtime::Shared;

/// How long one segment transfer may take.
const SEGMENT_TIMEOUT: Duration = Duration::from_secs(30);

/// The coordinator's segment store, for [`render_core::segments::SegmentCache`].
pub(crate) struct CoordinatorSegments {
    /// The worker (its client and current registration); weak, as the worker owns the cache.
    pub(crate) shared: Weak<Shared>,
    pub(crate) handle: Handle,
}

impl CoordinatorSegments {
    fn client(&self) -> Result<(Client, String), String> {
        let shared = self.shared.upgrade().ok_or("the worker is stopping")?;
        Ok((shared.client.clone(), shared.session().worker_id))
    }
}

impl SharedSegments for CoordinatorSegments {
    fn fetch(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        let (mut c, worker_id) = self.client()?;
        let request = FetchSegmentRequest {
            worker_id,
            key: key.to_owned(),
        };
        self.handle.block_on(async {
            let call = async {
                let mut stream = c
                    .fetch_segment(client::request(request, SEGMENT_TIMEOUT))
                    .await?
                    .into_inner();
                let mut data = Vec::new();
                while let Some(chunk) = stream.message().await? {
                    data.extend_from_slice(&chunk.data);
                }
                Ok(data)
            };
            match client::with_deadline(SEGMENT_TIMEOUT, call).await {
                Ok(data) => Ok(Some(data)),
                Err(status) if status.code() == Code::NotFound => Ok(None),
                Err(status) => Err(format!("FetchSegment: {}", status.message())),
            }
        })
    }

    fn store(&self, key: &str, bytes: &[u8]) -> Result<(), String> {
        let (mut c, worker_id) = self.client()?;
        let mut parts = vec![StoreSegmentRequest {
            part: Some(store_segment_request::Part::Header(StoreSegmentHeader {
                worker_id,
                key: key.to_owned(),
                size: bytes.len() as u64,
            })),
        }];
        parts.extend(
            bytes
                .chunks(proto::CHUNK_BYTES)
                .map(|c| StoreSegmentRequest {
                    part: Some(store_segment_request::Part::Chunk(c.to_vec())),
                }),
        );
        self.handle.block_on(async {
            client::with_deadline(SEGMENT_TIMEOUT, async {
                c.store_segment(client::request(
                    futures::stream::iter(parts),
                    SEGMENT_TIMEOUT,
                ))
                .await
            })
            .await
            .map(|_| ())
            .map_err(|status| format!("StoreSegment: {}", status.message()))
        })
    }
}

/// Publishes the files of one attempt's live stream.
pub(crate) struct StreamPublisher {
    pub(crate) client: Client,
    pub(crate) worker_id: String,
    pub(crate) attempt: AttemptRef,
    pub(crate) handle: Handle,
}

impl StreamPublisher {
    /// Sends the file at `path` as `name`; true when the coordinator took it.
    pub(crate) fn publish(&self, name: &str, path: &Path) -> bool {
        let data = match std::fs::read(path) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(name, error = %e, "cannot read a live stream file");
                return false;
            }
        };
        let mut parts = vec![PublishStreamRequest {
            part: Some(publish_stream_request::Part::Header(PublishStreamHeader {
                worker_id: self.worker_id.clone(),
                attempt: Some(self.attempt.clone()),
                name: name.to_owned(),
            })),
        }];
        parts.extend(
            data.chunks(proto::CHUNK_BYTES)
                .map(|c| PublishStreamRequest {
                    part: Some(publish_stream_request::Part::Chunk(c.to_vec())),
                }),
        );
        let mut c = self.client.clone();
        let result = self
            .handle
            .block_on(client::with_deadline(SEGMENT_TIMEOUT, async {
                c.publish_stream(client::request(
                    futures::stream::iter(parts),
                    SEGMENT_TIMEOUT,
                ))
                .await
            }));
        match result {
            Ok(_) => true,
            Err(status) => {
                tracing::warn!(name, error = %status.message(), "cannot publish the live stream");
                false
            }
        }
    }
}
