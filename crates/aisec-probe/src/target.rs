//! Targets: how a conversation reaches a model and how its reply is read back.
//!
//! API keys are never stored here: a target holds the *name* of an
//! environment variable and reads it when a request is built, so keys do not
//! reach journals, transcripts or reports.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::ProbeError;

/// One turn of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The text.
    pub content: String,
}

impl Message {
    /// A message with `role` and `content`.
    pub fn new(role: &str, content: impl Into<String>) -> Self {
        Message {
            role: role.to_string(),
            content: content.into(),
        }
    }
}

/// The API style of a target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TargetKind {
    /// OpenAI-compatible `POST {base}/chat/completions`.
    OpenAiChat,
    /// OpenAI-compatible `POST {base}/completions`.
    OpenAiCompletion,
    /// Any JSON API: `template` is the request body with a `{{prompt}}` slot
    /// (JSON-escaped on substitution); `response_path` finds the reply.
    Rest {
        /// Request body template.
        template: String,
        /// Path of the reply inside the response JSON (`choices.0.message.content`, `$.data.reply`).
        response_path: String,
    },
}

/// A model endpoint to probe.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Target {
    /// API style.
    #[serde(flatten)]
    pub kind: TargetKind,
    /// Base URL for OpenAI targets (`http://127.0.0.1:8000/v1`), full URL for REST.
    pub url: String,
    /// Model name sent to OpenAI targets.
    pub model: String,
    /// Name of the environment variable that holds the API key (sent as a bearer token).
    pub api_key_env: Option<String>,
    /// Extra headers; values of the form `env:NAME` are read from the environment.
    pub headers: Vec<(String, String)>,
    /// System prompt sent with OpenAI chat targets (aisec plants a canary in it
    /// when asked to, so system-prompt extraction can be detected exactly).
    pub system: Option<String>,
    /// Sampling temperature for OpenAI targets.
    pub temperature: f64,
    /// Maximum tokens per reply for OpenAI targets.
    pub max_tokens: u32,
}

impl Target {
    /// An OpenAI-compatible chat target.
    pub fn openai_chat(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        Target {
            kind: TargetKind::OpenAiChat,
            url: base_url.into(),
            model: model.into(),
            api_key_env: None,
            headers: Vec::new(),
            system: None,
            temperature: 0.0,
            max_tokens: 256,
        }
    }

    /// A generic REST target.
    pub fn rest(
        url: impl Into<String>,
        template: impl Into<String>,
        response_path: impl Into<String>,
    ) -> Self {
        Target {
            kind: TargetKind::Rest {
                template: template.into(),
                response_path: response_path.into(),
            },
            ..Target::openai_chat(url, "")
        }
    }

