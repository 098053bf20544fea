//! TLS on a node's port and on the replication traffic between clusters.
//!
//! - A node that serves TLS (`enableHTTPS=true` or `enableClusterReplicationSSL=true`) answers
//!   a TLS ClientHello on its one port: [`super::server::serve`] sees the handshake record
//!   (first byte `0x16`) and hands the decrypted stream to the gRPC/HTTP server, so Flight
//!   calls and the status pages then run over TLS. pgwire clients ask for TLS the PostgreSQL way
//!   (an SSLRequest) and get it on the same node.
//! - The certificate is `<home>/<alias>/keys/server.crt` with its key `server.key`, as in
//!   DolphinDB. A node that has neither makes a self-signed pair on its first start.
//! - A slave cluster with `enableClusterReplicationSSL=true` reaches the master's nodes over
//!   TLS ([`client_config`]). With `clusterReplicationSSLCAFile` it verifies their certificates
//!   against that file; without it the traffic is encrypted but the master is not
//!   authenticated (PostgreSQL's `sslmode=require`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, ServerConfig, SignatureScheme};
use tokio_rustls::TlsAcceptor;

/// File names under a node's `keys` directory.
pub const CERT_FILE: &str = "server.crt";
pub const KEY_FILE: &str = "server.key";

/// What can go wrong setting TLS up; the node does not start.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read {path}: {message}")]
    Pem { path: PathBuf, message: String },
    #[error("{present} exists but {missing} does not: give both files, or neither to have a self-signed pair made")]
    HalfPair { present: PathBuf, missing: PathBuf },
    #[error("cannot make a self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A node's TLS server side: the acceptor for its port.
pub struct ServerTls {
    acceptor: TlsAcceptor,
    /// The certificate presented (the chain's first): pgwire's channel binding hashes it.
    certificate: CertificateDer<'static>,
}

impl ServerTls {
    /// Loads `server.crt` and `server.key` from `keys`, first making a self-signed pair for
    /// node `name`, valid for `hosts` (and localhost), when neither exists.
    pub fn load_or_create(
        keys: &Path,
        name: &str,
        hosts: &[String],
    ) -> Result<Arc<ServerTls>, TlsError> {
        let (cert, key) = (keys.join(CERT_FILE), keys.join(KEY_FILE));
        match (cert.exists(), key.exists()) {
            (true, true) => {}
            (false, false) => create(keys, &cert, &key, name, hosts)?,
            (true, false) => {
                return Err(TlsError::HalfPair {
                    present: cert,
                    missing: key,
                })
            }
            (false, true) => {
                return Err(TlsError::HalfPair {
                    present: key,
                    missing: cert,
                })
            }
        }
        let pem = |path: &Path| {
            let path = path.to_path_buf();
            move |e: rustls::pki_types::pem::Error| TlsError::Pem {
                path,
                message: e.to_string(),
            }
        };
        let chain = CertificateDer::pem_file_iter(&cert)
            .map_err(pem(&cert))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(pem(&cert))?;
        if chain.is_empty() {
            return Err(TlsError::Pem {
                path: cert,
                message: "no certificate in the file".into(),
            });
        }
        let private = PrivateKeyDer::from_pem_file(&key).map_err(pem(&key))?;
        let certificate = chain[0].clone();
        let config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, private)?;
        Ok(Arc::new(ServerTls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            certificate,
        }))
    }

    pub fn acceptor(&self) -> &TlsAcceptor {
        &self.acceptor
    }

    /// The certificate the node presents (DER).
    pub fn certificate(&self) -> &CertificateDer<'static> {
        &self.certificate
    }
}

/// Makes a self-signed certificate and its key. Each file is written whole under a temporary
/// name and renamed into place, the key first: a crash leaves no half-written file, but one
/// between the two renames leaves the key alone, which the next start refuses by name
/// ([`TlsError::HalfPair`]: delete it to have a new pair made).
fn create(
    keys: &Path,
    cert: &Path,
    key: &Path,
    name: &str,
    hosts: &[String],
) -> Result<(), TlsError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TlsError::Io { path, source }
    };
    std::fs::create_dir_all(keys).map_err(io(keys))?;
    let mut names: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    for h in hosts {
        if !names.contains(h) {
            names.push(h.clone());
        }
    }
    let pair = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(names)?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("porpoise {name}"));
    let certificate = params.self_signed(&pair)?;
    write_new(key, pair.serialize_pem().as_bytes(), 0o600).map_err(io(key))?;
    write_new(cert, certificate.pem().as_bytes(), 0o644).map_err(io(cert))?;
    tracing::info!(cert = %cert.display(), "made a self-signed TLS certificate");
    Ok(())
}

fn write_new(path: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)?;
    f.write_all(contents)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// The client side of replication TLS: verifies servers against the certificates in
/// `ca_file`, or, without one, accepts any certificate (encryption without authentication).
pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, TlsError> {
    let builder =
        ClientConfig::builder_with_provider(provider()).with_safe_default_protocol_versions()?;
    let config = match ca_file {
        Some(path) => {
            let pem = |e: rustls::pki_types::pem::Error| TlsError::Pem {
                path: path.to_path_buf(),
                message: e.to_string(),
            };
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(path).map_err(pem)? {
                roots.add(cert.map_err(pem)?)?;
            }
            if roots.is_empty() {
                return Err(TlsError::Pem {
                    path: path.to_path_buf(),
                    message: "no certificate in the file".into(),
                });
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(EncryptOnly(provider())))
            .with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// Accepts any server certificate but still checks that the server holds its key.
#[derive(Debug)]
struct EncryptOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_makes_its_pair_once_and_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        ServerTls::load_or_create(&keys, "dn1", &["10.0.0.7".into()]).unwrap();
        let first = std::fs::read(keys.join(CERT_FILE)).unwrap();
        ServerTls::load_or_create(&keys, "dn1", &[]).unwrap();
        assert_eq!(std::fs::read(keys.join(CERT_FILE)).unwrap(), first);
        // The certificate it made verifies as its own root.
        client_config(Some(&keys.join(CERT_FILE))).unwrap();
    }

    #[test]
    fn half_a_pair_or_a_bad_file_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        ServerTls::load_or_create(&keys, "dn1", &[]).unwrap();
        std::fs::remove_file(keys.join(KEY_FILE)).unwrap();
        let e = ServerTls::load_or_create(&keys, "dn1", &[])
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("server.crt exists but") && e.contains("server.key"),
            "{e}"
        );
        std::fs::write(keys.join(KEY_FILE), "not a key").unwrap();
        let e = ServerTls::load_or_create(&keys, "dn1", &[])
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("server.key"), "{e}");
        let e = client_config(Some(&keys.join(KEY_FILE))).err().unwrap();
        assert!(e.to_string().contains("no certificate"), "{e}");
    }
}
