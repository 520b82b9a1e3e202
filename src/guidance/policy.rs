//! placeholder, written by the estimate task
