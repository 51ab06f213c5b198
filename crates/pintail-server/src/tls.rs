//! TLS from a certificate chain and a private key in PEM files (rustls,
//! with ring as the crypto provider).

use std::path::Path;
use std::sync::Arc;

use pgwire::tokio::tokio_rustls::rustls;
use pintail_core::{Error, ErrorKind, Result};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A server's TLS identity, loaded once at start.
#[derive(Debug, Clone)]
pub struct Tls {
    pub(crate) certificates: Vec<CertificateDer<'static>>,
    pub(crate) key: Arc<PrivateKeyDer<'static>>,
}

impl Tls {
    /// Reads the certificate chain (the server's certificate first) from
    /// `cert` and the private key (PKCS#8, PKCS#1 or SEC1) from `key`;
    /// fails naming the file when either is unreadable or does not hold
    /// what it should, or when they do not belong together.
    pub fn load(cert: &Path, key: &Path) -> Result<Self> {
        let read = |path: &Path, what: &str| {
            std::fs::read(path).map_err(|e| Error::io(format!("cannot read the TLS {what} file {}: {e}", path.display())))
        };
        let bad = |path: &Path, what: String| Error::new(ErrorKind::InvalidOption, format!("{}: {what}", path.display()));
        let certificates = CertificateDer::pem_slice_iter(&read(cert, "certificate")?)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| bad(cert, format!("not a PEM certificate chain ({e})")))?;
        if certificates.is_empty() {
            return Err(bad(cert, "no certificate found (expected -----BEGIN CERTIFICATE-----)".to_owned()));
        }
        let key_der = PrivateKeyDer::from_pem_slice(&read(key, "private key")?)
            .map_err(|e| bad(key, format!("no private key found ({e}); expected a PEM private key")))?;
        let tls = Self { certificates, key: Arc::new(key_der) };
        // checks that the key is one rustls can use, and is the certificate's
        tls.rustls_config(Vec::new())
            .map_err(|e| Error::new(ErrorKind::InvalidOption, format!("the TLS certificate {} and key {} cannot be used: {}", cert.display(), key.display(), e.message())))?;
        Ok(tls)
    }

    /// A rustls server configuration offering `alpn` protocols.
    pub(crate) fn rustls_config(&self, alpn: Vec<Vec<u8>>) -> Result<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::new(ErrorKind::Internal, e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(self.certificates.clone(), self.key.clone_key())
            .map_err(|e| Error::new(ErrorKind::InvalidOption, e.to_string()))?;
        config.alpn_protocols = alpn;
        Ok(config)
    }
}
