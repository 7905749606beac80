//! The plan's JSON Schema, generated from the Rust types.

use crate::model::Plan;

/// Where the committed copy of the schema lives, relative to the repository root.
pub const SCHEMA_PATH: &str = "plans/schema/plan.schema.json";

/// JSON Schema (draft 2020-12) of a plan file. `cargo run -p smbchaos -- schema` prints it.
pub fn json_schema() -> serde_json::Value {
    schemars::schema_for!(Plan).to_value()
}
