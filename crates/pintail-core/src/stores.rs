//! Object stores for URLs, made on first use.
//!
//! DataFusion asks a registry for the store behind each URL. Pintail's
//! registry builds one the first time a scheme and host are seen: S3 from
//! the `AWS_*` environment (and `~/.aws` via object_store's credential
//! chain), Google Cloud Storage from `GOOGLE_*`, Azure from `AZURE_*`, and
//! plain HTTP(S) with range requests. Options given in a query (`region`,
//! `endpoint`, `anonymous`, ...) build a store for that bucket that replaces
//! the environment's. This module does not list or read files.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use datafusion::error::{DataFusionError, Result as DFResult};
use datafusion::execution::object_store::ObjectStoreRegistry;
use object_store::ObjectStore;
use url::Url;

use crate::allowed::{AllowedPaths, Confined, store_of};
use crate::counted::{BytesRead, Counted};
use crate::error::{Error, ErrorKind, Result};
use crate::scan::StoreOptions;

/// The session's object stores, keyed by `scheme://host`.
#[derive(Debug, Default)]
pub struct Stores {
    by_key: RwLock<HashMap<String, Arc<dyn ObjectStore>>>,
    /// bytes read through the stores built here
    read: Arc<BytesRead>,
    /// where the stores handed out may read and write (`None`: anywhere)
    allowed: RwLock<Option<Arc<AllowedPaths>>>,
}


impl Stores {
    /// Builds the store for `url` with `options` and registers it, replacing
    /// any earlier store for the same bucket.
    pub fn configure(&self, url: &Url, options: &StoreOptions) -> Result<()> {
        if let (Some(allowed), Some(endpoint)) = (self.allowed(), &options.endpoint) {
            // the roots name buckets, not hosts: another endpoint would send
            // the server's requests (and credentials) wherever SQL says
            return Err(Error::new(ErrorKind::NotAllowed, format!("the endpoint '{endpoint}' cannot be chosen in SQL here"))
                .with_hint(format!("this session may read and write only under {}, through the server's own endpoints", allowed.roots().join(", "))));
        }
        let store = build(url, options)?;
        self.insert(url, self.built(url, store));
        Ok(())
    }

    /// Bytes read so far through the stores built for URLs.
    pub(crate) fn bytes_read(&self) -> Arc<BytesRead> {
        Arc::clone(&self.read)
    }

    /// From now on, every store built for a URL reads and writes only
    /// under `allowed`. Stores made so far are dropped (they are built
    /// again, confined, when next needed); stores registered from outside
    /// (a scan's view, a transaction's overlay) wrap a built one.
    pub(crate) fn confine(&self, allowed: Arc<AllowedPaths>) {
        match self.allowed.write() {
            Ok(mut slot) => *slot = Some(allowed),
            Err(poisoned) => *poisoned.into_inner() = Some(allowed),
        }
        match self.by_key.write() {
            Ok(mut map) => map.clear(),
            Err(poisoned) => poisoned.into_inner().clear(),
        }
    }

