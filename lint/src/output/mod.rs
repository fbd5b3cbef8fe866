//! The output formats: one file each. Every format carries the same findings; only the shape
//! differs.

pub mod json;
pub mod junit;
pub mod sarif;
pub mod text;
