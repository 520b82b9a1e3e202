//! The OpenAPI schemas of the core's types that the API sends or takes as they are
//! ([`Reply`], [`SearchResult`], the checklist's and the estimate's input and output, stored
//! transcript lines and unanswered questions).
//!
//! The core knows nothing of HTTP, so it does not derive the OpenAPI crate's traits; its JSON
//! forms are fixed by `../shared/spec/cli.md` (decimals as strings with two places, slots
//! parsed by the guidance modules with errors that name the field), and described here once,
//! in `core_schemas.json`, as the schemas of those Rust types. The API's own request and
//! response types (in `http` and `console`) derive theirs. Schemathesis checks every response
//! against these (`tests/schemathesis/run.sh`).

use std::borrow::Cow;

use utoipa::openapi::{RefOr, Schema};

use crate::assistant::Reply;
use crate::guidance::checklist::{Checklist, Situation};
use crate::guidance::estimate::{Estimate, EstimateInput};
use crate::search::SearchResult;
use crate::store::{TranscriptLine, UnansweredQuestion};

const CORE_SCHEMAS: &str = include_str!("core_schemas.json");

/// The schema of `name` in `core_schemas.json`.
fn core_schema(name: &str) -> RefOr<Schema> {
    let all: serde_json::Value =
        serde_json::from_str(CORE_SCHEMAS).expect("core_schemas.json is JSON (tested)");
    serde_json::from_value(all[name].clone()).expect("core_schemas.json holds schemas (tested)")
}

macro_rules! core_schemas {
    ($($ty:ty => $name:literal),* $(,)?) => {
        $(
            impl utoipa::PartialSchema for $ty {
                fn schema() -> RefOr<Schema> {
                    core_schema($name)
                }
            }

            impl utoipa::ToSchema for $ty {
                fn name() -> Cow<'static, str> {
                    Cow::Borrowed($name)
                }
            }
        )*

        /// Every schema above, by name (for the document's components).
        pub fn all() -> Vec<(String, RefOr<Schema>)> {
            vec![$(($name.to_string(), core_schema($name))),*]
        }
    };
}

core_schemas! {
    Reply => "Reply",
    SearchResult => "SearchResult",
    Situation => "Situation",
    Checklist => "Checklist",
    EstimateInput => "EstimateInput",
    Estimate => "Estimate",
    TranscriptLine => "TranscriptLine",
    UnansweredQuestion => "UnansweredQuestion",
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_core_schema_is_an_object_schema() {
        let all: serde_json::Value = serde_json::from_str(CORE_SCHEMAS).unwrap();
        let names = all.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        let listed = super::all().into_iter().map(|(n, _)| n).collect::<Vec<_>>();
        let mut sorted = listed.clone();
        sorted.sort();
        let mut names_sorted = names.clone();
        names_sorted.sort();
        assert_eq!(
            sorted, names_sorted,
            "every schema in the file has its type"
        );
        for (name, schema) in super::all() {
            assert!(
                matches!(schema, RefOr::T(Schema::Object(_))),
                "{name} is an object schema"
            );
        }
    }
}
