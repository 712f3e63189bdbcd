//! SQL connections to the source and sink databases, with TLS as `sslmode`
//! asks.
//!
//! `require` encrypts without checking the certificate, as libpq does;
//! `verify-ca` and `verify-full` both check the chain and the host name
//! (walguard is stricter than libpq for `verify-ca`). The roots are
//! `sslrootcert` when set, else the bundled Mozilla roots.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio_postgres::{Client, NoTls};

use crate::config::{ConnectionSettings, SslMode};

/// What can go wrong while opening a SQL connection.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("failed to connect to {target}: {source}")]
    Postgres { target: String, source: tokio_postgres::Error },
    #[error("failed to read sslrootcert {path}: {reason}")]
    RootCert { path: String, reason: String },
}

impl ConnectError {
    /// The server-side SQLSTATE, when the server refused us.
    pub fn code(&self) -> Option<&tokio_postgres::error::SqlState> {
        match self {
            ConnectError::Postgres { source, .. } => source.code(),
            ConnectError::RootCert { .. } => None,
        }
    }

    /// Whether connecting again later can succeed: the server refused with a
    /// transient SQLSTATE, or the network failed (refused, reset, timed out).
    /// A configuration problem (a password the server asks for and we do not
    /// have, TLS the server does not offer, an unreadable certificate) stays
    /// until an operator fixes it.
    pub fn is_transient(&self) -> bool {
        match self {
            ConnectError::Postgres { source, .. } => is_transient_error(source),
            ConnectError::RootCert { .. } => false,
        }
    }
}

/// Whether a tokio-postgres error can go away by itself: a transient SQLSTATE,
/// a closed connection, or an I/O failure underneath.
pub fn is_transient_error(err: &tokio_postgres::Error) -> bool {
    if let Some(code) = err.code() {
        return is_transient_code(code);
    }
    let io_failure = std::error::Error::source(err)
        .is_some_and(|cause| cause.downcast_ref::<std::io::Error>().is_some());
    err.is_closed() || io_failure
}

/// Opens a connection and drives it on a background task.
pub async fn connect(
    settings: &ConnectionSettings,
    application_name: &str,
) -> Result<Client, ConnectError> {
    let config = settings.to_tokio_postgres(application_name);
    let failed = |source| ConnectError::Postgres { target: settings.describe(), source };
    match settings.sslmode {
        SslMode::Disable | SslMode::Prefer => {
            let (client, connection) = config.connect(NoTls).await.map_err(failed)?;
            tokio::spawn(async move {
                if let Err(err) = connection.await {
                    tracing::debug!(error = %err, "sql connection closed");
                }
            });
            Ok(client)
        }
        _ => {
            let tls = tokio_postgres_rustls::MakeRustlsConnect::new(client_tls(settings)?);
            let (client, connection) = config.connect(tls).await.map_err(failed)?;
            tokio::spawn(async move {
                if let Err(err) = connection.await {
                    tracing::debug!(error = %err, "sql connection closed");
                }
            });
            Ok(client)
        }
    }
}

fn client_tls(settings: &ConnectionSettings) -> Result<rustls::ClientConfig, ConnectError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions");
    if settings.sslmode == SslMode::Require {
        let verifier = Arc::new(EncryptOnly(provider));
        return Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth());
    }
    let mut roots = rustls::RootCertStore::empty();
    match &settings.sslrootcert {
        Some(path) => {
            let root_error = |reason: String| ConnectError::RootCert {
                path: path.display().to_string(),
                reason,
            };
            let pem = std::fs::read(path).map_err(|err| root_error(err.to_string()))?;
            for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|err| root_error(err.to_string()))?;
                roots.add(cert).map_err(|err| root_error(err.to_string()))?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    Ok(builder.with_root_certificates(roots).with_no_client_auth())
}

/// `sslmode=require`: encrypt, accept any certificate, but still check that
/// the handshake signatures are valid.
#[derive(Debug)]
struct EncryptOnly(Arc<rustls::crypto::CryptoProvider>);

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

/// Quotes an identifier for SQL text.
pub fn quote_ident(name: &str) -> String {
    postgres_protocol::escape::escape_identifier(name)
}

/// Quotes a string literal for SQL text.
pub fn quote_literal(text: &str) -> String {
    postgres_protocol::escape::escape_literal(text)
}

/// Whether an error with this SQLSTATE can go away by itself: connection
/// failures, a server shutting down or starting up, lack of resources,
/// conflicts between transactions, and a session the server ended for
/// idling in a transaction, which a new connection does not share
/// (PostgreSQL documentation, appendix A).
pub fn is_transient_code(code: &tokio_postgres::error::SqlState) -> bool {
    let code = code.code();
    code.starts_with("08")
        || code.starts_with("53")
        || code.starts_with("57P")
        || code == "40001"
        || code == "40P01"
        || code == "55006"
        || code == "25P03"
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_postgres::error::SqlState;

    #[test]
    fn errors_a_new_connection_or_a_retry_can_clear_are_transient() {
        let transient = |code: &str| is_transient_code(&SqlState::from_code(code));
        for code in ["08006", "53300", "57P01", "40001", "40P01", "55006", "25P03"] {
            assert!(transient(code), "{code}");
        }
        // A broken key, a missing table or grant, a statement cancelled (most
        // often by statement_timeout): the same write would fail again.
        for code in ["23505", "42P01", "42501", "57014"] {
            assert!(!transient(code), "{code}");
        }
    }
}
