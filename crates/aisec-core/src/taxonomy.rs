//! The threat taxonomies findings are mapped to.
//!
//! * MITRE ATLAS (Adversarial Threat Landscape for AI Systems), technique ids
//!   and names as published in the ATLAS data (v5.x), with the tactic each
//!   technique is shown under in an ATLAS Navigator layer.
//! * OWASP Top 10 for LLM Applications, 2025 edition.
//!
//! Only the techniques aisec reports are listed; an unknown id still renders
//! (by id alone) so a newer ATLAS id never breaks a report.

/// One MITRE ATLAS technique or sub-technique.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AtlasTechnique {
    /// Id such as `AML.T0011.000`.
    pub id: &'static str,
    /// Name as ATLAS writes it.
    pub name: &'static str,
    /// Navigator tactic short names the technique is placed under.
    pub tactics: &'static [&'static str],
}

macro_rules! atlas_table {
    ($($id:literal => $name:literal [$($tac:literal),*]),* $(,)?) => {
        /// Every ATLAS technique aisec knows by name.
        pub const ATLAS: &[AtlasTechnique] = &[
            $(AtlasTechnique { id: $id, name: $name, tactics: &[$($tac),*] }),*
        ];
    };
}

atlas_table! {
    "AML.T0005" => "Create Proxy AI Model" ["ml-attack-staging"],
    "AML.T0005.000" => "Train Proxy via Gathered AI Artifacts" ["ml-attack-staging"],
    "AML.T0005.001" => "Train Proxy via Replication" ["ml-attack-staging"],
    "AML.T0010" => "AI Supply Chain Compromise" ["initial-access"],
    "AML.T0010.001" => "AI Software" ["initial-access"],
    "AML.T0010.002" => "Data" ["initial-access"],
    "AML.T0010.003" => "Model" ["initial-access"],
    "AML.T0011" => "User Execution" ["execution"],
    "AML.T0011.000" => "Unsafe AI Artifacts" ["execution"],
    "AML.T0015" => "Evade AI Model" ["initial-access", "defense-evasion", "impact"],
    "AML.T0018" => "Manipulate AI Model" ["persistence", "ml-attack-staging"],
    "AML.T0018.000" => "Poison AI Model" ["persistence", "ml-attack-staging"],
    "AML.T0018.001" => "Modify AI Model Architecture" ["persistence", "ml-attack-staging"],
    "AML.T0020" => "Poison Training Data" ["resource-development", "persistence"],
    "AML.T0024" => "Exfiltration via AI Inference API" ["exfiltration"],
    "AML.T0024.000" => "Infer Training Data Membership" ["exfiltration"],
    "AML.T0024.001" => "Invert AI Model" ["exfiltration"],
    "AML.T0024.002" => "Extract AI Model" ["exfiltration"],
    "AML.T0029" => "Denial of AI Service" ["impact"],
    "AML.T0031" => "Erode AI Model Integrity" ["impact"],
    "AML.T0034" => "Cost Harvesting" ["impact"],
    "AML.T0040" => "AI Model Inference API Access" ["ml-model-access"],
    "AML.T0043" => "Craft Adversarial Data" ["ml-attack-staging"],
    "AML.T0043.000" => "White-Box Optimization" ["ml-attack-staging"],
    "AML.T0043.001" => "Black-Box Optimization" ["ml-attack-staging"],
    "AML.T0043.004" => "Insert Backdoor Trigger" ["ml-attack-staging"],
    "AML.T0044" => "Full AI Model Access" ["ml-model-access"],
    "AML.T0050" => "Command and Scripting Interpreter" ["execution"],
    "AML.T0051" => "LLM Prompt Injection" ["execution"],
    "AML.T0051.000" => "Direct" ["execution"],
    "AML.T0051.001" => "Indirect" ["execution"],
    "AML.T0051.002" => "Triggered" ["execution"],
    "AML.T0053" => "AI Agent Tool Invocation" ["execution", "privilege-escalation"],
    "AML.T0054" => "LLM Jailbreak" ["privilege-escalation", "defense-evasion"],
    "AML.T0055" => "Unsecured Credentials" ["credential-access"],
    "AML.T0056" => "Extract LLM System Prompt" ["exfiltration"],
    "AML.T0057" => "LLM Data Leakage" ["exfiltration"],
    "AML.T0058" => "Publish Poisoned Models" ["resource-development"],
    "AML.T0060" => "Publish Hallucinated Entities" ["resource-development"],
    "AML.T0065" => "LLM Prompt Crafting" ["resource-development"],
    "AML.T0068" => "LLM Prompt Obfuscation" ["defense-evasion"],
    "AML.T0070" => "RAG Poisoning" ["persistence"],
    "AML.T0074" => "Masquerading" ["defense-evasion"],
    "AML.T0077" => "LLM Response Rendering" ["exfiltration"],
}

