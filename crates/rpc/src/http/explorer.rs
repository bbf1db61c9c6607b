//! The web explorer: one HTML page, embedded in the binary, served at `GET /`.
//!
//! The page is assembled once, on its first request, from three files of
//! `src/explorer/`: `index.html` (markup, with an empty `<style></style>` and
//! `<script></script>` where the other two go), `explorer.css` and `explorer.js`. It
//! fetches nothing but JSON-RPC from the port that served it (POST `/` and the WebSocket
//! head subscription on `/`), builds its DOM with `textContent` only, and is sent with a
//! Content-Security-Policy that lets the browser run exactly that one script and that one
//! style block (named by their SHA-256), connect to its own origin only, and load nothing
//! else; so text from the chain cannot become markup or code. The ETag is a hash of the
//! page: a browser revalidates (`Cache-Control: no-cache`) and gets a 304 until the node
//! runs another build.

use std::sync::LazyLock;

use sha2::{Digest, Sha256};

const TEMPLATE: &str = include_str!("../explorer/index.html");
const STYLE: &str = include_str!("../explorer/explorer.css");
const SCRIPT: &str = include_str!("../explorer/explorer.js");
/// Where the template takes the style sheet.
const STYLE_SLOT: &str = "<style></style>";
/// Where the template takes the script.
const SCRIPT_SLOT: &str = "<script></script>";

/// The assembled page and the header values that go with it.
pub(crate) struct Page {
    /// The whole document.
    pub(crate) html: String,
    /// The `Content-Security-Policy` header value.
    pub(crate) csp: String,
    /// The `ETag` header value (quoted).
    pub(crate) etag: String,
}

/// The page, built on first use.
pub(crate) static PAGE: LazyLock<Page> = LazyLock::new(build);

fn build() -> Page {
    let html = TEMPLATE
        .replacen(STYLE_SLOT, &format!("<style>{STYLE}</style>"), 1)
        .replacen(SCRIPT_SLOT, &format!("<script>{SCRIPT}</script>"), 1);
    let csp = csp(STYLE, SCRIPT);
    let digest = Sha256::digest(html.as_bytes());
    let etag = format!("\"{}\"", digest[..12].iter().map(|b| format!("{b:02x}")).collect::<String>());
    Page { html, csp, etag }
}

/// The policy: nothing by default; the one inline script and style by hash; JSON-RPC and
/// the WebSocket to the page's own origin (CSP level 3 `'self'` covers `ws:`/`wss:` of the
/// same host and port); the empty `data:` favicon; no `<base>`, no forms, no framing.
fn csp(style: &str, script: &str) -> String {
    let hash = |text: &str| format!("'sha256-{}'", base64(&Sha256::digest(text.as_bytes())));
    format!(
        "default-src 'none'; script-src {}; style-src {}; connect-src 'self'; img-src data:; \
         base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        hash(script),
        hash(style)
    )
}

/// Standard base64 (RFC 4648 §4) with padding, as CSP hash sources are written.
fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_takes_the_style_and_script_once() {
        assert_eq!(TEMPLATE.matches(STYLE_SLOT).count(), 1);
        assert_eq!(TEMPLATE.matches(SCRIPT_SLOT).count(), 1);
        let page = &PAGE.html;
        assert!(page.contains(STYLE) && page.contains(SCRIPT));
        // One script and one style element, so the policy's two hashes cover all of them.
        assert_eq!(page.matches("<script").count(), 1);
        assert_eq!(page.matches("<style").count(), 1);
    }

    #[test]
    fn the_script_and_style_cannot_end_their_element_early() {
        for (name, text, end) in [("explorer.js", SCRIPT, "</script"), ("explorer.css", STYLE, "</style")] {
            assert!(!text.to_ascii_lowercase().contains(end), "{name} contains {end}");
            assert!(!text.contains("<!--"), "{name} contains <!--");
        }
    }

    #[test]
    fn the_page_loads_nothing_from_elsewhere() {
        // The SVG namespace is a name, not a place anything is fetched from.
        let page = PAGE.html.to_ascii_lowercase().replace("\"http://www.w3.org/2000/svg\"", "");
        for needle in ["http://", "https://", "//cdn", "src=", "@import", "url("] {
            assert!(!page.contains(needle), "the page contains {needle:?}");
        }
        // No markup is ever built from strings in the script.
        for needle in ["innerhtml", "outerhtml", "insertadjacenthtml", "document.write", "eval("] {
            assert!(!page.contains(needle), "the page contains {needle:?}");
        }
    }

    #[test]
    fn the_policy_names_the_inline_script_and_style_by_their_hash() {
        let csp = &PAGE.csp;
        let script_hash = base64(&Sha256::digest(SCRIPT.as_bytes()));
        let style_hash = base64(&Sha256::digest(STYLE.as_bytes()));
        assert!(csp.contains(&format!("script-src 'sha256-{script_hash}';")), "{csp}");
        assert!(csp.contains(&format!("style-src 'sha256-{style_hash}';")), "{csp}");
        assert!(csp.starts_with("default-src 'none';"), "{csp}");
        assert!(!csp.contains("unsafe"), "{csp}");
        assert!(PAGE.etag.starts_with('"') && PAGE.etag.ends_with('"') && PAGE.etag.len() == 26);
    }

    #[test]
    fn base64_of_rfc_4648_examples() {
        for (input, want) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), want);
        }
        assert_eq!(base64(&[0xfb, 0xff]), "+/8=");
    }
}
