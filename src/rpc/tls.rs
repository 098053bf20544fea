//! Mutual TLS between nodes, and TLS for pgwire clients and the status pages.
//!
//! Every node serves TLS on its one port with its node certificate ([`super::identity`]):
//! [`super::server::serve`] sees a handshake record (first byte `0x16`) and serves gRPC and
//! HTTP inside it; pgwire clients ask for TLS the PostgreSQL way (an SSLRequest). The server
//! asks every caller for a certificate ([`ServerTls::peer`]): one that chains to this
//! cluster's CA makes the caller a member ([`Peer::Member`]); one that chains to a CA in
//! `clusterReplicationSlaveCAFile` makes it a slave cluster's node ([`Peer::Slave`]). A caller
//! with no certificate, or one that chains to neither, still connects (psql, browsers,
//! Prometheus) and is then refused by every RPC service ([`super::server`]'s interceptor),
//! told which certificate it presented.
//!
//! Calls to other nodes ([`client_config`]) present the node certificate and check the
//! server's: against the cluster's CA inside a cluster, against the master cluster's CA
//! (`clusterReplicationSSLCAFile`) from a slave. The other cluster's CA file is read again
//! when it changes ([`TrustFile`]), so two clusters can be started in either order.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    ClientConfig, DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig,
    SignatureScheme,
};
use tokio_rustls::TlsAcceptor;

use super::identity::{self, Named, NodeIdentity, Subject, TlsError};

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Who a caller proved to be, by the certificate it presented.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Peer {
    /// A node of this cluster: its certificate chains to this cluster's CA.
    Member { alias: String },
    /// A node of a slave cluster: its certificate chains to a CA this master trusts for
    /// slaves (`clusterReplicationSlaveCAFile`); `cluster` is that CA's cluster id.
    Slave { cluster: String, alias: String },
}

/// CA certificates in a file that may appear, or change, while the node runs (another
/// cluster's CA): read again when the file changes.
#[derive(Debug)]
pub struct TrustFile {
    path: PathBuf,
    cached: Mutex<Option<Trusted>>,
}

#[derive(Clone, Debug)]
struct Trusted {
    stamp: (SystemTime, u64),
    /// Per CA: its cluster id and a verifier of client certificates chaining to it alone.
    clients: Vec<(String, Arc<dyn ClientCertVerifier>)>,
    roots: Arc<RootCertStore>,
}

impl TrustFile {
    pub fn new(path: PathBuf) -> Arc<Self> {
        Arc::new(TrustFile {
            path,
            cached: Mutex::new(None),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn load(&self) -> Result<Trusted, rustls::Error> {
        let unreadable =
            |m: String| rustls::Error::General(format!("{}: {m}", self.path.display()));
        let meta = std::fs::metadata(&self.path).map_err(|e| unreadable(e.to_string()))?;
        let stamp = (
            meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            meta.len(),
        );
        let mut cached = crate::lock(&self.cached);
        if let Some(t) = cached.as_ref().filter(|t| t.stamp == stamp) {
            return Ok(t.clone());
        }
        let certs = identity::certs(&self.path).map_err(|e| unreadable(e.to_string()))?;
        let mut roots = RootCertStore::empty();
        let mut clients = Vec::new();
        for cert in certs {
            let Some(Named {
                cluster,
                subject: Subject::Cluster,
            }) = identity::named(&cert)
            else {
                return Err(unreadable(
                    "holds a certificate that is not a porpoise cluster CA".into(),
                ));
            };
            let mut one = RootCertStore::empty();
            one.add(cert.clone())?;
            roots.add(cert)?;
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(one), provider())
                .build()
                .map_err(|e| unreadable(e.to_string()))?;
            clients.push((cluster, verifier));
        }
        let trusted = Trusted {
            stamp,
            clients,
            roots: Arc::new(roots),
        };
        *cached = Some(trusted.clone());
        Ok(trusted)
    }
}

/// A node's TLS server side: the acceptor for its port, asking callers for a certificate of
/// this cluster (or of a trusted slave cluster) without requiring one, since pgwire clients
/// and the status pages come without; the RPC services refuse a caller that proved nothing.
pub struct ServerTls {
    acceptor: TlsAcceptor,
    /// The node's own certificate (DER), for SCRAM channel binding.
    certificate: CertificateDer<'static>,
    cluster: String,
    members: Arc<dyn ClientCertVerifier>,
    slaves: Option<Arc<TrustFile>>,
}

impl ServerTls {
    /// The server side of node `identity`; `slaves` names the CAs of slave clusters it admits.
    pub fn new(
        identity: &NodeIdentity,
        slaves: Option<Arc<TrustFile>>,
    ) -> Result<Arc<ServerTls>, TlsError> {
        let mut roots = RootCertStore::empty();
        for c in &identity.ca {
            roots.add(c.clone())?;
        }
        let members = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .map_err(|e| rustls::Error::General(e.to_string()))?;
        let verifier = Arc::new(CallerVerifier {
            provider: provider(),
        });
        let config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(verifier)
            .with_single_cert(identity.chain.clone(), identity.key.clone_key())?;
        Ok(Arc::new(ServerTls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            certificate: identity.chain[0].clone(),
            cluster: identity.cluster.clone(),
            members,
            slaves,
        }))
    }

    pub fn acceptor(&self) -> &TlsAcceptor {
        &self.acceptor
    }

    /// The certificate the node presents (DER): its own, not its CA's.
    pub fn certificate(&self) -> &CertificateDer<'static> {
        &self.certificate
    }

