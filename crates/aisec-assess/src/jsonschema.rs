//! A test-only JSON Schema validator for the keywords Threat Dragon's v2
//! schema uses (`type` with unions, `properties`, `required`, `items`,
//! `minimum`, `minLength`, `maxLength`; `nullable` as OpenAPI means it),
//! so exports are checked against the real schema without a dependency.
//! Keywords it does not know make it fail loudly rather than pass quietly.
//! `scripts/assess/validate_threat_dragon.py` cross-checks with the
//! `jsonschema` package.

use serde_json::Value;

const KNOWN: &[&str] = &[
    "$id",
    "$schema",
    "title",
    "description",
    "type",
    "properties",
    "required",
    "items",
    "minimum",
    "minLength",
    "maxLength",
    "nullable",
];

/// Every violation of `schema` by `v`, as `path: message`.
pub(crate) fn validate(schema: &Value, v: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    check(schema, v, "$", &mut errors);
    errors
}

fn type_ok(t: &str, v: &Value) -> bool {
    match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "number" => v.is_number(),
        "integer" => v.as_i64().is_some() || v.as_u64().is_some(),
        "null" => v.is_null(),
        _ => false,
    }
}

fn check(s: &Value, v: &Value, path: &str, errors: &mut Vec<String>) {
    let Some(s) = s.as_object() else {
        errors.push(format!("{path}: schema is not an object"));
        return;
    };
    for k in s.keys() {
        if !KNOWN.contains(&k.as_str()) {
            errors.push(format!(
                "{path}: validator does not implement keyword '{k}'"
            ));
        }
    }
    if v.is_null() && s.get("nullable") == Some(&Value::Bool(true)) {
        return;
    }
    if let Some(t) = s.get("type") {
        let ok = match t {
            Value::String(t) => type_ok(t, v),
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).any(|t| type_ok(t, v)),
            _ => false,
        };
        if !ok {
            errors.push(format!("{path}: {v} is not of type {t}"));
            return;
        }
    }
    if let (Some(req), Some(o)) = (s.get("required").and_then(Value::as_array), v.as_object()) {
        for r in req.iter().filter_map(Value::as_str) {
            if !o.contains_key(r) {
                errors.push(format!("{path}: missing required '{r}'"));
            }
        }
    }
    if let (Some(props), Some(o)) = (
        s.get("properties").and_then(Value::as_object),
        v.as_object(),
    ) {
        for (k, sub) in props {
            if let Some(x) = o.get(k) {
                check(sub, x, &format!("{path}.{k}"), errors);
            }
        }
    }
    if let (Some(items), Some(a)) = (s.get("items"), v.as_array()) {
        for (i, x) in a.iter().enumerate() {
            check(items, x, &format!("{path}[{i}]"), errors);
        }
    }
    if let (Some(min), Some(x)) = (s.get("minimum").and_then(Value::as_f64), v.as_f64()) {
        if x < min {
            errors.push(format!("{path}: {x} is below the minimum {min}"));
        }
    }
    if let Some(x) = v.as_str() {
        let n = x.chars().count() as u64;
        if let Some(min) = s.get("minLength").and_then(Value::as_u64) {
            if n < min {
                errors.push(format!("{path}: shorter than {min}"));
            }
        }
        if let Some(max) = s.get("maxLength").and_then(Value::as_u64) {
            if n > max {
                errors.push(format!("{path}: longer than {max}"));
            }
        }
    }
}
