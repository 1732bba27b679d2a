//! The single rustls crypto provider of the process, and TLS helpers shared by the API
//! client and the syslog sink.
//!
//! Every TLS user in the tree (reqwest, tokio-rustls, the simulator) goes through rustls
//! with the `ring` provider. A tree that compiled in two providers would make rustls
//! panic at run time when it had to pick one, so the provider is installed explicitly
//! once, before anything builds a TLS configuration.

use std::sync::Arc;

/// Installs `ring` as the process-wide rustls provider. Idempotent: a second call (or a
/// call after another part of the program installed the same provider) is harmless.
pub fn install_crypto_provider() {
    // `install_default` fails only when a provider is already installed; that is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The provider itself, for builders that take it explicitly.
pub fn crypto_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tls_client_config_builds_with_the_one_provider() {
        install_crypto_provider();
        let roots = rustls::RootCertStore::empty();
        let config = rustls::ClientConfig::builder_with_provider(crypto_provider())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        assert!(!config.alpn_protocols.iter().any(|p| p.is_empty()));
        // reqwest must find the installed provider too; with two providers compiled in
        // and none installed this panics.
        let client = reqwest::Client::builder().build();
        assert!(client.is_ok(), "reqwest client builds: {client:?}");
    }
}
