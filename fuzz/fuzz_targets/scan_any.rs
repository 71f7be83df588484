//! The whole scanner on arbitrary bytes: detection, every container and
//! leaf parser reachable from it, with tight limits.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut opts = aisec_scan::ScanOptions::default();
    opts.archive_limits.max_entry_bytes = 1 << 20;
    opts.archive_limits.max_total_bytes = 4 << 20;
    let scanner = aisec_scan::Scanner::new(opts);
    for name in ["x.pt", "saved_model.pb", "m.safetensors"] {
        let r = scanner.scan_bytes(data, name);
        assert!(r.error.is_none());
    }
});
