//! OWASP Threat Dragon v2 models: export of a threat model (so a team can
//! keep editing it in Threat Dragon) and import of one (components, flows
//! and the threats the team wrote, with their statuses).
//!
//! The format is Threat Dragon's v2 JSON (`version`, `summary`, `detail`
//! with `diagrams[].cells[]`, threats on each cell's `data.threats`), as its
//! schema `td.vue/src/assets/schema/threat-dragon-v2.schema.json` defines
//! it; a copy of that schema is committed in `schema/` and the tests
//! validate every export against it.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::status::Status;
use crate::system::{Component, ComponentKind, Exposure, Flow, SystemDescription, SystemInfo};
use crate::threats::{Stride, Target, Threat, ThreatModel};
use crate::AssessError;

/// The Threat Dragon version written into exports.
pub const TD_VERSION: &str = "2.2.0";

/// Largest Threat Dragon file imported.
pub const MAX_IMPORT_BYTES: u64 = 32 << 20;

/// A UUID-shaped id derived from `key` (FNV-1a, 128 bits from two seeds),
/// so the same system exports the same ids and a re-import matches them.
fn stable_uuid(key: &str) -> String {
    let h = |seed: u64| {
        let mut x = seed;
        for b in key.bytes() {
            x ^= u64::from(b);
            x = x.wrapping_mul(0x0000_0100_0000_01b3);
        }
        x
    };
    let a = h(0xcbf2_9ce4_8422_2325);
    let b = h(0x84222325_cbf29ce4);
    // Version 8 (custom) and the RFC 4122 variant, so it is a valid UUID.
    let a = (a & 0xffff_ffff_ffff_0fff) | 0x8000;
    let b = (b & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xffff,
        b >> 48,
        b & 0xffff_ffff_ffff
    )
}

fn shape(kind: ComponentKind) -> (&'static str, &'static str) {
    match kind {
        ComponentKind::Actor => ("actor", "tm.Actor"),
        ComponentKind::TrainingData | ComponentKind::ModelArtifact => ("store", "tm.Store"),
        _ => ("process", "tm.Process"),
    }
}

fn column(kind: ComponentKind) -> u32 {
    match kind {
        ComponentKind::Actor => 0,
        ComponentKind::Gateway | ComponentKind::TrainingData => 1,
        ComponentKind::ModelArtifact => 2,
        _ => 3,
    }
}

fn threat_json(t: &Threat, number: usize, status: Status) -> Value {
    let check = match &t.check {
        Some(c) => format!("Tested by aisec: {} on {}.", c.kind.command(), c.component),
        None => "Not testable by aisec: review the control manually.".to_string(),
    };
    let mut description = format!(
        "{}\n\nATLAS: {}\nOWASP LLM: {}\n{check}\naisec threat: {}",
        t.description,
        if t.atlas.is_empty() {
            "-".into()
        } else {
            t.atlas.join(", ")
        },
        if t.owasp.is_empty() {
            "-".into()
        } else {
            t.owasp.join(", ")
        },
        t.id
    );
    if let Some(c) = &t.declared_control {
        description.push_str(&format!("\nDeclared control: {c}"));
    }
    json!({
        "threatId": stable_uuid(&t.id),
        "ruleId": t.rule,
        "number": number,
        "title": t.title,
        "type": t.stride.name(),
        "modelType": "STRIDE",
        "status": status.threat_dragon(),
        "severity": t.inherent_risk().name(),
        "score": format!("likelihood {}, impact {}", t.likelihood.name(), t.impact.name()),
        "description": description,
        "mitigation": t.control,
    })
}

