//! HTTPS with `--tls-cert` / `--tls-key`: a self-signed certificate made in the test
//! (rcgen), a real server process, the management CLI and the webhook over TLS.

use crate::support::*;
use hyper::Method;
use std::process::Command;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Pem {
    _dir: tempfile::TempDir,
    cert: std::path::PathBuf,
    key: std::path::PathBuf,
}

fn self_signed() -> Pem {
    let made =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    Pem {
        _dir: dir,
        cert,
        key,
    }
}

fn cli(
    args: &[&str],
    server: &str,
    data_dir: &std::path::Path,
    ca: Option<&std::path::Path>,
) -> (bool, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stathook"));
    cmd.args(args)
        .args(["--server", server, "--data-dir"])
        .arg(data_dir)
        .env_remove("STATHOOK_ADMIN_TOKEN")
        .env_remove("STATHOOK_CA_CERT");
    if let Some(ca) = ca {
        cmd.arg("--ca-cert").arg(ca);
    }
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test]
async fn https_serves_the_webhook_and_the_cli_with_a_self_signed_certificate() {
    let pem = self_signed();
    let dir = tempfile::tempdir().unwrap();
    let child = Child::start(
        dir.path(),
        &[
            "--tls-cert",
            pem.cert.to_str().unwrap(),
            "--tls-key",
            pem.key.to_str().unwrap(),
        ],
    );
    assert!(child.url.starts_with("https://127.0.0.1:"), "{}", child.url);
    let url = child.url.clone();
    let ca = Some(pem.cert.as_path());

    // The CLI over HTTPS, trusting the certificate.
    let (ok, out) = cli(
        &["project", "create", "--name", "p", "--id", "p"],
        &url,
        dir.path(),
        ca,
    );
    assert!(ok, "{out}");
    let (ok, out) = cli(
        &[
            "webhook",
            "create",
            "--project",
            "p",
            "--name",
            "Cron Job Metrics",
        ],
        &url,
        dir.path(),
        ca,
    );
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!("Webhook URL: {url}/api/webhooks/custom")),
        "{out}"
    );
    let key = out
        .lines()
        .find_map(|l| l.strip_prefix("API Key: "))
        .unwrap()
        .trim()
        .to_owned();
    // Without trusting it, the CLI refuses the connection (and sends no token).
    let (ok, out) = cli(&["project", "list"], &url, dir.path(), None);
    assert!(!ok && out.to_lowercase().contains("certificate"), "{out}");

    // The spec's webhook call over TLS, then the read-back.
    let webhook = format!("{url}/api/webhooks/custom");
    let body = batch("p", vec![metric("daily_signups", 42.0, 1234567890000)]);
    let (status, reply) = stathook::client::call(Method::POST, &webhook, &key, Some(&body), ca)
        .await
        .unwrap();
    assert_eq!(
        (status, reply.clone()),
        (
            200,
            serde_json::json!({"success": true, "metricsStored": 1})
        ),
        "{reply}"
    );
    let points = format!("{url}/api/v1/projects/p/metrics/daily_signups/points");
    let (status, reply) =
        stathook::client::call(Method::GET, &points, &child.admin_token, None, ca)
            .await
            .unwrap();
    assert_eq!(status, 200);
    assert_eq!(points_in(&reply), vec![(1234567890000, 42.0)]);

    // Plain HTTP to the TLS port gets no HTTP answer: keys never travel in clear.
    let mut conn = tokio::net::TcpStream::connect(url.trim_start_matches("https://"))
        .await
        .unwrap();
    conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        conn.read_to_end(&mut buf),
    )
    .await;
    assert!(
        !buf.starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&buf)
    );
}

#[test]
fn a_bad_certificate_or_key_stops_serve_with_a_message_naming_the_file() {
    let pem = self_signed();
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate").unwrap();
    for (cert, key, named) in [
        (&junk, &pem.key, &junk),
        (&pem.cert, &junk, &junk),
        (&pem.cert, &pem.cert, &pem.cert),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_stathook"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path().join("data"))
            .arg("--tls-cert")
            .arg(cert)
            .arg("--tls-key")
            .arg(key)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{err}");
        assert!(err.contains(named.to_str().unwrap()), "{err}");
    }
    // One without the other is a usage error.
    let out = Command::new(env!("CARGO_BIN_EXE_stathook"))
        .args(["serve", "--tls-cert"])
        .arg(&pem.cert)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
