//! The rules `aisec probe` reports: one per probe family.

use aisec_core::{Rule, Severity};

/// Direct prompt injection and goal hijacking.
pub static DIRECT_INJECTION: Rule = Rule {
    id: "AISEC-PROBE-INJ-001",
    name: "llm-direct-prompt-injection",
    title: "Endpoint follows injected instructions in the user turn",
    description: "Instructions placed in user input override the application's task: the model dropped its goal and did what the injected text said.",
    default_severity: Severity::High,
    atlas: &["AML.T0051.000"],
    owasp: &["LLM01"],
    remediation: "Treat user text as data: keep privileged instructions out of reach of user input, constrain outputs (schemas, allowlists), and put an input/output guard in front of the model.",
};

/// Indirect injection through documents or tool results.
pub static INDIRECT_INJECTION: Rule = Rule {
    id: "AISEC-PROBE-IND-001",
    name: "llm-indirect-prompt-injection",
    title: "Endpoint follows instructions hidden in a document or tool result",
    description: "Text the model was asked to process (a retrieved document, a web page, a tool result) carried instructions, and the model followed them.",
    default_severity: Severity::High,
    atlas: &["AML.T0051.001"],
    owasp: &["LLM01"],
    remediation: "Mark retrieved content as untrusted (delimiters, spotlighting), strip instructions from tool output, limit what the model may do after reading untrusted content, and review tool permissions.",
};

/// Jailbreaks: role-play, persona, refusal suppression, many-shot, payload splitting.
pub static JAILBREAK: Rule = Rule {
    id: "AISEC-PROBE-JB-001",
    name: "llm-jailbreak",
    title: "Jailbreak framing makes the endpoint abandon its policy",
    description: "A jailbreak prompt (role-play, persona, refusal suppression, many-shot or payload splitting) made the model do what it is meant to refuse.",
    default_severity: Severity::High,
    atlas: &["AML.T0054"],
    owasp: &["LLM01"],
    remediation: "Add refusal training or a safety classifier on inputs and outputs; test with jailbreak suites on every model or prompt change.",
};

/// Obfuscated or encoded payloads.
pub static OBFUSCATION: Rule = Rule {
    id: "AISEC-PROBE-ENC-001",
    name: "llm-obfuscated-injection",
    title: "Endpoint follows obfuscated (encoded, unicode-tricked) instructions",
    description: "An injected instruction hidden by an encoding or unicode trick (base64, rot13, hex, leetspeak, homoglyphs, zero-width or tag characters) passed any filter and was followed.",
    default_severity: Severity::High,
    atlas: &["AML.T0068", "AML.T0051.000"],
    owasp: &["LLM01"],
    remediation: "Normalise input before filtering (NFKC, strip zero-width and tag characters, decode obvious encodings) and filter the model's output as well as its input.",
};

/// System prompt and canary extraction.
pub static SYSTEM_PROMPT_LEAK: Rule = Rule {
    id: "AISEC-PROBE-SPE-001",
    name: "llm-system-prompt-extraction",
    title: "Endpoint discloses its system prompt",
    description: "The model repeated its system prompt or a canary planted in it when asked directly or indirectly.",
    default_severity: Severity::Medium,
    atlas: &["AML.T0056"],
    owasp: &["LLM07"],
    remediation: "Assume the system prompt is public: keep secrets, credentials and access rules out of it, and enforce authorisation outside the model.",
};

/// Secret and PII leakage.
pub static DATA_LEAKAGE: Rule = Rule {
    id: "AISEC-PROBE-LEAK-001",
    name: "llm-sensitive-data-leakage",
    title: "Endpoint discloses secrets or personal data from its context",
    description: "The model revealed a secret or personal data it was given in context (system prompt, earlier turns, retrieved records) to a user who should not see it.",
    default_severity: Severity::High,
    atlas: &["AML.T0057"],
    owasp: &["LLM02"],
    remediation: "Do not put data in the model's context that the current user may not see; redact secrets and PII before retrieval; scan outputs for secrets.",
};

