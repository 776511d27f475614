//! The embedded web app: its files (`static/`, compiled into the binary), served under one
//! content hash of the whole set (`/assets/{hash}/{file}`, cached forever and safe to
//! replace: a new build has a new hash), and the one HTML shell every page URL answers with.
//! The pages are plain ES modules over the JSON API (`static/app.js` routes on the URL),
//! with nothing inline, so the Content-Security-Policy can forbid inline script and style.
//! No I/O and no HTTP here: `http/pages.rs` serves what this holds.

pub mod dashboard;

use std::io::Write;
use std::sync::OnceLock;

/// One embedded file.
pub struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
    /// gzip of `bytes`, made once at first use.
    pub gzip: Vec<u8>,
}

/// Every file of the app and the hash that names this set.
pub struct Assets {
    pub hash: String,
    pub files: Vec<Asset>,
    /// The HTML shell, its asset paths filled in.
    pub shell: Vec<u8>,
}

/// `(name, bytes)` of each listed file under `static/`, compiled in.
macro_rules! files {
    ($($name:literal),* $(,)?) => {
        [$(($name, include_bytes!(concat!("static/", $name)) as &'static [u8])),*]
    };
}

fn embedded() -> [(&'static str, &'static [u8]); 20] {
    files![
        "app.js",
        "api.js",
        "format.js",
        "chart.js",
        "live.js",
        "range.js",
        "dom.js",
        "widgets.js",
        "grid.js",
        "pages/projects.js",
        "pages/integrations.js",
        "pages/metrics.js",
        "pages/metric.js",
        "pages/dashboards.js",
        "pages/dashboard.js",
        "pages/share.js",
        "pages/alerts.js",
        "app.css",
        "vendor/uplot/uPlot.iife.min.js",
        "vendor/uplot/uPlot.min.css",
    ]
}

/// The content type of an embedded file, from its extension (the set holds only these).
fn content_type(name: &str) -> &'static str {
    if name.ends_with(".css") {
        "text/css; charset=utf-8"
    } else {
        "text/javascript; charset=utf-8"
    }
}

const SHELL: &str = include_str!("static/index.html");

/// The policy of every page: only this server's own scripts, styles, connections and
/// images; no inline script or style; not framed (the embed route relaxes only that).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

pub fn assets() -> &'static Assets {
    static ASSETS: OnceLock<Assets> = OnceLock::new();
    ASSETS.get_or_init(|| {
        let mut hasher = blake3::Hasher::new();
        let files: Vec<Asset> = embedded()
            .into_iter()
            .map(|(name, bytes)| {
                hasher.update(name.as_bytes());
                hasher.update(&(bytes.len() as u64).to_le_bytes());
                hasher.update(bytes);
                let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
                gz.write_all(bytes)
                    .expect("BUG: writing to a Vec cannot fail");
                let gzip = gz.finish().expect("BUG: writing to a Vec cannot fail");
                Asset {
                    name,
                    content_type: content_type(name),
                    bytes,
                    gzip,
                }
            })
            .collect();
        let hash = hasher.finalize().to_hex()[..16].to_owned();
        let shell = SHELL
            .replace("{{assets}}", &format!("/assets/{hash}"))
            .into_bytes();
        Assets { hash, files, shell }
    })
}

impl Assets {
    /// The file `name` of the set `hash` (a stale hash finds nothing: the page is reloaded).
    pub fn get(&self, hash: &str, name: &str) -> Option<&Asset> {
        if hash != self.hash {
            return None;
        }
        self.files.iter().find(|a| a.name == name)
    }

    /// Bytes of every file, gzipped, summed: what a first visit downloads at most.
    pub fn gzip_bytes(&self) -> usize {
        self.files.iter().map(|a| a.gzip.len()).sum::<usize>() + self.shell.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shell_names_assets_that_exist_under_the_sets_hash() {
        let a = assets();
        let shell = std::str::from_utf8(&a.shell).unwrap();
        let prefix = format!("/assets/{}/", a.hash);
        let mut named = 0;
        for part in shell.split('"').filter(|p| p.starts_with(&prefix)) {
            let name = &part[prefix.len()..];
            assert!(a.get(&a.hash, name).is_some(), "{name} is not embedded");
            named += 1;
        }
        assert!(named >= 3, "{shell}");
        assert!(!shell.contains("<script>") && !shell.contains("style="));
        assert!(a.get("0000", "app.js").is_none());
    }

    #[test]
    fn no_page_code_writes_markup_or_inline_style() {
        // The CSP forbids inline script and style, and text must never become markup: the
        // pages build elements through `dom.js` only.
        for f in assets()
            .files
            .iter()
            .filter(|f| !f.name.starts_with("vendor"))
        {
            let text = std::str::from_utf8(f.bytes).unwrap();
            for banned in [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "document.write",
                "eval(",
                "setAttribute(\"style\"",
            ] {
                assert!(!text.contains(banned), "{} uses {banned}", f.name);
            }
        }
    }

    #[test]
    fn every_module_import_is_embedded() {
        let a = assets();
        for f in a
            .files
            .iter()
            .filter(|f| f.name.ends_with(".js") && !f.name.starts_with("vendor"))
        {
            let text = std::str::from_utf8(f.bytes).unwrap();
            let dir = f.name.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
            for line in text.lines().filter(|l| l.starts_with("import ")) {
                let spec = line.split(['"', '\'']).nth(1).unwrap();
                let mut parts: Vec<&str> = dir.split('/').filter(|p| !p.is_empty()).collect();
                for seg in spec.split('/') {
                    match seg {
                        "." => {}
                        ".." => {
                            parts.pop();
                        }
                        s => parts.push(s),
                    }
                }
                let target = parts.join("/");
                assert!(
                    a.get(&a.hash, &target).is_some(),
                    "{}: {spec} → {target}",
                    f.name
                );
            }
        }
    }
}
