//! Integration tests: one binary, shared helpers, the real `yidi` executable.

mod cli;
mod helpers;
