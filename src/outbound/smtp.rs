//! Email through SMTP (`lettre`), behind the same address guard as every outbound request:
//! the server's host is resolved here and its addresses checked, and lettre connects to the
//! checked address while verifying the certificate against the host name. `starttls`
//! requires the upgrade (a server that does not offer STARTTLS is refused, never used in
//! plain); `tls` is TLS from the first byte; `none` is plain and takes no password.

use super::{Outbound, SendError, REFUSED};
use crate::alert::channel::Email;
use lettre::message::{header::ContentType, Mailbox};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;

/// How an SMTP send failed: `retry` for a transient answer (4xx), a timeout or a connection
/// failure; not for a permanent refusal (5xx), a bad address or the guard.
#[derive(Debug)]
pub struct MailError {
    pub retry: bool,
    pub text: String,
}

impl Outbound {
    /// Sends one plain-text email; `message_id` (the notification's id) becomes its
    /// Message-ID, so a retried notification is recognisably the same email.
    pub async fn send_mail(
        &self,
        e: &Email,
        subject: &str,
        body: String,
        message_id: &str,
    ) -> Result<Option<u16>, MailError> {
        let final_error = |text: String| MailError { retry: false, text };
        let addr = self
            .checked_address(&e.host)
            .await
            .map_err(|err| MailError {
                retry: matches!(err, SendError::Network(_)),
                text: err.to_string(),
            })?;
        let mut msg = Message::builder()
            .from(
                e.from
                    .parse::<Mailbox>()
                    .map_err(|x| final_error(format!("from: {x}")))?,
            )
            .subject(subject)
            .message_id(Some(format!("<{message_id}@stathook>")))
            .header(ContentType::TEXT_PLAIN);
        for to in &e.to {
            msg = msg.to(to
                .parse::<Mailbox>()
                .map_err(|x| final_error(format!("to: {x}")))?);
        }
        let msg = msg
            .body(body)
            .map_err(|x| final_error(format!("the message: {x}")))?;
        let tls = |name: &str| {
            TlsParameters::new(name.to_owned()).map_err(|x| final_error(format!("TLS setup: {x}")))
        };
        let security = match e.security.as_str() {
            "tls" => Tls::Wrapper(tls(&e.host)?),
            "none" => Tls::None,
            _ => Tls::Required(tls(&e.host)?),
        };
        let mut transport =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(addr.to_string())
                .port(e.port)
                .tls(security)
                .timeout(Some(Duration::from_secs(10)));
        if let (Some(u), Some(p)) = (&e.username, &e.password) {
            transport = transport.credentials(Credentials::new(u.clone(), p.clone()));
        }
        match transport.build().send(msg).await {
            Ok(r) => Ok(r.code().to_string().parse().ok()),
            Err(x) => {
                let mut text = x.to_string();
                if e.security == "starttls" && text.contains("STARTTLS") {
                    text.push_str(" (the server does not offer STARTTLS; stathook does not fall back to plain text)");
                }
                Err(MailError {
                    retry: x.is_transient()
                        || x.is_timeout()
                        || !(x.is_permanent() || x.is_client()),
                    text,
                })
            }
        }
    }

    /// The first address of `host` the guard allows.
    async fn checked_address(&self, host: &str) -> Result<std::net::IpAddr, SendError> {
        if let Ok(ip) = host.trim_matches(['[', ']']).parse::<std::net::IpAddr>() {
            self.allow.check(host, ip).map_err(SendError::Refused)?;
            return Ok(ip);
        }
        let addrs = super::allowed_addresses(&self.allow, host)
            .await
            .map_err(|e| {
                let text = e.to_string();
                match text.strip_prefix(REFUSED) {
                    Some(why) => SendError::Refused(why.to_owned()),
                    None => SendError::Network(format!("resolving {host}: {text}")),
                }
            })?;
        Ok(addrs[0].ip())
    }
}
