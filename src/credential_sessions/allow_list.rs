//! `sessions.allowed_api_urls` as the edge compares it: each entry normalised once, and a
//! presented `apiUrl` answered with the entry it matches, never with the caller's spelling.
//!
//! Everything downstream (the stored session, its upstream client, pool and breaker, the
//! `upstream` metric label, `/readyz`) is keyed by that entry, so their number is bounded by
//! the allow-list however many spellings callers send (security review M2).
//!
//! Normalising is the `url` crate's parse (scheme and host lower-cased, default port dropped,
//! `.` and `..` segments resolved) plus trailing slashes removed from the path, because the
//! edge joins tool paths to a base URL without them. Anything else that differs (a query, a
//! fragment, user info, `//` inside the path, percent-encoding) is not the same API and is
//! refused: being strict only costs a caller a 401.

use url::Url;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowList {
    entries: Vec<Url>,
}

impl AllowList {
    /// The normalised, de-duplicated entries of `urls` (in their order).
    pub fn new(urls: &[Url]) -> Self {
        let mut entries: Vec<Url> = Vec::with_capacity(urls.len());
        for url in urls.iter().map(normalise) {
            if !entries.contains(&url) {
                entries.push(url);
            }
        }
        Self { entries }
    }

    pub fn entries(&self) -> &[Url] {
        &self.entries
    }

    /// The entry `api_url` is a spelling of, if it is an http(s) URL with a host.
    pub fn find(&self, api_url: &str) -> Option<&Url> {
        let url = Url::parse(api_url).ok()?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
            return None;
        }
        let url = normalise(&url);
        self.entries.iter().find(|entry| **entry == url)
    }
}

/// `url` without trailing slashes on its path (`/` stays for the root).
fn normalise(url: &Url) -> Url {
    let mut url = url.clone();
    let path = url.path().trim_end_matches('/').to_string();
    url.set_path(&path);
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> AllowList {
        AllowList::new(&entries.iter().map(|entry| Url::parse(entry).expect("url")).collect::<Vec<_>>())
    }

    #[test]
    fn spellings_of_an_entry_find_the_entry() {
        let list = list(&["http://api.example:5000/api/", "https://other.example"]);
        let entry = "http://api.example:5000/api";
        for spelling in [
            "http://api.example:5000/api",
            "http://api.example:5000/api/",
            "http://api.example:5000/api//",
            "http://api.example:5000/api/////",
            "HTTP://API.Example:5000/api",
            "http://api.example:5000/api/.",
            "http://api.example:5000/x/../api",
            "http://api.example:5000/./api/",
            " http://api.example:5000/api ",
        ] {
            assert_eq!(list.find(spelling).map(Url::as_str), Some(entry), "{spelling}");
        }
        for spelling in
            ["https://other.example", "https://other.example/", "https://other.example:443//", "HTTPS://OTHER.EXAMPLE"]
        {
            assert_eq!(list.find(spelling).map(Url::as_str), Some("https://other.example/"), "{spelling}");
        }
    }

    #[test]
    fn other_urls_are_not_entries() {
        let list = list(&["http://api.example:5000/api"]);
        for url in [
            "http://api.example:5000/api?x=1",
            "http://api.example:5000/api#x",
            "http://user@api.example:5000/api",
            "http://api.example:5000/ap",
            "http://api.example:5000/api/v2",
            "http://api.example:5000//api",
            "http://api.example:5000/%61pi",
            "http://api.example:5001/api",
            "https://api.example:5000/api",
            "http://api.example.evil:5000/api",
            "ftp://api.example:5000/api",
            "not a url",
        ] {
            assert!(list.find(url).is_none(), "{url}");
        }
    }

    #[test]
    fn entries_are_normalised_and_deduplicated() {
        let list = list(&["http://h/api/", "http://h/api", "HTTP://H:80/api//", "http://h/other"]);
        let entries: Vec<&str> = list.entries().iter().map(Url::as_str).collect();
        assert_eq!(entries, ["http://h/api", "http://h/other"]);
    }
}
