//! Who a node is: certificates signed by its cluster's certificate authority.
//!
//! Every cluster has a CA (`ca.crt`, `ca.key`) whose certificate carries the cluster's durable
//! id as a URI name, `porpoise://<cluster-id>`. It signs:
//! - node certificates (`node.crt`, `node.key`), one per controller and data node, valid for
//!   the node's host names and addresses and carrying `porpoise://<cluster-id>/node/<alias>`;
//!   a node presents it both when it serves and when it calls another node;
//! - client certificates (`client.<user>.crt`), carrying `porpoise://<cluster-id>/user/<name>`.
//!
//! A node reads its files from its certificate directory (`<home>/<alias>/certs`, or
//! `<home>/certs` for `porpoise standalone`): `ca.crt`, `node.crt`, `node.key`. `porpoise cert`
//! makes them; a node that has none makes them on its first start with the CA of its home
//! (`<home>/ca`, made then too when absent), so the README's commands need no set-up. The CA's
//! key then lives on the machine: for a cluster spread over machines, make the CA once with
//! `porpoise cert create-ca`, keep its key apart, and give each node its files.
//!
//! Which cluster a peer belongs to is decided by which CA its certificate chains to
//! ([`super::tls`]), never by what the certificate or a request claims; the names read here
//! only say which node or which slave cluster it is once that is settled.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;

/// File names of a certificate directory.
pub const CA_CERT: &str = "ca.crt";
pub const CA_KEY: &str = "ca.key";
pub const NODE_CERT: &str = "node.crt";
pub const NODE_KEY: &str = "node.key";

/// The scheme of the URI names that carry identities.
const SCHEME: &str = "porpoise://";

/// How long a CA and a node or client certificate stay valid (CockroachDB's defaults).
const CA_DAYS: i64 = 10 * 366;
const LEAF_DAYS: i64 = 5 * 366;

/// What can go wrong setting up TLS: reading, making or checking certificates and keys, and
/// the TLS configuration built from them; the node does not start.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot write or read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read {path}: {message}")]
    Pem { path: PathBuf, message: String },
    #[error("cannot make a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("{0:?} is not a valid name (1 to 64 letters, digits, _ or -)")]
    BadName(String),
    #[error("{0} is not a porpoise cluster CA certificate (it carries no porpoise://<cluster-id> name; make one with porpoise cert create-ca)")]
    NotCa(PathBuf),
    #[error(
        "{0} is not a node certificate of cluster {1} (make one with porpoise cert create-node)"
    )]
    NotNode(PathBuf, String),
    #[error("{path} is the certificate of node {names}, not of {alias}")]
    OtherNode {
        path: PathBuf,
        names: String,
        alias: String,
    },
    #[error("{path} is not signed by the cluster CA next to it: {reason}")]
    Untrusted { path: PathBuf, reason: String },
}

/// What a certificate names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    /// A cluster's CA.
    Cluster,
    /// A controller or data node, by alias.
    Node(String),
    /// A SQL user (client certificates).
    User(String),
}

/// The identity a certificate carries: its cluster and what it names there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Named {
    pub cluster: String,
    pub subject: Subject,
}

impl Named {
    fn uri(&self) -> String {
        match &self.subject {
            Subject::Cluster => format!("{SCHEME}{}", self.cluster),
            Subject::Node(alias) => format!("{SCHEME}{}/node/{alias}", self.cluster),
            Subject::User(name) => format!("{SCHEME}{}/user/{name}", self.cluster),
        }
    }

    fn parse(uri: &str) -> Option<Named> {
        let rest = uri.strip_prefix(SCHEME)?;
        let mut parts = rest.splitn(3, '/');
        let cluster = parts.next().filter(|c| valid_name(c))?.to_string();
        let subject = match (parts.next(), parts.next()) {
            (None, None) => Subject::Cluster,
            (Some("node"), Some(alias)) if valid_name(alias) => Subject::Node(alias.to_string()),
            (Some("user"), Some(name)) if !name.is_empty() => Subject::User(name.to_string()),
            _ => return None,
        };
        Some(Named { cluster, subject })
    }
}

/// A cluster id or node alias: 1 to 64 letters, digits, `_` or `-`.
pub fn valid_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// The identity named by a DER certificate, if it carries one.
pub fn named(cert: &CertificateDer<'_>) -> Option<Named> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let san = parsed.subject_alternative_name().ok()??;
    san.value.general_names.iter().find_map(|n| match n {
        x509_parser::extensions::GeneralName::URI(uri) => Named::parse(uri),
        _ => None,
    })
}