/// Exports the threat model as a Threat Dragon v2 model (one STRIDE
/// diagram: components as actors, stores and processes, flows as flows,
/// each carrying its threats). `statuses` (by threat id) come from an
/// assessment run; threats without one are `Open` before measurement
/// unless the description declares a control.
pub fn export(
    d: &SystemDescription,
    m: &ThreatModel,
    statuses: &BTreeMap<String, Status>,
) -> Value {
    let mut cells = Vec::new();
    let mut number = 0usize;
    let mut threats_of = |target: &Target| -> (Vec<Value>, bool) {
        let mut out = Vec::new();
        let mut open = false;
        for t in m.threats.iter().filter(|t| &t.target == target) {
            number += 1;
            let st = statuses.get(&t.id).copied().unwrap_or(Status::NotTested);
            open |= st != Status::Mitigated;
            out.push(threat_json(t, number, st));
        }
        (out, open)
    };
    let mut rows: BTreeMap<u32, u32> = BTreeMap::new();
    for (z, c) in d.components.iter().enumerate() {
        let (shape_name, ty) = shape(c.kind);
        let col = column(c.kind);
        let row = rows.entry(col).or_insert(0);
        let (x, y) = (40 + 240 * col, 40 + 160 * *row);
        *row += 1;
        let (threats, open) = threats_of(&Target::Component { id: c.id.clone() });
        let stroke = if open { "red" } else { "#333333" };
        let mut data = json!({
            "type": ty,
            "name": c.display_name(),
            "description": format!("{}\naisec: id={} kind={} exposure={}", c.description.clone().unwrap_or_default(), c.id, c.kind.as_str(), exposure_str(c.exposure)).trim_start().to_string(),
            "outOfScope": false,
            "reasonOutOfScope": "",
            "isTrustBoundary": false,
            "hasOpenThreats": open,
            "threats": threats,
        });
        let body = json!({"stroke": stroke, "strokeWidth": if open { 2.5 } else { 1.0 }, "strokeDasharray": "none"});
        let attrs = if shape_name == "store" {
            if let Some(o) = data.as_object_mut() {
                o.insert("isALog".into(), json!(false));
                o.insert("storesCredentials".into(), json!(false));
                o.insert("isEncrypted".into(), json!(false));
                o.insert("isSigned".into(), json!(false));
            }
            json!({"text": {"text": c.display_name()}, "topLine": body, "bottomLine": body})
        } else {
            json!({"text": {"text": c.display_name()}, "body": body})
        };
        cells.push(json!({
            "position": {"x": x, "y": y},
            "size": {"width": 160, "height": 80},
            "attrs": attrs,
            "shape": shape_name,
            "id": stable_uuid(&format!("component:{}", c.id)),
            "zIndex": z as i64 + 1,
            "data": data,
        }));
    }
    for (i, f) in d.flows.iter().enumerate() {
        let (threats, open) = threats_of(&Target::Flow {
            from: f.from.clone(),
            to: f.to.clone(),
        });
        let name = f.data.clone().unwrap_or_else(|| "data".into());
        cells.push(json!({
            "shape": "flow",
            "attrs": {"line": {"stroke": if open { "red" } else { "#333333" }, "strokeWidth": 1, "targetMarker": {"name": "block"}, "sourceMarker": {"name": ""}, "strokeDasharray": "none"}},
            "width": 200,
            "height": 100,
            "zIndex": (d.components.len() + i) as i64 + 1,
            "connector": "smooth",
            "data": {
                "type": "tm.Flow",
                "name": name,
                "description": format!("aisec: from={} to={}", f.from, f.to),
                "outOfScope": false,
                "reasonOutOfScope": "",
                "protocol": "",
                "isEncrypted": f.encrypted,
                "isPublicNetwork": f.public_network,
                "isBidirectional": false,
                "isTrustBoundary": false,
                "hasOpenThreats": open,
                "threats": threats,
            },
            "id": stable_uuid(&format!("flow:{}:{}:{i}", f.from, f.to)),
            "labels": [{"position": 0.5, "attrs": {"label": {"text": name}}}],
            "source": {"cell": stable_uuid(&format!("component:{}", f.from))},
            "target": {"cell": stable_uuid(&format!("component:{}", f.to))},
        }));
    }
    json!({
        "version": TD_VERSION,
        "summary": {
            "title": d.system.name,
            "owner": d.system.owner.clone().unwrap_or_default(),
            "description": d.system.description.clone().unwrap_or_default(),
            "id": 0,
        },
        "detail": {
            "contributors": [{"name": "aisec assess"}],
            "diagrams": [{
                "id": 0,
                "title": format!("{}: STRIDE x ATLAS", d.system.name),
                "diagramType": "STRIDE",
                "placeholder": "New STRIDE diagram description",
                "thumbnail": "./public/content/images/thumbnail.stride.jpg",
                "version": TD_VERSION,
                "cells": cells,
            }],
            "diagramTop": 1,
            "reviewer": "",
            "threatTop": number,
        },
    })
}

fn exposure_str(e: Exposure) -> &'static str {
    match e {
        Exposure::Public => "public",
        Exposure::Internal => "internal",
        Exposure::Private => "private",
    }
}