    /// What the first of `certs` claims to be, for the refusal of a caller that is not
    /// trusted (`node dn1 of cluster c0ffee`).
    pub fn claimed(certs: Option<&[CertificateDer<'static>]>) -> Option<String> {
        let named = identity::named(certs?.first()?)?;
        Some(match named.subject {
            Subject::Cluster => format!("the CA of cluster {}", named.cluster),
            Subject::Node(alias) => format!("node {alias} of cluster {}", named.cluster),
            Subject::User(name) => format!("user {name} of cluster {}", named.cluster),
        })
    }

    /// The SQL user a client certificate of this cluster's CA names
    /// (`porpoise cert create-client`), if `certs` is one. It proves who the client is, not
    /// what the user may do, and never makes the client a node.
    pub fn user(&self, certs: Option<&[CertificateDer<'static>]>) -> Option<String> {
        let (end, rest) = certs?.split_first()?;
        self.members
            .verify_client_cert(end, rest, UnixTime::now())
            .ok()?;
        match identity::named(end)? {
            Named {
                cluster,
                subject: Subject::User(name),
            } if cluster == self.cluster => Some(name),
            _ => None,
        }
    }

    /// Who presented `certs` in a finished handshake: a member when they chain to this
    /// cluster's CA, else a slave of the trusted CA they chain to, else nobody.
    pub fn peer(&self, certs: Option<&[CertificateDer<'static>]>) -> Option<Peer> {
        let (end, rest) = certs?.split_first()?;
        let now = UnixTime::now();
        let node = |cluster: &str| match identity::named(end) {
            Some(Named {
                cluster: c,
                subject: Subject::Node(alias),
            }) if c == cluster => Some(alias),
            _ => None,
        };
        if self.members.verify_client_cert(end, rest, now).is_ok() {
            return node(&self.cluster).map(|alias| Peer::Member { alias });
        }
        let trusted = self.slaves.as_ref()?.load().ok()?;
        trusted.clients.iter().find_map(|(cluster, v)| {
            v.verify_client_cert(end, rest, now).ok()?;
            node(cluster).map(|alias| Peer::Slave {
                cluster: cluster.clone(),
                alias,
            })
        })
    }
}

/// The handshake-signature checks every verifier here makes the same way: with the crypto
/// provider's algorithms (the peer proves it holds its certificate's key).
macro_rules! provider_signatures {
    () => {
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            let algorithms = &self.provider.signature_verification_algorithms;
            rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            let algorithms = &self.provider.signature_verification_algorithms;
            rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.provider
                .signature_verification_algorithms
                .supported_schemes()
        }
    };
}

/// Takes any client certificate whose key the client proves it holds, or none: which
/// cluster it belongs to, if any, is decided after the handshake ([`ServerTls::peer`]), so that
/// a caller with a certificate of the wrong cluster is told so by the RPC services instead of
/// seeing its handshake cut.
#[derive(Debug)]
struct CallerVerifier {
    provider: Arc<CryptoProvider>,
}

impl ClientCertVerifier for CallerVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    provider_signatures!();
}

/// Whom a node's calls go to, for [`client_config`].
pub enum ServerTrust {
    /// Nodes of its own cluster.
    Cluster,
    /// Nodes of another cluster, whose CA is in a file (a slave's master).
    File(Arc<TrustFile>),
}

/// The client side of a node's calls: it presents its node certificate and checks the
/// server's against its cluster's CA, or against the CA file of the cluster it calls.
pub fn client_config(
    identity: &NodeIdentity,
    trust: ServerTrust,
) -> Result<Arc<ClientConfig>, TlsError> {
    let builder =
        ClientConfig::builder_with_provider(provider()).with_safe_default_protocol_versions()?;
    let builder = match trust {
        ServerTrust::Cluster => {
            let mut roots = RootCertStore::empty();
            for c in &identity.ca {
                roots.add(c.clone())?;
            }
            builder.with_root_certificates(roots)
        }
        ServerTrust::File(file) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(OtherCluster {
                file,
                provider: provider(),
            })),
    };
    let config = builder.with_client_auth_cert(identity.chain.clone(), identity.key.clone_key())?;
    Ok(Arc::new(config))
}

