//! Fuzzes the guard's request handling: request-path normalisation (the
//! first line of the input), request-body screening (the rest, parsed with
//! the guard's bounded JSON reader and screened as a chat and as a
//! completion request under the default policy, so with the built-in second
//! stage: hostile text reaches the WordPiece tokeniser and the encoder on
//! tool content and in the band), and the bounded decoder of compressed upstream
//! responses (the rest as gzip and deflate), and the de-obfuscation views
//! (`aisec_guard::deobf::views`) and the structured-record values view
//! (`aisec_guard::structured::values_view`) and two registered templates'
//! slot values (`aisec_guard::template`) of the whole input as text, and
//! the mapping of spans from the text without in-word marks (soft hyphens,
//! invisible math operators) back onto it, and both views of the normalised
//! text (`text::normalise`: the rules' and the models').
//! Invariants checked: a normalised path has no dot or empty segments and
//! normalises to itself; the models' view has the rules' view's words; there are at most `MAX_VIEWS` views, each at most as
//! long as the (truncated) input, with one or two decodings each.
#![no_main]
use std::sync::OnceLock;

use aisec_guard::decode::BodyDecoder;
use aisec_guard::deobf;
use aisec_guard::policy::Policy;
use aisec_guard::proxy::{screen_input, RouteKind};
use aisec_guard::serve::normalize_path;
use aisec_guard::Pipeline;
use libfuzzer_sys::fuzz_target;

static PIPELINE: OnceLock<Pipeline> = OnceLock::new();
static TEMPLATES: OnceLock<aisec_guard::template::Templates> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let (head, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    if let Ok(path) = std::str::from_utf8(head) {
        if let Ok(n) = normalize_path(path) {
            assert!(n.starts_with('/'));
            let inner = n.trim_end_matches('/');
            assert!(
                !inner
                    .split('/')
                    .skip(1)
                    .any(|s| s.is_empty() || s == "." || s == ".."),
                "{path:?} -> {n:?}"
            );
            assert_eq!(normalize_path(&n).as_deref(), Ok(n.as_str()), "{path:?}");
        }
    }
    let p = PIPELINE.get_or_init(|| Pipeline::new(Policy::default_for("http://127.0.0.1:1")));
    if body.len() <= 64 << 10 {
        // The guard's own parse: bounded by structure as well as bytes.
        let limits = aisec_core::json::JsonLimits::BODY;
        if let Ok(v) = aisec_core::json::from_slice::<serde_json::Value>(body, &limits) {
            for kind in [RouteKind::Chat, RouteKind::Completion] {
                let _ = screen_input(p, kind, &v);
            }
        }
    }
    let text = String::from_utf8_lossy(data);
    let cap = text.len().min(deobf::MAX_INPUT_BYTES);
    let views = deobf::views(&text);
    assert!(views.len() <= deobf::MAX_VIEWS);
    for v in &views {
        assert!(v.text.len() <= cap, "view longer than its input");
        assert!(!v.chain.is_empty() && v.chain.len() <= deobf::MAX_DEPTH);
    }
    // the models' view of the normalised text folds look-alikes per word, never across words: it has
    // the rules' view's words, and equals it where nothing is kept
    let n = aisec_guard::text::normalise(&text);
    assert_eq!(
        n.model_text().split(' ').count(),
        n.text.split(' ').count(),
        "the two views split into different words"
    );
    if !text.chars().any(|c| aisec_guard::text::confusable_to_latin(c).is_some()) {
        assert_eq!(n.model_text(), n.text);
    }
    // the structured-record view the classifier reads (values only: never longer than the text)
    if let Some(v) = aisec_guard::structured::values_view(&text) {
        assert!(v.len() <= text.len(), "values view longer than its input");
    }
    // registered templates: the slot values of an instance are never longer than the text
    let templates = TEMPLATES.get_or_init(|| {
        aisec_guard::template::Templates::compile(&[
            "Context: {context}\nQuestion: {question}\nAnswer:".into(),
            "{a} and {{literal}} {b}".into(),
        ])
        .expect("templates")
    });
    if let Some(v) = templates.slot_values(&text) {
        assert!(v.len() <= text.len(), "slot values longer than the text");
    }
    // in-word marks: a span of the text without them maps back onto the same
    // characters of the text, on character boundaries
    let plain = aisec_guard::text::without_inword_marks(&text);
    let bounds: Vec<usize> = plain
        .char_indices()
        .map(|(i, _)| i)
        .chain([plain.len()])
        .collect();
    let spans: Vec<_> = bounds
        .windows(2)
        .take(64)
        .map(|w| w[0]..w[1])
        .chain([0..plain.len()])
        .collect();
    for (s, m) in spans
        .iter()
        .zip(aisec_guard::text::inword_mark_spans(&text, spans.clone()))
    {
        assert!(text.is_char_boundary(m.start) && text.is_char_boundary(m.end) && m.start <= m.end);
        assert_eq!(
            text[m].replace(aisec_guard::text::is_inword_mark, ""),
            plain[s.clone()]
        );
    }
    for coding in [Some("gzip"), Some("deflate")] {
        if let Ok(out) = BodyDecoder::decode_all(coding, body, 1 << 20) {
            assert!(out.len() <= 1 << 20);
        }
    }
});
