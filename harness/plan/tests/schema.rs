//! The committed JSON Schema must match the one generated from the Rust types.

use std::path::PathBuf;

fn committed_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(smbchaos_plan::schema::SCHEMA_PATH)
}

#[test]
fn committed_schema_is_current() {
    let generated = smbchaos_plan::json_schema();
    let path = committed_path();
    if std::env::var_os("SMBCHAOS_BLESS").is_some_and(|v| v == "1") {
        let text = serde_json::to_string_pretty(&generated).unwrap() + "\n";
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        return;
    }
    let committed: Option<serde_json::Value> = std::fs::read_to_string(&path)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok());
    assert!(
        committed.as_ref() == Some(&generated),
        "{} is missing or differs from the schema generated from the plan types; regenerate it with\n    \
         cargo run -p smbchaos -- schema > plans/schema/plan.schema.json\n\
         (or SMBCHAOS_BLESS=1 cargo test -p smbchaos-plan --test schema) and commit it",
        smbchaos_plan::schema::SCHEMA_PATH
    );
}

#[test]
fn schema_describes_the_plan() {
    let schema = smbchaos_plan::json_schema();
    assert_eq!(schema["title"], "Plan");
    assert_eq!(schema["additionalProperties"], false);
    let required = schema["required"].as_array().unwrap();
    for key in ["version", "name", "topology"] {
        assert!(required.iter().any(|r| r == key), "{key} not required");
    }
    assert_eq!(schema["properties"]["version"]["type"], "integer");
    assert_eq!(schema["$defs"]["PlanDuration"]["type"], "string");
}