/// Looks up an ATLAS technique by id.
pub fn atlas(id: &str) -> Option<&'static AtlasTechnique> {
    ATLAS.iter().find(|t| t.id == id)
}

/// The human name of an ATLAS id, `"AML.T0011.000 Unsafe AI Artifacts"`;
/// for sub-techniques the parent name is included.
pub fn atlas_label(id: &str) -> String {
    match atlas(id) {
        Some(t) => match id.rsplit_once('.') {
            Some((parent, suffix)) if suffix.len() == 3 && parent.contains('T') => {
                match atlas(parent) {
                    Some(p) => format!("{id} {}: {}", p.name, t.name),
                    None => format!("{id} {}", t.name),
                }
            }
            _ => format!("{id} {}", t.name),
        },
        None => id.to_string(),
    }
}

/// One entry of the OWASP Top 10 for LLM Applications (2025).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwaspLlm {
    /// Id such as `LLM01`.
    pub id: &'static str,
    /// Name.
    pub name: &'static str,
}

/// The OWASP Top 10 for LLM Applications, 2025 edition.
pub const OWASP_LLM_2025: &[OwaspLlm] = &[
    OwaspLlm {
        id: "LLM01",
        name: "Prompt Injection",
    },
    OwaspLlm {
        id: "LLM02",
        name: "Sensitive Information Disclosure",
    },
    OwaspLlm {
        id: "LLM03",
        name: "Supply Chain",
    },
    OwaspLlm {
        id: "LLM04",
        name: "Data and Model Poisoning",
    },
    OwaspLlm {
        id: "LLM05",
        name: "Improper Output Handling",
    },
    OwaspLlm {
        id: "LLM06",
        name: "Excessive Agency",
    },
    OwaspLlm {
        id: "LLM07",
        name: "System Prompt Leakage",
    },
    OwaspLlm {
        id: "LLM08",
        name: "Vector and Embedding Weaknesses",
    },
    OwaspLlm {
        id: "LLM09",
        name: "Misinformation",
    },
    OwaspLlm {
        id: "LLM10",
        name: "Unbounded Consumption",
    },
];

/// Looks up an OWASP LLM Top 10 entry by id.
pub fn owasp(id: &str) -> Option<&'static OwaspLlm> {
    OWASP_LLM_2025.iter().find(|o| o.id == id)
}

/// `"LLM01 Prompt Injection"`, or the id alone when unknown.
pub fn owasp_label(id: &str) -> String {
    match owasp(id) {
        Some(o) => format!("{} {}", o.id, o.name),
        None => id.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_well_formed() {
        let mut seen = std::collections::HashSet::new();
        for t in ATLAS {
            assert!(t.id.starts_with("AML.T"), "{}", t.id);
            assert!(!t.tactics.is_empty(), "{}", t.id);
            assert!(seen.insert(t.id), "duplicate {}", t.id);
        }
        assert_eq!(OWASP_LLM_2025.len(), 10);
    }

    #[test]
    fn labels_include_parent_names() {
        assert_eq!(
            atlas_label("AML.T0011.000"),
            "AML.T0011.000 User Execution: Unsafe AI Artifacts"
        );
        assert_eq!(atlas_label("AML.T0043"), "AML.T0043 Craft Adversarial Data");
        assert_eq!(atlas_label("AML.T9999"), "AML.T9999");
        assert_eq!(owasp_label("LLM07"), "LLM07 System Prompt Leakage");
    }

    #[test]
    fn every_subtechnique_has_a_parent() {
        for t in ATLAS {
            if let Some((parent, suffix)) = t.id.rsplit_once('.') {
                if suffix.len() == 3 && parent.starts_with("AML.T") {
                    assert!(atlas(parent).is_some(), "{} lacks parent", t.id);
                }
            }
        }
    }
}