    /// Checks the target description before a run: the template must be
    /// valid JSON with a `{{prompt}}` slot, the URL http(s).
    pub fn validate(&self) -> crate::error::Result<()> {
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            return Err(ProbeError::BadUrl(self.url.clone()));
        }
        if let TargetKind::Rest {
            template,
            response_path,
        } = &self.kind
        {
            if !template.contains("{{prompt}}") {
                return Err(ProbeError::TemplateWithoutSlot);
            }
            let probe = render_template(template, "x");
            serde_json::from_str::<Value>(&probe).map_err(ProbeError::TemplateNotJson)?;
            if parse_path(response_path).is_empty() {
                return Err(ProbeError::EmptyResponsePath);
            }
        }
        if let Some(env) = &self.api_key_env {
            if std::env::var_os(env).is_none() {
                return Err(ProbeError::MissingApiKey(env.clone()));
            }
        }
        Ok(())
    }

    /// The URL requests go to.
    pub fn endpoint(&self) -> String {
        let base = self.url.trim_end_matches('/');
        match self.kind {
            TargetKind::OpenAiChat => format!("{base}/chat/completions"),
            TargetKind::OpenAiCompletion => format!("{base}/completions"),
            TargetKind::Rest { .. } => self.url.clone(),
        }
    }

    /// The request body for a conversation. Chat targets get the messages
    /// (after the system prompt); the others get a flattened transcript.
    pub fn body(&self, conversation: &[Message]) -> String {
        match &self.kind {
            TargetKind::OpenAiChat => {
                let mut msgs = Vec::with_capacity(conversation.len() + 1);
                if let Some(s) = &self.system {
                    msgs.push(json!({"role": "system", "content": s}));
                }
                for m in conversation {
                    msgs.push(json!({"role": m.role, "content": m.content}));
                }
                json!({"model": self.model, "messages": msgs,
                       "temperature": self.temperature, "max_tokens": self.max_tokens})
                .to_string()
            }
            TargetKind::OpenAiCompletion => {
                let mut prompt = String::new();
                if let Some(s) = &self.system {
                    prompt.push_str(s);
                    prompt.push_str("\n\n");
                }
                prompt.push_str(&flatten(conversation));
                if conversation.len() > 1 {
                    prompt.push_str("\nAssistant:");
                }
                json!({"model": self.model, "prompt": prompt,
                       "temperature": self.temperature, "max_tokens": self.max_tokens})
                .to_string()
            }
            TargetKind::Rest { template, .. } => render_template(template, &flatten(conversation)),
        }
    }

    /// Extracts the reply text from a response body.
    pub fn extract(&self, body: &[u8]) -> Result<String, String> {
        let v: Value =
            serde_json::from_slice(body).map_err(|e| format!("response is not JSON: {e}"))?;
        let path = match &self.kind {
            TargetKind::OpenAiChat => "choices.0.message.content",
            TargetKind::OpenAiCompletion => "choices.0.text",
            TargetKind::Rest { response_path, .. } => response_path.as_str(),
        };
        match lookup(&v, path) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(Value::Null) | None => Err(format!("response has no value at '{path}'")),
            Some(other) => Ok(other.to_string()),
        }
    }

    /// Headers to send, with `env:` values and the API key resolved.
    pub fn resolved_headers(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if let Some(env) = &self.api_key_env {
            if let Ok(key) = std::env::var(env) {
                out.push(("authorization".to_string(), format!("Bearer {key}")));
            }
        }
        for (k, v) in &self.headers {
            let value = match v.strip_prefix("env:") {
                Some(name) => std::env::var(name).unwrap_or_default(),
                None => v.clone(),
            };
            out.push((k.clone(), value));
        }
        out
    }

    /// A description safe to put in reports (no key, no header values).
    pub fn describe(&self) -> Value {
        let kind = match self.kind {
            TargetKind::OpenAiChat => "openai-chat",
            TargetKind::OpenAiCompletion => "openai-completion",
            TargetKind::Rest { .. } => "rest",
        };
        json!({"kind": kind, "url": self.url, "model": self.model,
               "headers": self.headers.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>()})
    }
}

/// A conversation as one text (`User: ...` / `Assistant: ...`); a single user
/// turn is sent as is.
pub fn flatten(conversation: &[Message]) -> String {
    if let [only] = conversation {
        return only.content.clone();
    }
    let mut s = String::new();
    for m in conversation {
        let who = match m.role.as_str() {
            "assistant" => "Assistant",
            "system" => "System",
            _ => "User",
        };
        s.push_str(who);
        s.push_str(": ");
        s.push_str(&m.content);
        s.push('\n');
    }
    s
}

/// Substitutes `{{prompt}}` in a JSON template with the JSON-escaped prompt
/// (without the surrounding quotes, so the slot sits inside a string literal).
pub fn render_template(template: &str, prompt: &str) -> String {
    let quoted = Value::String(prompt.to_string()).to_string();
    let escaped = &quoted[1..quoted.len() - 1];
    template.replace("{{prompt}}", escaped)
}

/// Splits a response path: `$.data.reply`, `choices.0.message.content`,
/// `choices[0].text` are all accepted.
pub fn parse_path(path: &str) -> Vec<String> {
    let p = path.trim();
    let p = p.strip_prefix('$').unwrap_or(p);
    p.replace('[', ".")
        .replace(']', "")
        .split('.')
        .filter(|s| !s.is_empty())
        .take(64)
        .map(|s| s.trim_matches(|c| c == '\'' || c == '"').to_string())
        .collect()
}