/// Verifies another cluster's servers against the CA file, read again when it changes (the
/// other cluster may make its CA after this node started).
#[derive(Debug)]
struct OtherCluster {
    file: Arc<TrustFile>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for OtherCluster {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let roots = self.file.load()?.roots;
        let verifier = WebPkiServerVerifier::builder_with_provider(roots, self.provider.clone())
            .build()
            .map_err(|e| rustls::Error::General(e.to_string()))?;
        verifier.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    provider_signatures!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::identity::CertificateAuthority;

    fn node(dir: &Path, ca: &CertificateAuthority, alias: &str) -> NodeIdentity {
        let d = dir.join(alias);
        ca.write_node(&d, alias, &[]).unwrap();
        NodeIdentity::load(&d).unwrap()
    }

    #[test]
    fn callers_are_told_apart_by_the_ca_their_certificate_chains_to() {
        let dir = tempfile::tempdir().unwrap();
        let ours = CertificateAuthority::create(Some("master")).unwrap();
        let slave = CertificateAuthority::create(Some("dr-site")).unwrap();
        let stranger = CertificateAuthority::create(Some("master")).unwrap();
        let trust = dir.path().join("slaves.crt");
        let server = ServerTls::new(
            &node(dir.path(), &ours, "dn1"),
            Some(TrustFile::new(trust.clone())),
        )
        .unwrap();
        let member = node(dir.path(), &ours, "dn2");
        let slave_node = node(dir.path(), &slave, "s_dn1");
        let impostor = node(dir.path(), &stranger, "dn3");
        assert_eq!(
            server.peer(Some(&member.chain)),
            Some(Peer::Member {
                alias: "dn2".into()
            })
        );
        // The slave's CA is not trusted yet, then it is (the file appears while serving).
        assert_eq!(server.peer(Some(&slave_node.chain)), None);
        std::fs::write(&trust, slave.cert_pem()).unwrap();
        assert_eq!(
            server.peer(Some(&slave_node.chain)),
            Some(Peer::Slave {
                cluster: "dr-site".into(),
                alias: "s_dn1".into()
            })
        );
        // Another CA that claims the same cluster id proves nothing.
        assert_eq!(server.peer(Some(&impostor.chain)), None);
        assert_eq!(server.peer(None), None);
        // A client certificate names a user, and does not make its holder a node.
        let dir_user = dir.path().join("alice");
        std::fs::create_dir_all(&dir_user).unwrap();
        let (cert, _) = ours.issue(Subject::User("alice".into()), &[]).unwrap();
        std::fs::write(dir_user.join("c.crt"), cert).unwrap();
        let alice = identity::certs(&dir_user.join("c.crt")).unwrap();
        assert_eq!(server.user(Some(&alice)), Some("alice".to_string()));
        assert_eq!(server.peer(Some(&alice)), None);
        assert_eq!(server.user(Some(&member.chain)), None);
        let (cert, _) = stranger.issue(Subject::User("alice".into()), &[]).unwrap();
        std::fs::write(dir_user.join("s.crt"), cert).unwrap();
        let forged = identity::certs(&dir_user.join("s.crt")).unwrap();
        assert_eq!(server.user(Some(&forged)), None);
        // A file of anything but porpoise CAs is not trusted.
        std::fs::write(
            &trust,
            std::fs::read(dir.path().join("dn2").join("node.crt")).unwrap(),
        )
        .unwrap();
        assert_eq!(server.peer(Some(&slave_node.chain)), None);
    }
}
