//! Test certificates made with rcgen for one test: a CA, a leaf signed by it for `localhost`
//! and `127.0.0.1`, a leaf signed by it for a name no test connects to, and a self-signed
//! leaf for `localhost`/`127.0.0.1`, a leaf signed by it that expired long ago, and a client
//! certificate signed by it (for servers that require one). All are written as PEM files into a temp dir so that a
//! config can point `tls_ca_file` at the CA; the DER forms feed the scripted server.
//!
//! Keys are ECDSA P-256 (rcgen's default, signed with ring), so making a set takes a few
//! milliseconds and every test can have its own.

use std::fs;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PublicKeyData,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};
use tempfile::TempDir;

/// The names every "good" certificate is valid for.
pub const GOOD_NAMES: [&str; 2] = ["localhost", "127.0.0.1"];

/// The only name the wrong-name leaf is valid for.
pub const WRONG_NAME: &str = "wrong.example.org";

/// A certificate with its private key: what a server presents.
#[derive(Clone)]
pub struct Identity {
    /// The certificate, DER.
    pub cert_der: Vec<u8>,
    /// The private key, PKCS#8 DER.
    pub key_der: Vec<u8>,
    /// Where the certificate's PEM file is.
    pub cert_path: PathBuf,
    /// Where the key's PEM file is.
    pub key_path: PathBuf,
    /// The certificate's SubjectPublicKeyInfo, DER (outer SEQUENCE included).
    pub spki_der: Vec<u8>,
}

impl Identity {
    /// The certificate for rustls.
    pub fn cert(&self) -> CertificateDer<'static> {
        CertificateDer::from(self.cert_der.clone())
    }

    /// The private key for rustls.
    pub fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()))
    }

    /// SHA-256 of the certificate's DER as 64 lowercase hex digits.
    pub fn sha256_hex(&self) -> String {
        Sha256::digest(&self.cert_der)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// SHA-256 of the certificate's DER in the config's pin form: `sha256:AB:CD:...`.
    pub fn sha256_pin(&self) -> String {
        format!("sha256:{}", self.sha256_colons())
    }

    /// SHA-256 of the certificate's DER as `AB:CD:...` (how `openssl x509 -fingerprint`
    /// and error messages show it).
    pub fn sha256_colons(&self) -> String {
        colons(&Sha256::digest(&self.cert_der))
    }

    /// SHA-256 of the SubjectPublicKeyInfo (a public-key pin) in the config's pin form.
    pub fn spki_sha256_pin(&self) -> String {
        format!("sha256:{}", colons(&Sha256::digest(&self.spki_der)))
    }
}

fn colons(digest: &[u8]) -> String {
    let pairs: Vec<String> = digest.iter().map(|b| format!("{b:02X}")).collect();
    pairs.join(":")
}

/// One test's certificates and the temp dir holding their PEM files (removed on drop).
pub struct TestCerts {
    /// The CA; `ca.cert_path` is what `tls_ca_file` points at.
    pub ca: Identity,
    /// Signed by `ca`, valid for `localhost` and `127.0.0.1`.
    pub leaf: Identity,
    /// Signed by `ca`, valid only for [`WRONG_NAME`].
    pub wrong_name: Identity,
    /// Self-signed, valid for `localhost` and `127.0.0.1`: no CA vouches for it.
    pub self_signed: Identity,
    /// Signed by `ca`, valid for `localhost` and `127.0.0.1`, but only during 2020.
    pub expired: Identity,
    /// A client certificate (extended key usage clientAuth) for `alice`, signed by `ca`.
    pub client: Identity,
    dir: TempDir,
}

impl TestCerts {
    /// Generate a fresh set and write it to a new temp dir.
    pub fn new() -> TestCerts {
        let dir = tempfile::Builder::new()
            .prefix("pop3-certs-")
            .tempdir()
            .expect("temp dir for certificates");

        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "pop3 test CA");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
        let ca = write_identity(
            dir.path(),
            "ca",
            ca_cert.der().to_vec(),
            ca_cert.pem(),
            &ca_key,
        );
        let issuer = Issuer::new(ca_params, ca_key);

        let leaf = make_leaf(dir.path(), "leaf", &GOOD_NAMES, Some(&issuer));
        let wrong_name = make_leaf(dir.path(), "wrong-name", &[WRONG_NAME], Some(&issuer));
        let self_signed = make_leaf(dir.path(), "self-signed", &GOOD_NAMES, None);
        let expired = make_cert(
            dir.path(),
            "expired",
            &GOOD_NAMES,
            Some(&issuer),
            |params| {
                params.not_before = rcgen::date_time_ymd(2020, 1, 1);
                params.not_after = rcgen::date_time_ymd(2021, 1, 1);
            },
        );
        let client = make_cert(dir.path(), "client", &["alice"], Some(&issuer), |params| {
            params.subject_alt_names.clear();
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        });
        TestCerts {
            ca,
            leaf,
            wrong_name,
            self_signed,
            expired,
            client,
            dir,
        }
    }

    /// The temp dir holding the PEM files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The CA's PEM file, for `tls_ca_file` / `--ca-file`.
    pub fn ca_file(&self) -> &Path {
        &self.ca.cert_path
    }
}

impl Default for TestCerts {
    fn default() -> Self {
        TestCerts::new()
    }
}

/// A server certificate for `names`, signed by `issuer` or self-signed when there is none.
fn make_leaf(
    dir: &Path,
    stem: &str,
    names: &[&str],
    issuer: Option<&Issuer<'_, KeyPair>>,
) -> Identity {
    make_cert(dir, stem, names, issuer, |_| {})
}

/// [`make_leaf`] with the parameters changed by `adjust` before signing.
fn make_cert(
    dir: &Path,
    stem: &str,
    names: &[&str],
    issuer: Option<&Issuer<'_, KeyPair>>,
    adjust: impl FnOnce(&mut CertificateParams),
) -> Identity {
    let key = KeyPair::generate().expect("leaf key");
    let sans: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut params = CertificateParams::new(sans).expect("leaf params");
    params.distinguished_name.push(DnType::CommonName, names[0]);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = issuer.is_some();
    adjust(&mut params);
    let cert = match issuer {
        Some(issuer) => params.signed_by(&key, issuer),
        None => params.self_signed(&key),
    }
    .expect("leaf certificate");
    write_identity(dir, stem, cert.der().to_vec(), cert.pem(), &key)
}

fn write_identity(
    dir: &Path,
    stem: &str,
    cert_der: Vec<u8>,
    cert_pem: String,
    key: &KeyPair,
) -> Identity {
    let cert_path = dir.join(format!("{stem}.pem"));
    let key_path = dir.join(format!("{stem}.key"));
    let key_pem = key.serialize_pem();
    fs::write(&cert_path, &cert_pem).expect("write certificate PEM");
    fs::write(&key_path, &key_pem).expect("write key PEM");
    Identity {
        cert_der,
        key_der: key.serialize_der(),
        cert_path,
        key_path,
        spki_der: key.subject_public_key_info(),
    }
}
