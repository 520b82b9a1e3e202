//! The finishing touches of the served OpenAPI document that depend on the loaded data or
//! that the derive cannot express: the slot vocabulary as a typed schema (`Slots`, from
//! `dialogs/slots.toml` as loaded, so the document says exactly which slots and values a
//! conversation keeps), `scheme` required where every loaded policy needs it, examples of
//! the main schemas made by the running assistant itself (so they are always true), and
//! the descriptions a derive drops (a field's doc on an optional reference, a field with a
//! hand-written schema, the search types).

use serde_json::{Map, Value, json};

use crate::assistant::Assistant;
use crate::dialog::engine::SessionState;
use crate::dialog::slots::SlotKind;
use crate::guidance::checklist::{self, Situation};
use crate::guidance::estimate::{self, EstimateInput};
use crate::guidance::policy::{ParamTree, PersonSlot, Policy};

/// Descriptions of fields whose types come from elsewhere (the search) or whose schema is
/// written by hand (where the derive keeps no doc): (schema, property, description).
const DESCRIPTIONS: &[(&str, &str, &str)] = &[
    ("SearchResult", "query", "the question as asked"),
    (
        "SearchResult",
        "hits",
        "the best entries, best first (at most `limit`)",
    ),
    (
        "SearchResult",
        "also",
        "entries related to the first hit, for \"see also\"",
    ),
    ("Hit", "id", "the FAQ entry's id (`GET /v1/faq/{id}`)"),
    ("Hit", "question", "the entry's main question"),
    (
        "BandAmount",
        "upper",
        "the band's upper bound; null for the unbounded last band",
    ),
    (
        "BandAmount",
        "factor",
        "the band's rate as written in the policy (0.80 = 80 %)",
    ),
    (
        "EstimateInput",
        "hospital_level",
        "医院等级: 1, 2 or 3 (一级, 二级, 三级)",
    ),
];

/// The document as served: `doc` (the derive's) finished with what `assistant` loaded.
pub fn finish(doc: &utoipa::openapi::OpenApi, assistant: &Assistant) -> String {
    let mut doc = serde_json::to_value(doc).unwrap_or_default();
    if let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        hoist_descriptions(schemas);
        for (schema, property, description) in DESCRIPTIONS {
            if let Some(p) = schemas
                .get_mut(*schema)
                .and_then(|s| s.pointer_mut(&format!("/properties/{property}")))
                .and_then(Value::as_object_mut)
            {
                p.entry("description").or_insert_with(|| json!(description));
            }
        }
        typed_slots(schemas, assistant);
        scheme_requirement(schemas, assistant);
        for (name, example) in examples(assistant) {
            if let Some(s) = schemas.get_mut(name).and_then(Value::as_object_mut) {
                s.insert("examples".into(), json!([example]));
            }
        }
    }
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

/// An optional reference (`oneOf: [{$ref, description}, {type: null}]`) keeps its field's
/// doc inside the reference: said on the property itself too, where readers look.
fn hoist_descriptions(schemas: &mut Map<String, Value>) {
    for schema in schemas.values_mut() {
        let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) else {
            continue;
        };
        for prop in props.values_mut() {
            let Some(p) = prop.as_object_mut() else {
                continue;
            };
            if p.contains_key("description") {
                continue;
            }
            let inner = p
                .get("oneOf")
                .and_then(Value::as_array)
                .and_then(|alts| alts.iter().find_map(|a| a.get("description").cloned()));
            if let Some(d) = inner {
                p.insert("description".into(), d);
            }
        }
    }
}

