//! Which model to ask and how: `TABFLOW_LLM_*` environment variables over the `[llm]` table
//! of tabflow's config file. The API key lives in [`ApiKey`], whose `Debug` and `Display`
//! print `[redacted]`; it is only ever put into a request header.

use std::time::Duration;

use serde::Deserialize;

use crate::Error;

/// The wire format spoken by the model server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// `POST /v1/chat/completions` (OpenAI, llama.cpp's server, vLLM, Ollama's `/v1`).
    OpenAi,
    /// `POST /v1/messages` with `x-api-key` and `anthropic-version` headers.
    Anthropic,
}

impl Provider {
    pub fn parse(s: &str) -> Option<Provider> {
        match s.trim().to_ascii_lowercase().as_str() {
            "openai" | "openai-compatible" | "llama.cpp" | "llamacpp" | "vllm" | "ollama" => Some(Provider::OpenAi),
            "anthropic" | "claude" => Some(Provider::Anthropic),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::OpenAi => "openai",
            Provider::Anthropic => "anthropic",
        }
    }
}

/// The API key: `secrecy`'s [`SecretString`] (the one secret type of the workspace; the
/// client's `Secret` wraps the same), read only through `expose_secret` where the request
/// header is set. Its `Debug` prints `[REDACTED]`.
pub type ApiKey = secrecy::SecretString;

/// Where and how to ask the model.
#[derive(Debug, Clone)]
pub struct Config {
    pub provider: Provider,
    /// Base URL (`http://127.0.0.1:8080`, `https://api.openai.com`, `https://api.anthropic.com`);
    /// a URL already ending in `/v1` or in the endpoint path is used as given.
    pub url: String,
    pub model: String,
    pub api_key: Option<ApiKey>,
    /// Per-request timeout.
    pub timeout: Duration,
}

/// The `[llm]` table of the config file. The key itself does not belong in a file: name the
/// environment variable holding it (`api_key_env`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLlm {
    provider: Option<String>,
    url: Option<String>,
    model: Option<String>,
    api_key_env: Option<String>,
    timeout_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
struct File {
    #[serde(default)]
    llm: Option<FileLlm>,
}

impl Config {
    /// Reads `TABFLOW_LLM_URL`, `TABFLOW_LLM_MODEL`, `TABFLOW_LLM_API_KEY`,
    /// `TABFLOW_LLM_PROVIDER` (`openai` | `anthropic`) and `TABFLOW_LLM_TIMEOUT_SECS` through
    /// `env`, over the `[llm]` table of `config_toml` (the config file's text, if any).
    pub fn resolve(env: impl Fn(&str) -> Option<String>, config_toml: Option<&str>) -> Result<Config, Error> {
        let env = |k: &str| env(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let file = match config_toml {
            Some(text) => toml::from_str::<File>(text)
                .map_err(|e| {
                    Error::Config(format!(
                        "the [llm] table of the config file is not valid: {}",
                        tabflow_site::text::toml_error(text, e.message(), e.span())
                    ))
                })?
                .llm
                .unwrap_or_default(),
            None => FileLlm::default(),
        };
        let url = env("TABFLOW_LLM_URL").or(file.url).ok_or_else(|| {
            Error::Config("no LLM server is configured: set TABFLOW_LLM_URL (e.g. http://127.0.0.1:8080 for a local llama.cpp server) or url in the [llm] table of the config file".into())
        })?;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(Error::Config(format!(
                "TABFLOW_LLM_URL '{}' is not an http(s) URL",
                tabflow_site::text::redact_url(&url)
            )));
        }
        let provider = match env("TABFLOW_LLM_PROVIDER").or(file.provider) {
            Some(p) => Provider::parse(&p).ok_or_else(|| {
                Error::Config(format!(
                    "unknown LLM provider '{p}': use openai (also llama.cpp, vLLM, Ollama) or anthropic"
                ))
            })?,
            None if url.contains("anthropic.com") => Provider::Anthropic,
            None => Provider::OpenAi,
        };
        let model = match env("TABFLOW_LLM_MODEL").or(file.model) {
            Some(m) => m,
            // A local llama.cpp server serves the one model it loaded, whatever the name.
            None if provider == Provider::OpenAi => "local".to_string(),
            None => {
                return Err(Error::Config(
                    "set TABFLOW_LLM_MODEL (e.g. claude-haiku-4-5) for the Anthropic API".into(),
                ));
            }
        };
        let api_key = match env("TABFLOW_LLM_API_KEY") {
            Some(k) => Some(ApiKey::from(k)),
            None => file.api_key_env.as_deref().and_then(env).map(ApiKey::from),
        };
        let timeout_secs = match env("TABFLOW_LLM_TIMEOUT_SECS") {
            Some(t) => t.parse::<u64>().ok().filter(|t| *t > 0).ok_or_else(|| {
                Error::Config(format!("TABFLOW_LLM_TIMEOUT_SECS '{t}' is not a positive number of seconds"))
            })?,
            None => file.timeout_secs.unwrap_or(60),
        };
        Ok(Config {
            provider,
            url: url.trim_end_matches('/').to_string(),
            model,
            api_key,
            timeout: Duration::from_secs(timeout_secs),
        })
    }

    /// The endpoint the provider's requests go to.
    pub fn endpoint(&self) -> String {
        let path = match self.provider {
            Provider::OpenAi => "/chat/completions",
            Provider::Anthropic => "/messages",
        };
        if self.url.ends_with(path) {
            self.url.clone()
        } else if self.url.ends_with("/v1") {
            format!("{}{path}", self.url)
        } else {
            format!("{}/v1{path}", self.url)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
    }

    #[test]
    fn environment_over_file_and_a_redacted_key() {
        let c = Config::resolve(
            env(&[("TABFLOW_LLM_URL", "http://127.0.0.1:8080/"), ("TABFLOW_LLM_API_KEY", "sk-very-secret")]),
            Some("[llm]\nurl = \"http://other\"\nmodel = \"smollm2\"\n"),
        )
        .unwrap();
        assert_eq!(c.endpoint(), "http://127.0.0.1:8080/v1/chat/completions");
        assert_eq!(c.model, "smollm2");
        assert!(!format!("{c:?}").contains("sk-very-secret"));
        assert!(!format!("{c:?}").contains("k1"), "{c:?}");

        let c = Config::resolve(
            env(&[("MY_KEY", "k1")]),
            Some("[llm]\nurl = \"https://api.anthropic.com\"\nmodel = \"claude\"\napi_key_env = \"MY_KEY\"\n"),
        )
        .unwrap();
        assert_eq!((c.provider, c.endpoint().as_str()), (Provider::Anthropic, "https://api.anthropic.com/v1/messages"));
        assert_eq!(c.api_key.unwrap().expose_secret(), "k1");
    }

    #[test]
    fn missing_or_wrong_settings_are_named() {
        let e = Config::resolve(env(&[]), None).unwrap_err().to_string();
        assert!(e.contains("TABFLOW_LLM_URL"), "{e}");
        let e = Config::resolve(env(&[("TABFLOW_LLM_URL", "http://x"), ("TABFLOW_LLM_PROVIDER", "gpt")]), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown LLM provider 'gpt'"), "{e}");
        let e = Config::resolve(env(&[("TABFLOW_LLM_URL", "localhost:8080")]), None).unwrap_err().to_string();
        assert!(e.contains("not an http(s) URL"), "{e}");
    }
}
