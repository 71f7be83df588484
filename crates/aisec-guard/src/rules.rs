//! The static detection rules every guard finding and alert is made from.

use aisec_core::{Rule, Severity};

macro_rules! rule {
    ($name:ident, $id:literal, $kebab:literal, $title:literal, $desc:literal, $sev:ident, [$($a:literal),*], [$($o:literal),*], $rem:literal) => {
        #[doc = $title]
        pub static $name: Rule = Rule {
            id: $id,
            name: $kebab,
            title: $title,
            description: $desc,
            default_severity: Severity::$sev,
            atlas: &[$($a),*],
            owasp: &[$($o),*],
            remediation: $rem,
        };
    };
}

rule!(INJECTION_PATTERN, "AISEC-GUARD-001", "prompt-injection-pattern",
    "Prompt-injection phrasing in a request",
    "The request contains wording that tries to override the application's instructions (ignore previous instructions, new instructions, chat-template markers).",
    High, ["AML.T0051.000"], ["LLM01"],
    "Keep the block action for this scanner; treat model output produced under such input as untrusted.");
rule!(JAILBREAK_PATTERN, "AISEC-GUARD-002", "jailbreak-pattern",
    "Jailbreak phrasing in a request",
    "The request asks the model to drop its safety behaviour (DAN, developer mode, no restrictions, role-play as an unfiltered model).",
    High, ["AML.T0054"], ["LLM01"],
    "Block, and review the client's other traffic for a campaign.");
rule!(PROMPT_EXTRACTION_ATTEMPT, "AISEC-GUARD-003", "system-prompt-extraction-attempt",
    "Request asks for the system prompt",
    "The request asks the model to reveal, repeat or print its system prompt or hidden instructions.",
    Medium, ["AML.T0056"], ["LLM07"],
    "Keep secrets out of system prompts; enable the output leakage scanner with canaries.");
rule!(INJECTION_CLASSIFIER, "AISEC-GUARD-004", "injection-classifier",
    "Learned classifier scores the request as prompt injection",
    "A hashed character/word n-gram logistic-regression model trained on a labelled prompt-injection set scored the request above its threshold.",
    Medium, ["AML.T0051", "AML.T0054"], ["LLM01"],
    "Review the flagged prompts; raise the threshold if benign traffic is flagged.");
rule!(INDIRECT_INJECTION, "AISEC-GUARD-005", "indirect-prompt-injection",
    "Instructions addressed to the model in tool output or retrieved content",
    "Text that reached the model as a tool or function result (or another channel the policy marks as untrusted content) carries instructions aimed at the model: override phrasing, fake dialogue turns, or a passage the injection classifier scores above its threshold.",
    High, ["AML.T0051.001"], ["LLM01"],
    "Keep tool results out of the instruction channel; block or strip the passage, and treat the model's next action as untrusted.");
rule!(SECRET_IN_INPUT, "AISEC-GUARD-010", "secret-in-prompt",
    "Credential in a request",
    "The request carries something shaped like an API key, token or private key (AWS, GitHub, OpenAI, Slack, JWT, PEM).",
    High, ["AML.T0055"], ["LLM02"],
    "Redact before the prompt reaches the model or its logs; rotate the credential.");
rule!(PII_IN_INPUT, "AISEC-GUARD-011", "pii-in-prompt",
    "Personal data in a request",
    "The request carries an email address, phone number, IBAN (mod-97 valid), card number (Luhn valid) or US SSN.",
    Medium, ["AML.T0057"], ["LLM02"],
    "Redact personal data that the model does not need.");
rule!(INVISIBLE_UNICODE, "AISEC-GUARD-012", "invisible-unicode",
    "Invisible or control Unicode in a request",
    "Zero-width characters, bidirectional controls or Unicode tag characters (U+E0000 block) can hide instructions from people reviewing a prompt.",
    Medium, ["AML.T0068"], ["LLM01"],
    "Strip such characters (redact) or block the request.");
