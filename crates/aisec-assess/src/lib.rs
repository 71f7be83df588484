//! `aisec-assess`: from a description of an ML system to a threat model and
//! a report with evidence per control.
//!
//! This crate owns issue 16: the system description format, the threat
//! model derived from it (STRIDE categories crossed with MITRE ATLAS
//! techniques and OWASP LLM ids, each with the aisec check that tests it),
//! its OWASP Threat Dragon export and import, compliance views (ATLAS, OWASP
//! LLM Top 10, NIST AI RMF, EU AI Act Article 15, ISO/IEC 42001) and the
//! assessment report. Running the checks is the CLI's job; this crate turns
//! their results into threat statuses and evidence.
