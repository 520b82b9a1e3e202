//! placeholder, written by the checklist task