/// A threat as written in an imported Threat Dragon model.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ImportedThreat {
    /// Component id (or `from -> to` for a flow) it sits on.
    pub target: String,
    /// Title.
    pub title: String,
    /// STRIDE category, when the type is one.
    pub stride: Option<Stride>,
    /// Status as written (`Open`, `Mitigated`, `NA`...).
    pub status: String,
    /// Severity as written.
    pub severity: String,
    /// Mitigation text.
    pub mitigation: String,
    /// The aisec threat id, when the threat came from an aisec export.
    pub aisec_id: Option<String>,
}

/// What an import yields: a description skeleton (components and flows)
/// and the threats the model carries.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Imported {
    /// Components and flows; kinds come from aisec's own marker when the
    /// model was exported by aisec, otherwise from the shape (stores become
    /// training data; actors and generic processes become actors, since
    /// aisec cannot guess what a process is: edit the kind afterwards).
    pub description: SystemDescription,
    /// Every threat on every cell.
    pub threats: Vec<ImportedThreat>,
}

fn slug(s: &str) -> String {
    let mut out: String = s
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    while out.contains("--") {
        out = out.replace("--", "-");
    }
    let t = out.trim_matches('-').to_string();
    if t.is_empty() {
        "component".into()
    } else {
        t
    }
}

fn marker<'a>(desc: &'a str, key: &str) -> Option<&'a str> {
    let line = desc.lines().find(|l| l.starts_with("aisec: "))?;
    line["aisec: ".len()..]
        .split(' ')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

/// Imports a Threat Dragon v2 model. Cells exported by aisec keep their
/// ids and kinds; other cells become components named after the cell (see
/// [`Imported::description`]). Flows drawn to nothing are dropped.
pub fn import(text: &str) -> Result<Imported, AssessError> {
    let bad = |m: &str| AssessError::ThreatDragon(m.to_string());
    let v: Value = aisec_core::json::from_str(
        text,
        &aisec_core::json::JsonLimits::SCAN.with_max_bytes(MAX_IMPORT_BYTES as usize),
    )
    .map_err(|e| AssessError::ThreatDragon(e.to_string()))?;
    let summary = v
        .get("summary")
        .ok_or_else(|| bad("no `summary`: not a Threat Dragon v2 model"))?;
    let diagrams = v
        .pointer("/detail/diagrams")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            bad("no `detail.diagrams`: not a Threat Dragon v2 model (v1 models are not read)")
        })?;
    let title = summary
        .get("title")
        .and_then(Value::as_str)
        .unwrap_or("imported model");
    let mut components: Vec<Component> = Vec::new();
    let mut by_cell: BTreeMap<String, String> = BTreeMap::new();
    let mut threats = Vec::new();
    let mut flows_raw = Vec::new();
    for dgm in diagrams {
        let Some(cells) = dgm.get("cells").and_then(Value::as_array) else {
            continue;
        };
        for cell in cells {
            let shape = cell.get("shape").and_then(Value::as_str).unwrap_or("");
            let data = cell.get("data").cloned().unwrap_or(Value::Null);
            let name = data
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .replace('\n', " ");
            let desc = data
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or("");
            let cell_id = cell
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let target;
            match shape {
                "actor" | "store" | "process" => {
                    let kind = marker(desc, "kind")
                        .and_then(ComponentKind::parse)
                        .unwrap_or(match shape {
                            "store" => ComponentKind::TrainingData,
                            _ => ComponentKind::Actor,
                        });
                    let mut id = marker(desc, "id")
                        .map(str::to_string)
                        .unwrap_or_else(|| slug(&name));
                    let base = id.clone();
                    let mut n = 2;
                    while components.iter().any(|c| c.id == id) {
                        id = format!("{base}-{n}");
                        n += 1;
                    }
                    let exposure = match marker(desc, "exposure") {
                        Some("public") => Exposure::Public,
                        Some("private") => Exposure::Private,
                        _ => Exposure::Internal,
                    };
                    let plain: String = desc
                        .lines()
                        .filter(|l| !l.starts_with("aisec: "))
                        .collect::<Vec<_>>()
                        .join("\n");
                    by_cell.insert(cell_id, id.clone());
                    target = id.clone();
                    components.push(placeholder(id, kind, name.clone(), plain.trim(), exposure));
                }
                "flow" => {
                    let src = cell
                        .pointer("/source/cell")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string();
                    let dst = cell
                        .pointer("/target/cell")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string();
                    target = format!("{src} -> {dst}");
                    flows_raw.push((src, dst, name.clone(), data.clone(), threats.len()));
                }
                _ => continue,
            }
            for t in data
                .get("threats")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let s = |k: &str| t.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                let description = s("description");
                let aisec_id = description
                    .lines()
                    .find_map(|l| l.strip_prefix("aisec threat: "))
                    .map(str::to_string);
                threats.push(ImportedThreat {
                    target: target.clone(),
                    title: s("title"),
                    stride: Stride::parse(&s("type")),
                    status: s("status"),
                    severity: s("severity"),
                    mitigation: s("mitigation"),
                    aisec_id,
                });
            }
        }
    }
    let mut flows = Vec::new();
    for (src, dst, name, data, _) in flows_raw {
        let (Some(from), Some(to)) = (by_cell.get(&src), by_cell.get(&dst)) else {
            continue; // a dangling flow (drawn to nothing) carries no system fact
        };
        for t in threats.iter_mut() {
            if t.target == format!("{src} -> {dst}") {
                t.target = format!("{from} -> {to}");
            }
        }
        flows.push(Flow {
            from: from.clone(),
            to: to.clone(),
            data: (!name.is_empty()).then_some(name),
            public_network: data
                .get("isPublicNetwork")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            encrypted: data
                .get("isEncrypted")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        });
    }
    let description = SystemDescription {
        system: SystemInfo {
            name: title.to_string(),
            owner: summary
                .get("owner")
                .and_then(Value::as_str)
                .map(str::to_string)
                .filter(|s| !s.is_empty()),
            description: summary
                .get("description")
                .and_then(Value::as_str)
                .map(str::to_string)
                .filter(|s| !s.is_empty()),
        },
        components,
        flows,
        budget: Default::default(),
    };
    Ok(Imported {
        description,
        threats,
    })
}