/// `Slots`: every slot of the loaded vocabulary with its values (choice slots: an enum;
/// amounts: decimal strings; counts: digit strings); the replies', sessions' and agents'
/// `slots` refer to it instead of an untyped map.
fn typed_slots(schemas: &mut Map<String, Value>, assistant: &Assistant) {
    let mut properties = Map::new();
    for (name, def) in &assistant.dialogs.slots.defs {
        let schema = match def.kind {
            SlotKind::Choice => json!({
                "type": "string",
                "enum": def.values.iter().map(|v| v.value.clone()).collect::<Vec<_>>(),
                "description": format!(
                    "{}: {}",
                    def.title,
                    def.values
                        .iter()
                        .map(|v| format!("{} ({})", v.value, v.label))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }),
            SlotKind::Money => json!({
                "type": "string",
                "pattern": "^[0-9]+(\\.[0-9]{1,2})?$",
                "description": format!("{}: yuan, a decimal with at most two places", def.title),
            }),
            SlotKind::Integer => json!({
                "type": "string",
                "pattern": "^[0-9]+$",
                "description": format!("{}: a whole number", def.title),
            }),
            SlotKind::Text => json!({
                "type": "string",
                "maxLength": 40,
                "description": format!("{}: words, as the user named it", def.title),
            }),
        };
        properties.insert(name.clone(), schema);
    }
    schemas.insert(
        "Slots".into(),
        json!({
            "type": "object",
            "description": "what a conversation knows of the user's situation: slot names and \
                            values of dialogs/slots.toml (checklist.md and estimate.md slots), \
                            each absent until known; values are strings",
            "properties": properties,
            "additionalProperties": false,
            "examples": [{"insured_region": "suzhou", "employment": "retired", "care_location": "shanghai"}],
        }),
    );
    for (schema, property) in [
        ("Reply", "slots"),
        ("Session", "slots"),
        ("SituationSlots", "slots"),
    ] {
        if let Some(p) = schemas
            .get_mut(schema)
            .and_then(|s| s.pointer_mut(&format!("/properties/{property}")))
        {
            let description = p.get("description").cloned();
            let mut typed = json!({ "$ref": "#/components/schemas/Slots" });
            if let Some(d) = description {
                typed["description"] = d;
            }
            *p = typed;
        }
    }
}

/// Whether `policy` sets its parameters by scheme (职工 / 居民), so an estimate needs it.
fn needs_scheme(policy: &Policy) -> bool {
    [&policy.inpatient, &policy.outpatient]
        .into_iter()
        .flatten()
        .any(|tree| {
            matches!(
                tree,
                ParamTree::Split {
                    slot: PersonSlot::Scheme,
                    ..
                }
            )
        })
}

/// `scheme` of an estimate input: required when every loaded policy needs it (the shipped
/// ones all do), else the description names the policies that do.
fn scheme_requirement(schemas: &mut Map<String, Value>, assistant: &Assistant) {
    let Some(input) = schemas.get_mut("EstimateInput") else {
        return;
    };
    let needing: Vec<&str> = assistant
        .policies
        .iter()
        .filter(|p| needs_scheme(p))
        .map(|p| p.id.as_str())
        .collect();
    let all = !needing.is_empty() && needing.len() == assistant.policies.len();
    let description = if all {
        format!(
            "参保险种: employee (职工医保) or resident (城乡居民医保). Required: every policy \
             ({}) sets its parameters by it; missing, it is a 422 naming scheme.",
            needing.join(", ")
        )
    } else if needing.is_empty() {
        "参保险种: employee (职工医保) or resident (城乡居民医保).".to_string()
    } else {
        format!(
            "参保险种: employee (职工医保) or resident (城乡居民医保). Required with the \
             policies {} (a 422 naming scheme without it).",
            needing.join(", ")
        )
    };
    if let Some(p) = input
        .pointer_mut("/properties/scheme")
        .and_then(Value::as_object_mut)
    {
        p.insert("description".into(), json!(description));
        if all {
            // present and not null
            p.remove("oneOf");
            p.insert("$ref".into(), json!("#/components/schemas/Scheme"));
        }
    }
    if all
        && let Some(required) = input.get_mut("required").and_then(Value::as_array_mut)
        && !required.contains(&json!("scheme"))
    {
        required.push(json!("scheme"));
    }
}

/// Examples of the main schemas, made by the assistant as it is loaded.
fn examples(a: &Assistant) -> Vec<(&'static str, Value)> {
    let mut out: Vec<(&'static str, Value)> = Vec::new();
    let mut push = |name: &'static str, v: Option<Value>| {
        if let Some(v) = v {
            out.push((name, v));
        }
    };
    let reply = a.handle(&mut SessionState::new(), "起付线是什么");
    push("Reply", serde_json::to_value(&reply).ok());
    push(
        "SearchResult",
        serde_json::to_value(a.search.search("社保卡在外地医院刷不了怎么办", 3)).ok(),
    );
    let situation = json!({
        "insured_region": "suzhou", "scheme": "employee", "employment": "retired",
        "care_location": "shanghai", "filing_type": "long_term_resident", "filed": false,
        "stage": "before_care", "visit": "inpatient", "by_proxy": false
    });
    let checklist = Situation::from_json(&situation)
        .ok()
        .and_then(|s| checklist::checklist(&s, &a.checklist_texts).ok());
    if let Some(c) = checklist {
        push("Situation", Some(situation));
        push("Checklist", serde_json::to_value(c).ok());
    }
    let input = json!({
        "policy": "suzhou", "visit": "inpatient", "hospital_level": 3,
        "filing_type": "long_term_resident", "filed": true, "total": "50000",
        "scheme": "employee", "employment": "retired", "admissions_before": 0
    });
    let estimated = EstimateInput::from_json(&input)
        .ok()
        .and_then(|i| estimate::estimate(&a.policies, &i).ok());
    if let Some(e) = estimated {
        push("EstimateInput", Some(input));
        push("Estimate", serde_json::to_value(e).ok());
    }
    push(
        "ErrorBody",
        Some(json!({"error": {
            "code": "invalid_field", "field": "total",
            "message": "金额超过一千万元，请检查是否多输了位数。"
        }})),
    );
    push(
        "Message",
        Some(json!({"text": "异地就医备案要带什么材料？"})),
    );
    if let Some(faq) = a.knowledge.faqs.first() {
        push(
            "Feedback",
            Some(json!({"helpful": true, "faq_id": faq.id, "comment": "说得很清楚，谢谢"})),
        );
    }
    push(
        "NewSession",
        serde_json::to_value(a.welcome()).ok().map(|welcome| {
            json!({
                "session_id": "3f2a9c1e5b7d4a608e1f2c3d4b5a6978",
                "token": "q8Zk3mN0vX2pL7rT4yW9aB6cD1eF5gH8jK0lM3nP2sQ",
                "welcome": welcome,
            })
        }),
    );
    out
}