/// Markdown image or link exfiltration.
pub static MARKDOWN_EXFIL: Rule = Rule {
    id: "AISEC-PROBE-EXFIL-001",
    name: "llm-markdown-exfiltration",
    title: "Endpoint emits markdown images or links that carry data to an external URL",
    description: "The model produced a markdown image or link whose URL contains conversation data; a client that renders it sends that data to the attacker's server without a click.",
    default_severity: Severity::High,
    atlas: &["AML.T0077", "AML.T0057"],
    owasp: &["LLM05", "LLM02"],
    remediation: "Do not render images from untrusted domains in model output (content security policy, URL allowlist), and strip or neutralise links built by the model.",
};

/// XSS and code-injection payloads in output.
pub static OUTPUT_INJECTION: Rule = Rule {
    id: "AISEC-PROBE-XSS-001",
    name: "llm-output-code-injection",
    title: "Endpoint emits active content (script tags, javascript: URLs) on request",
    description: "The model reproduced an executable payload (HTML script, event handler, javascript: URL) that a downstream renderer or interpreter would run.",
    default_severity: Severity::Medium,
    atlas: &["AML.T0077"],
    owasp: &["LLM05"],
    remediation: "Encode model output for the context it is rendered in (HTML-escape, sanitise markdown), and never pass it to an interpreter or shell unchecked.",
};

/// Package hallucination.
pub static PACKAGE_HALLUCINATION: Rule = Rule {
    id: "AISEC-PROBE-PKG-001",
    name: "llm-package-hallucination",
    title: "Endpoint recommends packages that are not in the known-package snapshot",
    description: "Asked for libraries for niche tasks, the model named packages absent from a snapshot of real package names; an attacker can register such names (slopsquatting). The snapshot is small, so a name flagged here may exist: check it against the registry.",
    default_severity: Severity::Medium,
    atlas: &["AML.T0060"],
    owasp: &["LLM09", "LLM03"],
    remediation: "Verify every dependency a model suggests against the registry and your own allowlist before installing it; pin and review new dependencies.",
};

/// Multi-turn escalation (Crescendo-style).
pub static MULTI_TURN: Rule = Rule {
    id: "AISEC-PROBE-MT-001",
    name: "llm-multi-turn-escalation",
    title: "Endpoint gives in to gradual multi-turn escalation",
    description: "Over several harmless-looking turns that build on the model's own answers (Crescendo-style), the model ended up doing what a single direct request would not get.",
    default_severity: Severity::High,
    atlas: &["AML.T0054", "AML.T0051.000"],
    owasp: &["LLM01"],
    remediation: "Evaluate safety over the whole conversation, not only the last turn; cap conversation length for sensitive apps; test with multi-turn suites.",
};

/// Every rule this crate can report.
pub fn rules() -> Vec<&'static Rule> {
    vec![
        &DIRECT_INJECTION,
        &INDIRECT_INJECTION,
        &JAILBREAK,
        &OBFUSCATION,
        &SYSTEM_PROMPT_LEAK,
        &DATA_LEAKAGE,
        &MARKDOWN_EXFIL,
        &OUTPUT_INJECTION,
        &PACKAGE_HALLUCINATION,
        &MULTI_TURN,
    ]
}

#[cfg(test)]
mod tests {
    #[test]
    fn rule_ids_unique_and_taxonomy_known() {
        let rules = super::rules();
        let mut ids: Vec<_> = rules.iter().map(|r| r.id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), rules.len());
        for r in rules {
            assert!(!r.atlas.is_empty() && !r.owasp.is_empty(), "{}", r.id);
            for a in r.atlas {
                assert!(
                    aisec_core::taxonomy::atlas_label(a) != *a,
                    "unknown ATLAS id {a}"
                );
            }
        }
    }
}
