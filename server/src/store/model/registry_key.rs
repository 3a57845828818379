//! The keys that sign registry tokens (Docker's token authentication, for
//! the OCI registry that trusts this server): an ECDSA P-256 key (ES256)
//! and a self-signed certificate of it, which the registry's root
//! certificate bundle holds. A token names its key by `kid`, the libtrust
//! key ID of the key (distribution 2.8 looks a `kid` up among its bundle's
//! keys by that ID), so a token needs no certificate chain of its own.

use chrono::{DateTime, Utc};
use sha2::{Digest as _, Sha256};

/// A registry key as stored: the newest not retired signs; every key not
/// retired is in the bundle the registry is given.
#[derive(Clone)]
pub struct RegistryKeyRow {
    pub id: i64,
    /// The libtrust key ID of its public key (a token's `kid`).
    pub kid: String,
    /// The private key, PKCS #8 DER; `Debug` never shows it.
    pub private_key: secrecy::SecretSlice<u8>,
    /// Its self-signed certificate, DER.
    pub certificate: Vec<u8>,
    pub created: DateTime<Utc>,
    pub retired: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for RegistryKeyRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryKeyRow")
            .field("id", &self.id)
            .field("kid", &self.kid)
            .field("created", &self.created)
            .field("retired", &self.retired)
            .finish_non_exhaustive()
    }
}

impl RegistryKeyRow {
    /// The private key's PKCS #8 DER, to sign with.
    pub fn expose(&self) -> &[u8] {
        secrecy::ExposeSecret::expose_secret(&self.private_key)
    }

    /// The certificate, PEM.
    pub fn certificate_pem(&self) -> String {
        pem_certificate(&self.certificate)
    }
}

/// A new registry key, made from the OS CSPRNG.
#[derive(Clone)]
pub struct NewRegistryKey {
    pub kid: String,
    pub private_key: Vec<u8>,
    pub certificate: Vec<u8>,
}

impl NewRegistryKey {
    /// A fresh P-256 key and its self-signed certificate.
    pub fn generate() -> Result<Self, rcgen::Error> {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut params = rcgen::CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(
            rcgen::DnType::CommonName,
            "runners-server registry token signer",
        );
        let certificate = params.self_signed(&key)?;
        use rcgen::PublicKeyData as _;
        Ok(Self {
            kid: libtrust_key_id(&key.subject_public_key_info()),
            private_key: key.serialize_der(),
            certificate: certificate.der().to_vec(),
        })
    }
}

/// libtrust's key ID of a public key (its DER SubjectPublicKeyInfo): the
/// SHA-256 of it cut to 240 bits, in base32 without padding, in twelve
/// groups of four joined by `:`.
pub fn libtrust_key_id(spki_der: &[u8]) -> String {
    let digest = Sha256::digest(spki_der);
    let text = data_encoding::BASE32_NOPAD.encode(&digest[..30]);
    let groups: Vec<&str> = text
        .as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).expect("base32 is ASCII"))
        .collect();
    groups.join(":")
}

/// A DER certificate as PEM (64 columns, as Go's `pem.Encode`).
fn pem_certificate(der: &[u8]) -> String {
    let text = data_encoding::BASE64.encode(der);
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in text.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}

#[cfg(test)]
mod tests {
    use super::*;

    /// libtrust's own example of a key ID's shape, and a fresh key's ID is
    /// the ID of its certificate's key.
    #[test]
    fn a_key_id_has_libtrusts_shape() {
        let key = NewRegistryKey::generate().unwrap();
        assert_eq!(key.kid.len(), 12 * 4 + 11, "{}", key.kid);
        assert!(key.kid.split(':').all(|g| {
            g.len() == 4
                && g.bytes()
                    .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
        }));
        // The same bytes give the same ID; others another.
        assert_eq!(libtrust_key_id(b"abc"), libtrust_key_id(b"abc"));
        assert_ne!(libtrust_key_id(b"abc"), libtrust_key_id(b"abd"));
    }
}