fn placeholder(
    id: String,
    kind: ComponentKind,
    name: String,
    desc: &str,
    exposure: Exposure,
) -> Component {
    Component {
        id,
        kind,
        name: (!name.is_empty()).then_some(name),
        description: (!desc.is_empty()).then(|| desc.to_string()),
        exposure,
        path: None,
        source: None,
        sensitive: false,
        inputs: None,
        labels: None,
        members: None,
        sensitive_attribute: None,
        positive_label: None,
        poison_manifest: None,
        input_name: None,
        input_shape: Vec::new(),
        classes: None,
        scale: None,
        lo: None,
        hi: None,
        outputs: Default::default(),
        url: None,
        api: None,
        model: None,
        system_prompt: None,
        tools: Vec::new(),
        secrets: Vec::new(),
        retrieval: false,
        policy: None,
        protects: Vec::new(),
        controls: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::threats::plan;

    fn schema() -> Value {
        serde_json::from_str(include_str!("../schema/threat-dragon-v2.schema.json")).unwrap()
    }

    /// The schema describes `threats` on the cell, but Threat Dragon (its
    /// demo models, its editor) keeps them in `cell.data.threats`, where
    /// aisec writes them; they are validated against the schema's threat
    /// item definition there.
    fn validate_with_threats(v: &Value) -> Vec<String> {
        let schema = schema();
        let mut errors = crate::jsonschema::validate(&schema, v);
        let item = schema
            .pointer("/properties/detail/properties/diagrams/items/properties/cells/items/properties/threats/items")
            .unwrap();
        for (i, cell) in v
            .pointer("/detail/diagrams/0/cells")
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
        {
            for (j, t) in cell
                .pointer("/data/threats")
                .unwrap()
                .as_array()
                .unwrap()
                .iter()
                .enumerate()
            {
                for e in crate::jsonschema::validate(item, t) {
                    errors.push(format!("cells[{i}].data.threats[{j}]{}", &e[1..]));
                }
            }
        }
        errors
    }

    #[test]
    fn export_is_valid_against_the_threat_dragon_v2_schema() {
        let d = SystemDescription::parse(crate::threats::tests_example()).unwrap();
        let m = plan(&d);
        let mut st = BTreeMap::new();
        st.insert(m.threats[0].id.clone(), Status::Mitigated);
        let v = export(&d, &m, &st);
        let errors = validate_with_threats(&v);
        assert!(errors.is_empty(), "{errors:#?}");
        let cells = v
            .pointer("/detail/diagrams/0/cells")
            .unwrap()
            .as_array()
            .unwrap();
        assert_eq!(cells.len(), d.components.len() + d.flows.len());
        let n: usize = cells
            .iter()
            .map(|c| {
                c.pointer("/data/threats")
                    .unwrap()
                    .as_array()
                    .unwrap()
                    .len()
            })
            .sum();
        assert_eq!(n, m.threats.len(), "every threat is on a cell");
        assert_eq!(
            v.pointer("/detail/threatTop").unwrap(),
            &json!(m.threats.len())
        );
    }

    #[test]
    fn the_example_systems_export_is_valid() {
        let d =
            SystemDescription::parse(include_str!("../../../examples/digits-service/aisec.toml"))
                .unwrap();
        let m = plan(&d);
        let v = export(&d, &m, &BTreeMap::new());
        let errors = validate_with_threats(&v);
        assert!(errors.is_empty(), "{errors:#?}");
        assert!(m.threats.len() >= 15);
    }

    #[test]
    fn the_validator_rejects_what_the_schema_forbids() {
        let d = SystemDescription::parse(crate::threats::tests_example()).unwrap();
        let mut v = export(&d, &plan(&d), &BTreeMap::new());
        v["detail"].as_object_mut().unwrap().remove("threatTop");
        v["detail"]["diagrams"][0]["cells"][1]["data"]["threats"][0]["severity"] = json!(3);
        v["detail"]["diagrams"][0]["cells"][0]["size"]["width"] = json!(2);
        let errors = validate_with_threats(&v);
        assert_eq!(errors.len(), 3, "{errors:#?}");
    }

    #[test]
    fn an_export_imports_back_to_the_same_system_and_threats() {
        let d = SystemDescription::parse(crate::threats::tests_example()).unwrap();
        let m = plan(&d);
        let v = export(&d, &m, &BTreeMap::new());
        let imp = import(&v.to_string()).unwrap();
        let ids: Vec<_> = imp
            .description
            .components
            .iter()
            .map(|c| (&c.id, c.kind))
            .collect();
        let want: Vec<_> = d.components.iter().map(|c| (&c.id, c.kind)).collect();
        assert_eq!(ids, want);
        assert_eq!(imp.description.flows.len(), d.flows.len());
        assert_eq!(imp.description.flows[0].from, "users");
        assert_eq!(imp.threats.len(), m.threats.len());
        for (a, b) in imp.threats.iter().zip(&m.threats) {
            assert_eq!(a.aisec_id.as_deref(), Some(b.id.as_str()));
            assert_eq!(a.stride, Some(b.stride));
            assert_eq!(a.target, b.target.label());
        }
    }

    #[test]
    fn threat_dragons_own_demo_model_imports() {
        let text = include_str!("../tests/fixtures/td-demo-v2.json");
        let v: Value = serde_json::from_str(text).unwrap();
        assert!(
            crate::jsonschema::validate(&schema(), &v).is_empty(),
            "the demo is valid"
        );
        let imp = import(text).unwrap();
        assert_eq!(imp.description.system.name, "Demo Threat Model");
        assert!(imp
            .description
            .components
            .iter()
            .any(|c| c.name.as_deref() == Some("Browser") && c.kind == ComponentKind::Actor));
        assert!(!imp.description.flows.is_empty());
        let t = imp
            .threats
            .iter()
            .find(|t| t.title == "Accessing DB credentials")
            .unwrap();
        assert_eq!(t.status, "Open");
        assert_eq!(t.stride, Some(Stride::InformationDisclosure));
        assert!(imp.threats.iter().any(|t| t.status == "Mitigated"));
        assert!(imp.description.validate().is_ok());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(import("not json").is_err());
        assert!(import("{}").is_err());
        assert!(import(r#"{"summary": {}, "detail": {"diagrams": 3}}"#).is_err());
        assert!(import(
            r#"{"summary": {}, "detail": {"diagrams": [{"cells": [{"shape": "flow"}]}]}}"#
        )
        .is_ok());
    }

    #[test]
    fn uuids_are_stable_and_well_formed() {
        let u = stable_uuid("component:cnn");
        assert_eq!(u, stable_uuid("component:cnn"));
        assert_ne!(u, stable_uuid("component:cnm"));
        let parts: Vec<_> = u.split('-').map(str::len).collect();
        assert_eq!(parts, vec![8, 4, 4, 4, 12]);
    }
}
