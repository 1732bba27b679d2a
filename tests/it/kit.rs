//! Shared test kit: free ports, polling with deadlines, the real binary.

use std::process::Command;

/// The real binary, with an empty environment (so a developer's `MRAV2_API_KEY` or
/// proxy variables cannot change the outcome); add variables with `.env(…)`.
#[allow(dead_code)]
pub fn connector() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mrav2-syslog-connector"));
    cmd.env_clear();
    cmd
}

pub use connect_proxy::{ConnectProxy, base64};

/// A small HTTP CONNECT proxy on loopback for the proxy tests: it records what passed
/// (method, target, `Proxy-Authorization`), answers 407 when credentials are required
/// and wrong, and otherwise tunnels bytes both ways.
mod connect_proxy {
    use std::net::SocketAddr;
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    /// One request head the proxy received.
    #[derive(Debug, Clone)]
    pub struct ProxyRequest {
        pub method: String,
        pub target: String,
        pub proxy_authorization: Option<String>,
    }

    /// A running proxy.
    pub struct ConnectProxy {
        pub addr: SocketAddr,
        log: Arc<Mutex<Vec<ProxyRequest>>>,
    }

    impl ConnectProxy {
        /// Starts a proxy; with `credentials`, only `Basic user:password` passes.
        pub async fn start(credentials: Option<(&str, &str)>) -> ConnectProxy {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let log = Arc::new(Mutex::new(Vec::new()));
            let expected = credentials
                .map(|(u, p)| format!("Basic {}", base64(format!("{u}:{p}").as_bytes())));
            let task_log = Arc::clone(&log);
            tokio::spawn(async move {
                loop {
                    let Ok((client, _)) = listener.accept().await else {
                        return;
                    };
                    let log = Arc::clone(&task_log);
                    let expected = expected.clone();
                    tokio::spawn(async move {
                        let _ = serve(client, log, expected).await;
                    });
                }
            });
            ConnectProxy { addr, log }
        }

        /// `http://127.0.0.1:<port>`.
        pub fn url(&self) -> String {
            format!("http://{}", self.addr)
        }

        /// Every request head received so far.
        pub fn requests(&self) -> Vec<ProxyRequest> {
            self.log.lock().unwrap().clone()
        }
    }

    async fn serve(
        mut client: TcpStream,
        log: Arc<Mutex<Vec<ProxyRequest>>>,
        expected: Option<String>,
    ) -> std::io::Result<()> {
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = client.read(&mut buf).await?;
            if n == 0 || head.len() > 16 * 1024 {
                return Ok(());
            }
            head.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&head).into_owned();
        let mut lines = text.split("\r\n");
        let first = lines.next().unwrap_or_default();
        let mut parts = first.split(' ');
        let method = parts.next().unwrap_or_default().to_string();
        let target = parts.next().unwrap_or_default().to_string();
        let proxy_authorization = lines
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.eq_ignore_ascii_case("proxy-authorization"))
            .map(|(_, v)| v.trim().to_string());
        log.lock().unwrap().push(ProxyRequest {
            method: method.clone(),
            target: target.clone(),
            proxy_authorization: proxy_authorization.clone(),
        });
        if expected.is_some() && proxy_authorization != expected {
            client
                .write_all(
                    b"HTTP/1.1 407 Proxy Authentication Required\r\n\
                      Proxy-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\n\r\n",
                )
                .await?;
            return Ok(());
        }
        if method != "CONNECT" {
            client
                .write_all(b"HTTP/1.1 501 Not Implemented\r\nContent-Length: 0\r\n\r\n")
                .await?;
            return Ok(());
        }
        let Ok(mut upstream) = TcpStream::connect(&target).await else {
            client
                .write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                .await?;
            return Ok(());
        };
        client
            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .await?;
        tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
        Ok(())
    }

    /// Standard base64 with padding (enough for a Basic credential).
    pub fn base64(input: &[u8]) -> String {
        const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in input.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(ABC[((n >> (18 - 6 * i)) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }
}
