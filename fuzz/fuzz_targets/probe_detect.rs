//! Fuzz aisec-probe's response handling: reply extraction from hostile JSON
//! bodies and every detector over hostile reply text (decoding, unicode
//! normalisation, regexes, judge-answer parsing). None may panic.
#![no_main]

use std::collections::HashSet;

use aisec_probe::detect::{evaluate, parse_judge, refusal, Context};
use aisec_probe::probes::Check;
use aisec_probe::target::Target;
use libfuzzer_sys::fuzz_target;

const CHECKS: [Check; 7] = [
    Check::Canary,
    Check::CanaryComply,
    Check::SystemLeak,
    Check::SecretLeak,
    Check::MarkdownExfil,
    Check::ActiveContent,
    Check::Packages,
];

fuzz_target!(|data: &[u8]| {
    let rest = Target::rest("http://127.0.0.1/x", r#"{"q":"{{prompt}}"}"#, "$.a.0.b");
    let _ = rest.extract(data);
    let chat = Target::openai_chat("http://127.0.0.1/v1", "m");
    let _ = chat.extract(data);
    let text = String::from_utf8_lossy(data);
    let secrets = vec!["ZEBRA-7781".to_string()];
    let packages: HashSet<String> = ["numpy".to_string()].into_iter().collect();
    let ctx = Context {
        canary: "QX4TR7MWKH",
        secrets: &secrets,
        packages: &packages,
        prompt: &text,
    };
    for c in CHECKS {
        let _ = evaluate(c, &[text.to_string()], &ctx);
    }
    let _ = refusal(&text);
    let _ = parse_judge(&text);
});
