//! The single rustls crypto provider of the process, shared by the API clients, the
//! syslog sink and the simulator.
//!
//! Every TLS user in the tree (reqwest, tokio-rustls, the simulator) goes through rustls
//! with the `ring` provider, the only one compiled in. The TLS configurations the
//! connector builds itself name it explicitly ([`crypto_provider`]). It is also
//! installed once as the process default ([`install_crypto_provider`]), before anything
//! builds a TLS configuration, because reqwest is built with `rustls-no-provider`: a
//! reqwest client that builds its own TLS configuration panics when no provider is
//! installed.

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
        let suites = |p: &rustls::crypto::CryptoProvider| -> Vec<rustls::CipherSuite> {
            p.cipher_suites.iter().map(|s| s.suite()).collect()
        };
        let installed = rustls::crypto::CryptoProvider::get_default()
            .expect("install_crypto_provider installed a process default");
        assert_eq!(suites(installed), suites(config.crypto_provider()));
        // A reqwest client that builds its own TLS configuration takes the installed
        // provider; built with `rustls-no-provider`, it panics when none is installed.
        let client = reqwest::Client::builder().build();
        assert!(client.is_ok(), "reqwest client builds: {client:?}");
    }
}
