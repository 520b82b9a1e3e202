//! Guidance: the filing/reimbursement checklist and the reimbursement estimate, as pure
//! functions of the user's situation (slots) and the policies in `knowledge/`.
//! Money is `rust_decimal::Decimal` from parse to render; never a float.

pub mod checklist;
pub mod estimate;
pub mod policy;
pub mod region;
pub mod values;

use serde::Serialize;

/// An input problem, naming the field (slot) it concerns. `message` is Chinese, for users.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}