/// A new cluster id: 16 random hex digits.
pub fn new_cluster_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// A cluster's certificate authority, able to sign.
pub struct CertificateAuthority {
    cert_pem: String,
    key: rcgen::KeyPair,
    cluster: String,
}

impl CertificateAuthority {
    /// A new CA for cluster `cluster` (a new id when `None`).
    pub fn create(cluster: Option<&str>) -> Result<Self, TlsError> {
        let cluster = match cluster {
            Some(c) if valid_name(c) => c.to_string(),
            Some(c) => return Err(TlsError::BadName(c.to_string())),
            None => new_cluster_id(),
        };
        let key = rcgen::KeyPair::generate()?;
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
        params.subject_alt_names = vec![rcgen::SanType::URI(rcgen::string::Ia5String::try_from(
            Named {
                cluster: cluster.clone(),
                subject: Subject::Cluster,
            }
            .uri(),
        )?)];
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "porpoise");
        params.distinguished_name.push(
            rcgen::DnType::CommonName,
            format!("porpoise cluster {cluster} CA"),
        );
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        validity(&mut params, CA_DAYS);
        let cert = params.self_signed(&key)?;
        Ok(CertificateAuthority {
            cert_pem: cert.pem(),
            key,
            cluster,
        })
    }

    /// Loads a CA from its certificate and key files.
    pub fn load(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let cert_pem = read_text(cert)?;
        let key_pem = read_text(key)?;
        let key = rcgen::KeyPair::from_pem(&key_pem).map_err(|e| TlsError::Pem {
            path: key.to_path_buf(),
            message: e.to_string(),
        })?;
        let der = first_cert(cert)?;
        let cluster = match named(&der) {
            Some(Named {
                cluster,
                subject: Subject::Cluster,
            }) => cluster,
            _ => return Err(TlsError::NotCa(cert.to_path_buf())),
        };
        Ok(CertificateAuthority {
            cert_pem,
            key,
            cluster,
        })
    }

    /// Writes the certificate and the key (mode 0600), each whole or not at all.
    pub fn write(&self, cert: &Path, key: &Path) -> Result<(), TlsError> {
        write_new(key, self.key.serialize_pem().as_bytes(), 0o600)?;
        write_new(cert, self.cert_pem.as_bytes(), 0o644)
    }

    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Signs a certificate for `subject` (a node or a user) valid for `hosts` (names and
    /// addresses; nodes only). Returns the certificate and its new key, both PEM.
    pub fn issue(&self, subject: Subject, hosts: &[String]) -> Result<(String, String), TlsError> {
        let (common, server) = match &subject {
            Subject::Node(alias) if valid_name(alias) => (alias.clone(), true),
            Subject::User(name) if !name.is_empty() && !name.contains('/') => (name.clone(), false),
            Subject::Node(s) | Subject::User(s) => return Err(TlsError::BadName(s.clone())),
            Subject::Cluster => return Err(TlsError::BadName("a CA".into())),
        };
        let names: Vec<String> = if server {
            let mut names: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
            for h in hosts {
                let h = h.trim_matches(['[', ']']).to_string();
                if !h.is_empty() && !names.contains(&h) {
                    names.push(h);
                }
            }
            names
        } else {
            Vec::new()
        };
        let key = rcgen::KeyPair::generate()?;
        let mut params = rcgen::CertificateParams::new(names)?;
        params
            .subject_alt_names
            .push(rcgen::SanType::URI(rcgen::string::Ia5String::try_from(
                Named {
                    cluster: self.cluster.clone(),
                    subject,
                }
                .uri(),
            )?));
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "porpoise");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, common);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::DigitalSignature,
            rcgen::KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = if server {
            vec![
                rcgen::ExtendedKeyUsagePurpose::ServerAuth,
                rcgen::ExtendedKeyUsagePurpose::ClientAuth,
            ]
        } else {
            vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth]
        };
        validity(&mut params, LEAF_DAYS);
        let issuer = rcgen::Issuer::from_ca_cert_pem(&self.cert_pem, &self.key)?;
        let cert = params.signed_by(&key, &issuer)?;
        Ok((cert.pem(), key.serialize_pem()))
    }

    /// Writes a node's certificate directory: `ca.crt`, `node.crt`, `node.key`.
    pub fn write_node(&self, dir: &Path, alias: &str, hosts: &[String]) -> Result<(), TlsError> {
        let (cert, key) = self.issue(Subject::Node(alias.to_string()), hosts)?;
        create_dir(dir)?;
        write_new(&dir.join(CA_CERT), self.cert_pem.as_bytes(), 0o644)?;
        write_new(&dir.join(NODE_KEY), key.as_bytes(), 0o600)?;
        write_new(&dir.join(NODE_CERT), cert.as_bytes(), 0o644)
    }

    /// The CA of a home directory (`<dir>/ca.crt`, `<dir>/ca.key`), made when absent. Nodes of
    /// one home may start at once: the CA is written into a directory of its own and renamed
    /// into place, so every node ends with the same one.
    pub fn load_or_create_in(dir: &Path) -> Result<Self, TlsError> {
        let (cert, key) = (dir.join(CA_CERT), dir.join(CA_KEY));
        if !dir.exists() {
            let parent = dir.parent().unwrap_or(Path::new("."));
            create_dir(parent)?;
            let tmp = parent.join(format!(
                ".ca-{}-{:08x}",
                std::process::id(),
                rand::random::<u32>()
            ));
            create_dir(&tmp)?;
            let ca = CertificateAuthority::create(None)?;
            ca.write(&tmp.join(CA_CERT), &tmp.join(CA_KEY))?;
            match std::fs::rename(&tmp, dir) {
                Ok(()) => {
                    sync_dir(parent)?;
                    tracing::info!(
                        dir = %dir.display(),
                        cluster = ca.cluster(),
                        "made this home's certificate authority"
                    );
                    return Ok(ca);
                }
                // Another node of this home made it first: use theirs.
                Err(_) if dir.exists() => {
                    let _ = std::fs::remove_dir_all(&tmp);
                }
                Err(source) => return Err(TlsError::Io { path: tmp, source }),
            }
        }
        CertificateAuthority::load(&cert, &key)
    }
}