rule!(CONFUSABLE_MIXING, "AISEC-GUARD-013", "confusable-mixing",
    "Words mixing Latin with look-alike letters",
    "Words that mix Latin letters with Cyrillic or Greek homoglyphs are a common way to slip past keyword filters.",
    Low, ["AML.T0068"], ["LLM01"],
    "Flag or block; the injection scanners already see the folded text.");
rule!(
    SIZE_LIMIT,
    "AISEC-GUARD-014",
    "input-size-limit",
    "Request exceeds the size or token limit",
    "Oversized prompts drive cost and latency and can push instructions out of the context window.",
    Medium,
    ["AML.T0029", "AML.T0034"],
    ["LLM10"],
    "Keep the limit; raise it only for clients that need it."
);
rule!(
    CUSTOM_INPUT,
    "AISEC-GUARD-015",
    "custom-input-pattern",
    "Request matches a policy deny pattern",
    "A deny pattern from the guard policy matched the request.",
    Medium,
    ["AML.T0051"],
    ["LLM01"],
    "See the policy entry named in the evidence."
);
rule!(SYSTEM_PROMPT_LEAK, "AISEC-GUARD-020", "system-prompt-leak",
    "Response repeats the system prompt",
    "A long run of words from the system prompt (configured, or sent in the request) appears in the model's response.",
    High, ["AML.T0056", "AML.T0057"], ["LLM07"],
    "Block the response; move secrets out of the system prompt.");
rule!(
    CANARY_LEAK,
    "AISEC-GUARD-021",
    "canary-leak",
    "Response contains a canary token",
    "A configured canary string planted in the system prompt or context appeared in the response.",
    Critical,
    ["AML.T0056", "AML.T0057"],
    ["LLM07", "LLM02"],
    "Block; the model was induced to disclose its hidden context."
);
rule!(
    SECRET_IN_OUTPUT,
    "AISEC-GUARD-022",
    "secret-in-response",
    "Credential in a response",
    "The model's response carries something shaped like an API key, token or private key.",
    High,
    ["AML.T0057", "AML.T0055"],
    ["LLM02"],
    "Redact; find where the model saw the credential (training data, context, tools)."
);
rule!(
    PII_IN_OUTPUT,
    "AISEC-GUARD-023",
    "pii-in-response",
    "Personal data in a response",
    "The model's response carries an email address, phone number, IBAN, card number or SSN.",
    Medium,
    ["AML.T0057"],
    ["LLM02"],
    "Redact personal data the client is not entitled to."
);
rule!(MARKDOWN_EXFIL, "AISEC-GUARD-024", "markdown-exfiltration",
    "Response renders an image or link that can carry data out",
    "Markdown images or links to non-allowlisted domains, or image URLs carrying query data, leak conversation content when a client renders them.",
    High, ["AML.T0077", "AML.T0057"], ["LLM05", "LLM02"],
    "Block, or allowlist the domains your UI may fetch from.");
rule!(UNSAFE_HTML, "AISEC-GUARD-025", "unsafe-html-output",
    "Response contains active HTML or script",
    "Script tags, inline event handlers or javascript: URLs in a response become cross-site scripting when a client renders it as HTML.",
    Medium, ["AML.T0077"], ["LLM05"],
    "Escape model output before rendering; block or redact at the gateway.");
rule!(
    CUSTOM_OUTPUT,
    "AISEC-GUARD-026",
    "custom-output-pattern",
    "Response matches a policy deny pattern",
    "A deny pattern from the guard policy matched the response.",
    Medium,
    ["AML.T0057"],
    ["LLM05"],
    "See the policy entry named in the evidence."
);
rule!(RATE_ALERT, "AISEC-GUARD-030", "client-rate",
    "Client exceeded its request rate",
    "One client (API key hash or IP) sent more requests in the sliding window than the policy allows.",
    Medium, ["AML.T0029", "AML.T0034"], ["LLM10"],
    "Rate-limit or throttle the client.");