    pub(crate) fn allowed(&self) -> Option<Arc<AllowedPaths>> {
        match self.allowed.read() {
            Ok(slot) => slot.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// A store built for `url`, counted, and confined when paths are limited.
    fn built(&self, url: &Url, store: Arc<dyn ObjectStore>) -> Arc<dyn ObjectStore> {
        let store: Arc<dyn ObjectStore> = Arc::new(Counted::new(store, Arc::clone(&self.read)));
        match self.allowed() {
            Some(allowed) => Arc::new(Confined::new(store, store_of(url), allowed)),
            None => store,
        }
    }

    fn insert(&self, url: &Url, store: Arc<dyn ObjectStore>) -> Option<Arc<dyn ObjectStore>> {
        match self.by_key.write() {
            Ok(mut map) => map.insert(store_of(url), store),
            Err(poisoned) => poisoned.into_inner().insert(store_of(url), store),
        }
    }

    fn lookup(&self, url: &Url) -> Option<Arc<dyn ObjectStore>> {
        match self.by_key.read() {
            Ok(map) => map.get(&store_of(url)).cloned(),
            Err(poisoned) => poisoned.into_inner().get(&store_of(url)).cloned(),
        }
    }
}

impl ObjectStoreRegistry for Stores {
    fn register_store(&self, url: &Url, store: Arc<dyn ObjectStore>) -> Option<Arc<dyn ObjectStore>> {
        self.insert(url, store)
    }

    fn deregister_store(&self, url: &Url) -> DFResult<Arc<dyn ObjectStore>> {
        let removed = match self.by_key.write() {
            Ok(mut map) => map.remove(&store_of(url)),
            Err(poisoned) => poisoned.into_inner().remove(&store_of(url)),
        };
        removed.ok_or_else(|| DataFusionError::Execution(format!("no object store registered for {url}")))
    }

    fn get_store(&self, url: &Url) -> DFResult<Arc<dyn ObjectStore>> {
        if let Some(store) = self.lookup(url) {
            return Ok(store);
        }
        let store = build(url, &StoreOptions::default()).map_err(|e| DataFusionError::External(Box::new(e)))?;
        let store = self.built(url, store);
        self.insert(url, Arc::clone(&store));
        Ok(store)
    }
}

/// Builds the store for `url`'s scheme and host.
#[cfg(feature = "native")]
fn build(url: &Url, o: &StoreOptions) -> Result<Arc<dyn ObjectStore>> {
    use object_store::aws::AmazonS3Builder;
    use object_store::azure::MicrosoftAzureBuilder;
    use object_store::gcp::GoogleCloudStorageBuilder;
    use object_store::http::HttpBuilder;

    let host = url.host_str().unwrap_or_default();
    let fail = |what: &str, e: object_store::Error| {
        Error::io(format!("cannot open {what} store for '{url}': {e}"))
            .with_hint("check the credentials and endpoint in the environment or the query's options")
    };
    let store: Arc<dyn ObjectStore> = match url.scheme() {
        "file" => Arc::new(crate::LocalFiles::new()),
        "s3" | "s3a" => {
            let mut b = AmazonS3Builder::from_env().with_bucket_name(host);
            if let Some(r) = &o.region {
                b = b.with_region(r);
            }
            let endpoint = o.endpoint.clone().or_else(|| std::env::var("AWS_ENDPOINT_URL").ok());
            if let Some(e) = &endpoint {
                b = b.with_endpoint(e).with_allow_http(e.starts_with("http://"));
                // S3-compatible servers mostly want path-style requests
                b = b.with_virtual_hosted_style_request(o.url_style_path == Some(false));
            } else if let Some(path_style) = o.url_style_path {
                b = b.with_virtual_hosted_style_request(!path_style);
            }
            if let Some(k) = &o.access_key_id {
                b = b.with_access_key_id(k);
            }
            if let Some(s) = &o.secret_access_key {
                b = b.with_secret_access_key(s);
            }
            if let Some(t) = &o.session_token {
                b = b.with_token(t);
            }
            if o.anonymous {
                b = b.with_skip_signature(true);
            }
            Arc::new(b.build().map_err(|e| fail("S3", e))?)
        }
        "gs" | "gcs" => {
            let mut b = GoogleCloudStorageBuilder::from_env().with_bucket_name(host);
            if o.anonymous {
                b = b.with_skip_signature(true);
            }
            Arc::new(b.build().map_err(|e| fail("GCS", e))?)
        }
        "az" | "azure" | "abfs" | "abfss" => {
            let mut b = MicrosoftAzureBuilder::from_env().with_url(url.as_str());
            if o.anonymous {
                b = b.with_skip_signature(true);
            }
            if let Some(e) = &o.endpoint {
                b = b.with_endpoint(e.clone()).with_allow_http(e.starts_with("http://"));
            }
            Arc::new(b.build().map_err(|e| fail("Azure", e))?)
        }
        "http" | "https" => {
            let base = format!("{}://{}", url.scheme(), &url[url::Position::BeforeHost..url::Position::AfterPort]);
            let client = object_store::ClientOptions::new().with_allow_http(url.scheme() == "http");
            Arc::new(HttpBuilder::new().with_url(base).with_client_options(client).build().map_err(|e| fail("HTTP", e))?)
        }
        other => {
            return Err(Error::io(format!("unsupported URL scheme '{other}' in '{url}'"))
                .with_hint("use a local path or an s3://, gs://, az:// or https:// URL"));
        }
    };
    Ok(store)
}

/// Without the native feature only stores registered by the host exist.
#[cfg(not(feature = "native"))]
fn build(url: &Url, _o: &StoreOptions) -> Result<Arc<dyn ObjectStore>> {
    Err(Error::io(format!("no object store for '{url}' in this build")))
}