fn validity(params: &mut rcgen::CertificateParams, days: i64) {
    let now = time::OffsetDateTime::now_utc();
    // A day back: the clocks of a cluster's machines differ.
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(days);
}

/// A node's identity: its certificate and key, and its cluster's CA certificate.
#[derive(Debug)]
pub struct NodeIdentity {
    pub cluster: String,
    pub alias: String,
    /// `node.crt`'s chain.
    pub chain: Vec<CertificateDer<'static>>,
    pub key: Arc<PrivateKeyDer<'static>>,
    /// `ca.crt`: the certificates a member of this cluster chains to.
    pub ca: Vec<CertificateDer<'static>>,
    pub dir: PathBuf,
}

impl NodeIdentity {
    /// Loads `ca.crt`, `node.crt` and `node.key` from `dir`; the node certificate must be
    /// signed by the CA and name a node of the CA's cluster.
    pub fn load(dir: &Path) -> Result<Self, TlsError> {
        let ca = certs(&dir.join(CA_CERT))?;
        let chain = certs(&dir.join(NODE_CERT))?;
        let key_path = dir.join(NODE_KEY);
        let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|e| TlsError::Pem {
            path: key_path.clone(),
            message: e.to_string(),
        })?;
        let cluster = match ca.iter().find_map(named) {
            Some(Named {
                cluster,
                subject: Subject::Cluster,
            }) => cluster,
            _ => return Err(TlsError::NotCa(dir.join(CA_CERT))),
        };
        let alias = match named(&chain[0]) {
            Some(Named {
                cluster: c,
                subject: Subject::Node(alias),
            }) if c == cluster => alias,
            _ => return Err(TlsError::NotNode(dir.join(NODE_CERT), cluster)),
        };
        check_chain(&ca, &chain).map_err(|e| TlsError::Untrusted {
            path: dir.join(NODE_CERT),
            reason: e.to_string(),
        })?;
        Ok(NodeIdentity {
            cluster,
            alias,
            chain,
            key: Arc::new(key),
            ca,
            dir: dir.to_path_buf(),
        })
    }

    /// Loads the node's certificate directory `dir`; when it holds no node certificate,
    /// first makes one for `alias`, valid for `hosts`, signed by the CA of `ca_dir` (made when
    /// absent). Refuses a directory whose certificate names another node.
    pub fn load_or_create(
        dir: &Path,
        ca_dir: &Path,
        alias: &str,
        hosts: &[String],
    ) -> Result<Self, TlsError> {
        if !dir.join(NODE_CERT).exists() && !dir.join(NODE_KEY).exists() {
            let ca = CertificateAuthority::load_or_create_in(ca_dir)?;
            ca.write_node(dir, alias, hosts)?;
            tracing::info!(dir = %dir.display(), alias, cluster = ca.cluster(), "made this node's certificate");
        }
        let identity = NodeIdentity::load(dir)?;
        if identity.alias != alias {
            return Err(TlsError::OtherNode {
                path: dir.join(NODE_CERT),
                names: identity.alias,
                alias: alias.to_string(),
            });
        }
        Ok(identity)
    }
}

