//! Fuzz target: the GGUF chat-template judgement (Jinja parse, constant
//! folding, token fallback) must never panic, hang or over-allocate on any
//! template text, and must be deterministic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let t = String::from_utf8_lossy(data);
    let loc = aisec_core::Location::path("fuzz.gguf");
    let mut a = aisec_formats::FormatReport::default();
    aisec_formats::gguf::check_template(&t, "tokenizer.chat_template", &loc, &mut a);
    let mut b = aisec_formats::FormatReport::default();
    aisec_formats::gguf::check_template(&t, "tokenizer.chat_template", &loc, &mut b);
    assert_eq!(a, b, "same template, different findings");
});
