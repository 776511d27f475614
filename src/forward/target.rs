//! A forward target as the operator gives it: `--forward URL` (userinfo becomes basic auth),
//! `--forward-header "Name: value"` and `--forward-bearer-token-file`. Its id, the key of its
//! cursor, is the URL without credentials, so rotating a password keeps the cursor. Pure,
//! except reading the token file. Nothing here is logged: headers and URLs are credentials.

use base64::Engine;

#[derive(Clone, PartialEq)]
pub struct Target {
    /// The URL without userinfo; also the target's id.
    pub url: String,
    /// Headers sent with every request: auth and tenant headers.
    pub headers: Vec<(String, String)>,
    /// The host, for the outbound guard's allow list (the operator chose it).
    pub host: String,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Header values hold credentials.
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        write!(f, "Target {{ url: {:?}, headers: {names:?} }}", self.url)
    }
}

impl Target {
    pub fn id(&self) -> &str {
        &self.url
    }
}

/// Builds the targets from the flags: every header and the bearer token apply to every
/// target (run one stathook flag set per tenant otherwise: `--forward` repeats, so a header
/// per target would need an index; the usual case is one target).
pub fn parse_targets(
    urls: &[String],
    headers: &[String],
    bearer_token_file: Option<&std::path::Path>,
) -> Result<Vec<Target>, String> {
    let mut common = Vec::new();
    for h in headers {
        let (name, value) = h
            .split_once(':')
            .ok_or_else(|| format!("--forward-header {:?}: expected \"Name: value\"", mask(h)))?;
        let name = name.trim();
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
        {
            return Err(format!(
                "--forward-header: {name:?} is not a header name (letters, digits, - and _)"
            ));
        }
        let value = value.trim();
        if value.bytes().any(|b| b.is_ascii_control()) {
            return Err(format!(
                "--forward-header {name}: the value has a control character"
            ));
        }
        common.push((name.to_owned(), value.to_owned()));
    }
    if let Some(path) = bearer_token_file {
        let token = std::fs::read_to_string(path).map_err(|e| {
            format!(
                "--forward-bearer-token-file {}: cannot read it: {e}",
                path.display()
            )
        })?;
        let token = token.trim();
        if token.is_empty() || token.bytes().any(|b| b.is_ascii_control()) {
            return Err(format!(
                "--forward-bearer-token-file {}: expected one line with the token",
                path.display()
            ));
        }
        common.push(("Authorization".into(), format!("Bearer {token}")));
    }
    let mut out: Vec<Target> = Vec::new();
    for raw in urls {
        let t = parse_url(raw, &common)?;
        if out.iter().any(|o| o.url == t.url) {
            return Err(format!("--forward {}: given twice", t.url));
        }
        out.push(t);
    }
    Ok(out)
}

fn parse_url(raw: &str, common: &[(String, String)]) -> Result<Target, String> {
    let url = url::Url::parse(raw.trim())
        .map_err(|e| format!("--forward {:?}: not a URL ({e})", mask(raw)))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "--forward {}: the scheme must be http or https",
            url.host_str().unwrap_or("")
        ));
    }
    let host = url
        .host_str()
        .ok_or_else(|| "--forward: the URL has no host".to_owned())?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let mut headers = common.to_vec();
    if !url.username().is_empty() || url.password().is_some() {
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        let user = decode(url.username());
        let pass = decode(url.password().unwrap_or(""));
        if headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("authorization"))
        {
            return Err(format!(
                "--forward {host}: basic auth in the URL and an Authorization header or bearer token; give one"
            ));
        }
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        headers.push(("Authorization".into(), format!("Basic {basic}")));
    }
    let mut bare = url.clone();
    let _ = bare.set_username("");
    let _ = bare.set_password(None);
    Ok(Target {
        url: bare.to_string(),
        headers,
        host,
    })
}

/// A flag value as it may be shown in an error: anything after an `@` or a `:` could be a
/// password.
fn mask(s: &str) -> String {
    match s.find(['@', ':']) {
        Some(i) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_becomes_basic_auth_and_leaves_the_id() {
        let t = parse_targets(
            &["http://u%40x:p%3Aw@vm.local:8428/api/v1/write".into()],
            &[],
            None,
        )
        .unwrap();
        assert_eq!(t[0].url, "http://vm.local:8428/api/v1/write");
        assert_eq!(t[0].host, "vm.local");
        let auth = &t[0].headers[0];
        assert_eq!(auth.0, "Authorization");
        let basic = base64::engine::general_purpose::STANDARD
            .decode(auth.1.strip_prefix("Basic ").unwrap())
            .unwrap();
        assert_eq!(basic, b"u@x:p:w");
        assert!(
            !format!("{:?}", t[0]).contains("Basic"),
            "Debug hides values"
        );
    }

    #[test]
    fn headers_and_the_token_file_apply_to_every_target() {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "s3cret\n").unwrap();
        let t = parse_targets(
            &["http://a:1/w".into(), "https://[::1]:2/w".into()],
            &["X-Scope-OrgID: tenant-1".into()],
            Some(&token),
        )
        .unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[1].host, "::1");
        for target in &t {
            assert!(target
                .headers
                .contains(&("X-Scope-OrgID".into(), "tenant-1".into())));
            assert!(target
                .headers
                .contains(&("Authorization".into(), "Bearer s3cret".into())));
        }
    }

    #[test]
    fn bad_flags_are_refused_without_echoing_secrets() {
        let e = parse_targets(&["ftp://x/".into()], &[], None).unwrap_err();
        assert!(e.contains("http or https"), "{e}");
        let e = parse_targets(&["not a url:secret".into()], &[], None).unwrap_err();
        assert!(!e.contains("secret"), "{e}");
        let e = parse_targets(&["http://a/w".into()], &["NoColon".into()], None).unwrap_err();
        assert!(e.contains("Name: value"), "{e}");
        let e = parse_targets(&["http://a/w".into(), "http://a/w".into()], &[], None).unwrap_err();
        assert!(e.contains("twice"), "{e}");
        let e = parse_targets(
            &["http://u:p@a/w".into()],
            &["Authorization: Bearer x".into()],
            None,
        )
        .unwrap_err();
        assert!(e.contains("give one"), "{e}");
    }
}