/// Checks that `chain` (a node certificate first) is signed by one of `ca`.
pub fn check_chain(
    ca: &[CertificateDer<'static>],
    chain: &[CertificateDer<'static>],
) -> Result<(), rustls::Error> {
    let mut roots = RootCertStore::empty();
    for c in ca {
        roots.add(c.clone())?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::new(rustls::crypto::ring::default_provider()),
    )
    .build()
    .map_err(|e| rustls::Error::General(e.to_string()))?;
    let (end, rest) = chain
        .split_first()
        .ok_or_else(|| rustls::Error::General("no certificate".into()))?;
    verifier
        .verify_client_cert(end, rest, UnixTime::now())
        .map(|_| ())
}

/// Every certificate of a PEM file (at least one).
pub fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = |e: rustls::pki_types::pem::Error| TlsError::Pem {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(pem)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem)?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            path: path.to_path_buf(),
            message: "no certificate in the file".into(),
        });
    }
    Ok(certs)
}

fn first_cert(path: &Path) -> Result<CertificateDer<'static>, TlsError> {
    Ok(certs(path)?.swap_remove(0))
}

fn read_text(path: &Path) -> Result<String, TlsError> {
    std::fs::read_to_string(path).map_err(|source| TlsError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn create_dir(dir: &Path) -> Result<(), TlsError> {
    std::fs::create_dir_all(dir).map_err(|source| TlsError::Io {
        path: dir.to_path_buf(),
        source,
    })
}

fn sync_dir(dir: &Path) -> Result<(), TlsError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| TlsError::Io {
            path: dir.to_path_buf(),
            source,
        })
}

/// Writes a file whole under a temporary name, fsyncs it, renames it into place and fsyncs
/// the directory: a crash leaves the old file or the new one, never half of one.
pub fn write_new(path: &Path, contents: &[u8], mode: u32) -> Result<(), TlsError> {
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| TlsError::Io {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io)?;
    f.write_all(contents).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_round_trip_through_their_uri() {
        for subject in [
            Subject::Cluster,
            Subject::Node("dn1".into()),
            Subject::User("alice".into()),
        ] {
            let n = Named {
                cluster: "c0ffee".into(),
                subject,
            };
            assert_eq!(Named::parse(&n.uri()), Some(n));
        }
        assert_eq!(Named::parse("porpoise://a/b"), None);
        assert_eq!(Named::parse("porpoise://a/node/x/y"), None);
        assert_eq!(Named::parse("https://a"), None);
        assert_eq!(Named::parse("porpoise://../node/x"), None);
    }

    #[test]
    fn a_home_ca_signs_node_certificates_that_load_and_name_their_node() {
        let dir = tempfile::tempdir().unwrap();
        let ca_dir = dir.path().join("ca");
        let a = NodeIdentity::load_or_create(
            &dir.path().join("dn1"),
            &ca_dir,
            "dn1",
            &["10.0.0.7".into()],
        )
        .unwrap();
        let b = NodeIdentity::load_or_create(&dir.path().join("dn2"), &ca_dir, "dn2", &[]).unwrap();
        assert_eq!(a.cluster, b.cluster);
        assert_eq!((a.alias.as_str(), b.alias.as_str()), ("dn1", "dn2"));
        // The same files on the next start.
        let first = std::fs::read(dir.path().join("dn1").join(NODE_CERT)).unwrap();
        NodeIdentity::load_or_create(&dir.path().join("dn1"), &ca_dir, "dn1", &[]).unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("dn1").join(NODE_CERT)).unwrap(),
            first
        );
        // A directory made for another node is refused by name.
        let e = NodeIdentity::load_or_create(&dir.path().join("dn1"), &ca_dir, "dn9", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("dn1") && e.contains("dn9"), "{e}");
        // A node certificate of another cluster's CA does not load with this CA.
        let other = CertificateAuthority::create(None).unwrap();
        let (cert, _) = other.issue(Subject::Node("dn1".into()), &[]).unwrap();
        std::fs::write(dir.path().join("dn1").join(NODE_CERT), cert).unwrap();
        assert!(NodeIdentity::load(&dir.path().join("dn1")).is_err());
    }

    #[test]
    fn a_ca_file_keeps_its_cluster_id() {
        let dir = tempfile::tempdir().unwrap();
        let ca = CertificateAuthority::create(Some("site-a")).unwrap();
        ca.write(&dir.path().join(CA_CERT), &dir.path().join(CA_KEY))
            .unwrap();
        let again = CertificateAuthority::load(&dir.path().join(CA_CERT), &dir.path().join(CA_KEY))
            .unwrap();
        assert_eq!(again.cluster(), "site-a");
        assert!(CertificateAuthority::create(Some("a/../b")).is_err());
    }
}