rule!(EXTRACTION_ALERT, "AISEC-GUARD-031", "model-extraction-pattern",
    "Query pattern typical of model extraction",
    "Many near-duplicate or systematically varied inputs from one client in a short window, as extraction and decision-boundary attacks send.",
    High, ["AML.T0024.002"], ["LLM10"],
    "Throttle the client and review its queries; consider output rounding.");
rule!(PROBING_ALERT, "AISEC-GUARD-032", "blocked-probing",
    "Client repeatedly triggers blocks",
    "A high number of blocked requests from one client indicates probing of the guard or the model.",
    High, ["AML.T0051", "AML.T0054"], ["LLM01"],
    "Suspend the client's key and review its traffic.");
rule!(INJECTION_CAMPAIGN, "AISEC-GUARD-033", "injection-campaign",
    "Many distinct prompts with injection markers from one client",
    "A client sending many different prompts that carry injection or jailbreak markers is searching for a working attack.",
    High, ["AML.T0051", "AML.T0054"], ["LLM01"],
    "Suspend the client's key and review its traffic.");
rule!(INPUT_DRIFT, "AISEC-GUARD-034", "input-drift",
    "Model inputs drifted from the reference sample",
    "The population stability index or the two-sample Kolmogorov-Smirnov statistic of an input feature over the recent window exceeds its alert threshold against the reference sample: the model sees data it was not validated on, or someone is steering its inputs.",
    Medium, ["AML.T0015"], [],
    "Compare the drifted features with the reference data; re-validate or retrain the model, and look for a client that sends the shifted inputs.");
rule!(PREDICTION_DRIFT, "AISEC-GUARD-035", "prediction-drift",
    "Model predictions drifted from the reference sample",
    "The predicted-class distribution over the recent window differs from the reference (population stability index over classes, or a class share beyond its alert threshold).",
    Medium, ["AML.T0031", "AML.T0015"], [],
    "Check the labels of recent traffic; a shifted prediction mix can mean drifted data or manipulated inputs.");
rule!(OOD_INPUT, "AISEC-GUARD-036", "out-of-distribution-input",
    "Input far from the data the model was validated on",
    "The energy score of the model's logits or the Mahalanobis distance of its penultimate features is beyond the threshold chosen on in-distribution validation data.",
    Low, ["AML.T0015"], [],
    "Route out-of-distribution inputs to review or a fallback instead of trusting the prediction.");
rule!(ADVERSARIAL_INPUT, "AISEC-GUARD-037", "adversarial-input",
    "Input whose prediction flips under feature squeezing",
    "The model's prediction on the input and on a squeezed copy (reduced bit depth, median smoothing) differ by more than the threshold chosen on clean validation data, as adversarial examples typically do (Xu et al. 2018).",
    High, ["AML.T0043", "AML.T0015"], [],
    "Reject or review the input; adversarially train the model or add input transformations.");

/// Every rule this crate can emit.
pub fn rules() -> Vec<&'static Rule> {
    vec![
        &INJECTION_PATTERN,
        &JAILBREAK_PATTERN,
        &PROMPT_EXTRACTION_ATTEMPT,
        &INJECTION_CLASSIFIER,
        &INDIRECT_INJECTION,
        &SECRET_IN_INPUT,
        &PII_IN_INPUT,
        &INVISIBLE_UNICODE,
        &CONFUSABLE_MIXING,
        &SIZE_LIMIT,
        &CUSTOM_INPUT,
        &SYSTEM_PROMPT_LEAK,
        &CANARY_LEAK,
        &SECRET_IN_OUTPUT,
        &PII_IN_OUTPUT,
        &MARKDOWN_EXFIL,
        &UNSAFE_HTML,
        &CUSTOM_OUTPUT,
        &RATE_ALERT,
        &EXTRACTION_ALERT,
        &PROBING_ALERT,
        &INJECTION_CAMPAIGN,
        &INPUT_DRIFT,
        &PREDICTION_DRIFT,
        &OOD_INPUT,
        &ADVERSARIAL_INPUT,
    ]
}
