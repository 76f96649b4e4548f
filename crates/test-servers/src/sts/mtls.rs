//! A mutual-TLS front for the STS, as a TLS-terminating proxy in front of
//! an authorization server is deployed (RFC 8705 section 6.1 leaves it to
//! the deployment): rustls asks every client for a certificate, checks it
//! (against a CA for `tls_client_auth`, only the handshake's proof of
//! possession for `self_signed_tls_client_auth`), and forwards each request
//! to the plain-HTTP STS on loopback with the certificate it saw in one
//! header, replacing any header of that name the client sent. A handshake
//! without an acceptable certificate never reaches the STS.
//!
//! One request per connection: the forwarded request says
//! `Connection: close`, so the STS's answer closes the client's connection
//! too and no state crosses requests.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ServerConfig, WebPkiClientVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};

use super::client_auth::CLIENT_CERT_HEADER;
use crate::codec::base64_encode;

/// Which client certificates the front lets through.
#[derive(Clone, Debug)]
pub enum ClientCertTrust {
    /// Chains to this CA (PEM), valid now: `tls_client_auth`.
    Ca(String),
    /// Any certificate whose key signs the handshake:
    /// `self_signed_tls_client_auth` (the STS then compares it with the
    /// registered one).
    AnySelfSigned,
}

/// Accepts any client certificate, but still checks the handshake
/// signature made with its key (proof of possession).
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ClientCertVerifier for AnyCertificate {
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
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A running front; stops on drop.
pub(crate) struct Front {
    port: u16,
    stopped: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl Front {
    /// Listens on a free loopback port with the server's PEM chain and key,
    /// forwarding to `127.0.0.1:inner_port`.
    pub(crate) fn start(
        cert_pem: &str,
        key_pem: &str,
        trust: &ClientCertTrust,
        inner_port: u16,
    ) -> Result<Front, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier: Arc<dyn ClientCertVerifier> = match trust {
            ClientCertTrust::Ca(ca_pem) => {
                let mut roots = RootCertStore::empty();
                for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
                    roots
                        .add(cert.map_err(|e| format!("client CA: {e}"))?)
                        .map_err(|e| format!("client CA: {e}"))?;
                }
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
                    .build()
                    .map_err(|e| format!("client verifier: {e}"))?
            }
            ClientCertTrust::AnySelfSigned => Arc::new(AnyCertificate(Arc::clone(&provider))),
        };
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|e| format!("server certificate: {e}"))?;
        let key =
            PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| format!("server key: {e}"))?;
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_client_cert_verifier(verifier)
            .with_single_cert(certs, key)
            .map_err(|e| format!("server certificate: {e}"))?;
        let config = Arc::new(config);
        let listener = TcpListener::bind(("127.0.0.1", 0)).map_err(|e| format!("cannot listen: {e}"))?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        let stopped = Arc::new(AtomicBool::new(false));
        let stop = Arc::clone(&stopped);
        let acceptor = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let config = Arc::clone(&config);
                std::thread::spawn(move || {
                    let _ = forward(stream, config, inner_port);
                });
            }
        });
        Ok(Front { port, stopped, acceptor: Some(acceptor) })
    }

    pub(crate) fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for Front {
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// One connection: the handshake, one request forwarded with the client
/// certificate, the answer copied back.
fn forward(tcp: TcpStream, config: Arc<ServerConfig>, inner_port: u16) -> std::io::Result<()> {
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(30)))?;
    let conn = rustls::ServerConnection::new(config).map_err(std::io::Error::other)?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    // The request head; reading drives the handshake first.
    let mut reader = BufReader::new(&mut tls);
    let mut head = Vec::new();
    loop {
        let mut line = Vec::new();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        let end = line == b"\r\n" || line == b"\n";
        head.push(line);
        if end || head.len() > 200 {
            break;
        }
    }
    let length = head
        .iter()
        .filter_map(|l| std::str::from_utf8(l).ok())
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let mut body = Vec::new();
    reader.by_ref().take(length.min(2 * 1024 * 1024)).read_to_end(&mut body)?;
    drop(reader);
    let certificate = tls.conn.peer_certificates().and_then(|c| c.first()).map(|c| base64_encode(c.as_ref()));
    let mut out = Vec::new();
    for (i, line) in head.iter().enumerate() {
        let text = String::from_utf8_lossy(line);
        let name = text.split(':').next().unwrap_or("").trim();
        let last = i + 1 == head.len();
        if last {
            out.extend_from_slice(b"Connection: close\r\n");
            if let Some(cert) = &certificate {
                out.extend_from_slice(format!("{CLIENT_CERT_HEADER}: {cert}\r\n").as_bytes());
            }
        } else if i > 0
            && (name.eq_ignore_ascii_case("connection") || name.eq_ignore_ascii_case(CLIENT_CERT_HEADER))
        {
            continue;
        }
        out.extend_from_slice(line);
    }
    out.extend_from_slice(&body);
    let mut inner = TcpStream::connect(("127.0.0.1", inner_port))?;
    inner.write_all(&out)?;
    let mut answer = Vec::new();
    inner.read_to_end(&mut answer)?;
    tls.write_all(&answer)?;
    tls.conn.send_close_notify();
    tls.flush()
}
