//! `openapi:` entries: each document read (file) or fetched (URL), translated into tools
//! (`config::openapi`), and its problems reported at the entry's `file:` or `url:` line with
//! the document's name and the JSON pointer inside it. Hand-written `tools` win over
//! imported tools of the same name.

use super::*;
use crate::config::openapi::translate::{Options, Selection, translate};
use crate::config::openapi::{Problem, document};

/// How long fetching an `openapi[].url` may take unless `timeout` says otherwise.
const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(10);

impl Builder<'_> {
    pub(super) fn build_openapi(&mut self, raw: &[RawOpenApi], upstream: &Upstream) -> (Vec<Tool>, Vec<OpenApiSource>) {
        let mut tools = Vec::new();
        let mut sources = Vec::new();
        for (index, entry) in raw.iter().enumerate() {
            let key = format!("openapi[{index}]");
            let (located, source, text) = match (&entry.file, &entry.url) {
                (Some(file), None) => {
                    let path = self.path(&file.value);
                    let text = document::read_file(&path);
                    (file, OpenApiSource::File(path), text)
                }
                (None, Some(url)) => {
                    let Some(parsed) = self.http_url(&format!("{key}.url"), &url.value, source_of(url)) else {
                        continue;
                    };
                    let timeout = self.bounded_duration(
                        &format!("{key}.timeout"),
                        &entry.timeout,
                        DEFAULT_FETCH_TIMEOUT,
                        (Duration::from_millis(100), Duration::from_secs(120)),
                    );
                    let text = document::fetch(&parsed, timeout);
                    (url, OpenApiSource::Url(parsed), text)
                }
                (Some(file), Some(_)) => {
                    self.at(file, &key, "set either file or url, not both");
                    continue;
                }
                (None, None) => {
                    self.problem(Source::Document, &key, "needs file (a path) or url (http or https)");
                    continue;
                }
            };
            sources.push(source);
            let label = located.value.clone();
            let key = if entry.file.is_some() { format!("{key}.file") } else { format!("{key}.url") };
            let origin = self.openapi_origin(entry, &key, upstream);
            let document = match text.and_then(|text| document::parse(&text)) {
                Ok(document) => document,
                Err(message) => {
                    self.at(located, &key, format!("{label} {message}"));
                    continue;
                }
            };
            let options = Options {
                label: label.clone(),
                name_prefix: entry.name_prefix.clone(),
                include: entry.include.as_ref().map(selection),
                exclude: entry.exclude.as_ref().map(selection),
                origin,
            };
            match translate(&document, &options) {
                Ok(translation) => {
                    for warning in translation.warnings {
                        self.warn_at(located, &key, located_message(&label, &warning));
                    }
                    for tool in &translation.tools {
                        for (what, schema) in
                            [("inputSchema", Some(&tool.input_schema)), ("outputSchema", tool.output_schema.as_ref())]
                        {
                            if let Some(schema) = schema
                                && let Err(error) = jsonschema::draft202012::new(schema)
                            {
                                self.at(
                                    located,
                                    &key,
                                    format!(
                                        "{label}: tool {}: its {what} is not valid JSON Schema: {error}",
                                        tool.name
                                    ),
                                );
                            }
                        }
                    }
                    tools.extend(translation.tools);
                }
                Err(problems) => {
                    for problem in problems {
                        self.at(located, &key, located_message(&label, &problem));
                    }
                }
            }
        }
        (tools, sources)
    }

    /// `openapi[].base_url`'s origin (its path is the document's to give).
    fn openapi_origin(&mut self, entry: &RawOpenApi, key: &str, upstream: &Upstream) -> Option<Url> {
        let located = entry.base_url.as_ref()?;
        let key = key.rsplit_once('.').map_or(key, |(entry_key, _)| entry_key);
        let url = self.http_url(&format!("{key}.base_url"), &located.value, source_of(located))?;
        if upstream.auth == UpstreamAuth::Session {
            self.at(
                located,
                &format!("{key}.base_url"),
                "cannot be combined with upstream.auth.mode session, where each session's apiUrl decides the API",
            );
            return None;
        }
        if url.path() != "/" {
            self.warn_at(
                located,
                &format!("{key}.base_url"),
                format!("only the origin of {:?} is used; the path comes from the document's servers", located.value),
            );
        }
        Url::parse(&url.origin().ascii_serialization()).ok()
    }

    pub(super) fn warn_at<T>(&mut self, located: &Located<T>, key: &str, message: String) {
        self.warnings.push(ConfigError {
            file: self.file.clone(),
            source: source_of(located),
            key: key.to_string(),
            message,
        });
    }

    /// The hand-written tools, then every imported one whose name no hand-written tool has.
    pub(super) fn with_imported_tools(&mut self, mut tools: Vec<Tool>, imported: Vec<Tool>) -> Vec<Tool> {
        let mut names: HashSet<String> = tools.iter().map(|tool| tool.name.clone()).collect();
        for tool in imported {
            if names.contains(&tool.name) {
                self.warnings.push(ConfigError {
                    file: self.file.clone(),
                    source: Source::Document,
                    key: "tools".to_string(),
                    message: format!(
                        "the hand-written tool {:?} replaces the imported one ({})",
                        tool.name, tool.source
                    ),
                });
                continue;
            }
            names.insert(tool.name.clone());
            tools.push(tool);
        }
        tools
    }
}

fn selection(raw: &RawSelection) -> Selection {
    Selection { tags: raw.tags.clone(), operations: raw.operations.clone() }
}

/// `petstore.json at #/paths/~1pet/get: …`.
fn located_message(label: &str, problem: &Problem) -> String {
    format!("{label} {problem}")
}
