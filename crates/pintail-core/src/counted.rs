//! Counting the bytes a session reads from object stores, for progress.
//!
//! Every store the session builds for a URL is wrapped in [`Counted`],
//! which adds the size of each read to a counter shared by the session. A
//! running query's progress ([`crate::Progress`]) reports how far that
//! counter moved since the query started. Bytes are counted as they arrive
//! for streamed reads; a local file handed out whole is counted by the
//! range requested when it is handed out, which over-counts reads that stop
//! early (DataFusion asks for the rest of a file to find the line break
//! after a CSV byte range, and reads a few bytes of it). Writes, listings
//! and metadata requests are not counted.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, GetResultPayload, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions,
};

/// Bytes read through a session's stores, ever.
#[derive(Debug, Default)]
pub(crate) struct BytesRead(AtomicU64);

impl BytesRead {
    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
}

/// An object store that counts the bytes read through it.
#[derive(Debug)]
pub(crate) struct Counted {
    inner: Arc<dyn ObjectStore>,
    read: Arc<BytesRead>,
}

impl Counted {
    pub(crate) fn new(inner: Arc<dyn ObjectStore>, read: Arc<BytesRead>) -> Self {
        Self { inner, read }
    }
}

impl fmt::Display for Counted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

#[async_trait]
impl ObjectStore for Counted {
    async fn put_opts(&self, location: &Path, payload: PutPayload, opts: PutOptions) -> object_store::Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> object_store::Result<GetResult> {
        let head = options.head;
        let mut result = self.inner.get_opts(location, options).await?;
        if head {
            // metadata only (a local store still hands out the file)
            return Ok(result);
        }
        result.payload = match result.payload {
            GetResultPayload::Stream(stream) => {
                let read = Arc::clone(&self.read);
                GetResultPayload::Stream(
                    stream
                        .inspect(move |chunk| {
                            if let Ok(bytes) = chunk {
                                read.add(bytes.len() as u64);
                            }
                        })
                        .boxed(),
                )
            }
            // a local file, read by the caller itself
            #[cfg(not(target_arch = "wasm32"))]
            file @ GetResultPayload::File(..) => {
                self.read.add(result.range.end - result.range.start);
                file
            }
        };
        Ok(result)
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> object_store::Result<Vec<Bytes>> {
        let got = self.inner.get_ranges(location, ranges).await?;
        self.read.add(got.iter().map(|b| b.len() as u64).sum());
        Ok(got)
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> object_store::Result<()> {
        self.inner.rename_opts(from, to, options).await
    }
}