/// Follows a response path through a JSON value.
pub fn lookup<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = v;
    for seg in parse_path(path) {
        cur = match cur {
            Value::Object(m) => m.get(&seg)?,
            Value::Array(a) => a.get(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// Largest request template read from a file (`--request-template @path`).
pub const MAX_TEMPLATE_BYTES: usize = 1 << 20;

/// Reads a UTF-8 text file of at most `max` bytes (a request template, an
/// allowlist); a device such as `/dev/zero` or a larger file is an error
/// after reading at most `max + 1` bytes.
pub fn read_text_bounded(path: &std::path::Path, max: usize) -> crate::error::Result<String> {
    use crate::error::ProbeError;
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(ProbeError::file("read", path))?;
    let mut buf = Vec::new();
    f.take(max as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(ProbeError::file("read", path))?;
    if buf.len() > max {
        return Err(ProbeError::FileTooLarge {
            path: path.to_path_buf(),
            max,
        });
    }
    String::from_utf8(buf).map_err(|_| ProbeError::NotUtf8(path.to_path_buf()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_files_are_read_with_a_bound() {
        let dir = tempfile::tempdir().unwrap();
        let ok = dir.path().join("t.json");
        std::fs::write(&ok, r#"{"input": "{{prompt}}"}"#).unwrap();
        assert!(read_text_bounded(&ok, 100).unwrap().contains("{{prompt}}"));
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'a'; 101]).unwrap();
        let e = read_text_bounded(&big, 100).unwrap_err().to_string();
        assert!(e.contains("larger than 100 bytes"), "{e}");
        std::fs::write(&big, [0xff, 0xfe]).unwrap();
        assert!(read_text_bounded(&big, 100).is_err());
        #[cfg(unix)]
        {
            let e = read_text_bounded(std::path::Path::new("/dev/zero"), MAX_TEMPLATE_BYTES)
                .unwrap_err()
                .to_string();
            assert!(e.contains("larger than"), "{e}");
        }
    }

    #[test]
    fn template_escapes_prompt() {
        let t = r#"{"input": "{{prompt}}", "user": "u1"}"#;
        let out = render_template(t, "say \"hi\"\nand \\ then}");
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["input"], "say \"hi\"\nand \\ then}");
    }

    #[test]
    fn paths() {
        let v = json!({"choices": [{"message": {"content": "hello"}}], "data": {"reply": "r"}});
        assert_eq!(lookup(&v, "choices.0.message.content").unwrap(), "hello");
        assert_eq!(lookup(&v, "$.data.reply").unwrap(), "r");
        assert_eq!(lookup(&v, "choices[0].message.content").unwrap(), "hello");
        assert!(lookup(&v, "choices.5.message").is_none());
        assert!(lookup(&v, "data.reply.deeper").is_none());
    }

    #[test]
    fn rest_validation() {
        let ok = Target::rest("http://h/x", r#"{"q":"{{prompt}}"}"#, "a.b");
        assert!(ok.validate().is_ok());
        let no_slot = Target::rest("http://h/x", r#"{"q":"x"}"#, "a");
        assert!(no_slot.validate().is_err());
        let bad_json = Target::rest("http://h/x", r#"{"q":{{prompt}}}"#, "a");
        assert!(bad_json.validate().is_err());
    }

    #[test]
    fn bodies_per_api_style() {
        let conv = vec![
            Message::new("user", "hi"),
            Message::new("assistant", "hello"),
            Message::new("user", "more"),
        ];
        let mut chat = Target::openai_chat("http://h/v1/", "m");
        chat.system = Some("sys".into());
        assert_eq!(chat.endpoint(), "http://h/v1/chat/completions");
        let v: Value = serde_json::from_str(&chat.body(&conv)).unwrap();
        assert_eq!(v["messages"][0]["role"], "system");
        assert_eq!(v["messages"][3]["content"], "more");
        let mut comp = chat.clone();
        comp.kind = TargetKind::OpenAiCompletion;
        assert_eq!(comp.endpoint(), "http://h/v1/completions");
        let v: Value = serde_json::from_str(&comp.body(&conv)).unwrap();
        let p = v["prompt"].as_str().unwrap();
        assert!(
            p.starts_with("sys\n\nUser: hi\nAssistant: hello\nUser: more"),
            "{p}"
        );
        assert!(p.ends_with("Assistant:"));
        assert_eq!(
            comp.extract(br#"{"choices":[{"text":"ok"}]}"#).unwrap(),
            "ok"
        );
        assert!(comp.extract(br#"{"choices":[]}"#).is_err());
        assert!(comp.extract(b"<html>").is_err());
    }

    #[test]
    fn describe_hides_key_and_header_values() {
        let mut t = Target::openai_chat("http://h/v1", "m");
        t.api_key_env = Some("AISEC_TEST_NOPE".into());
        t.headers.push(("x-token".into(), "secret-value".into()));
        let d = t.describe().to_string();
        assert!(!d.contains("secret-value") && !d.contains("AISEC_TEST_NOPE"));
    }
}
