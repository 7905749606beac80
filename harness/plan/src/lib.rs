//! Plan files: reading, validating and describing (JSON Schema) smbchaos test plans.
//!
//! ```no_run
//! let plan = smbchaos_plan::load(std::path::Path::new("plans/smoke.yaml"))?;
//! let addresses = smbchaos_plan::addresses(&plan);
//! # Ok::<(), smbchaos_plan::PlanError>(())
//! ```
//!
//! Every error is reported as `FILE:LINE:COL: MESSAGE`, one line per problem; semantic problems
//! are all collected, not just the first.

pub mod addresses;
mod cluster_checks;
pub mod duration;
pub mod error;
mod fault_checks;
pub mod model;
mod network_checks;
pub mod networks;
mod read;
pub mod schedule;
pub mod schema;
pub mod spanned;
pub mod units;
pub mod validate;

use std::path::Path;

pub use addresses::{addresses, public_addresses};
pub use cluster_checks::cluster_of;
pub use duration::{DurationError, PlanDuration};
pub use error::{PlanError, Problem};
pub use model::*;
pub use networks::{attachments, networks, Attachment, NetworkSpec};
pub use schedule::{schedule, Action, ImpairSpec, Scheduled};
pub use schema::json_schema;
pub use spanned::Spanned;

/// Read, parse and validate the plan file at `path`.
pub fn load(path: &Path) -> Result<Plan, PlanError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|error| PlanError::Read {
        file: file.clone(),
        error,
    })?;
    parse_str(&file, &text)
}

/// Parse and validate plan text; `file_name` is only used in error messages.
pub fn parse_str(file_name: &str, text: &str) -> Result<Plan, PlanError> {
    let plan = read::from_yaml(text).map_err(|p| invalid(file_name, vec![p]))?;
    let problems = validate::check(&plan, read::servers_location(text));
    if problems.is_empty() {
        Ok(plan)
    } else {
        Err(invalid(file_name, problems))
    }
}

/// Validate a plan built in code (or changed after loading). Problems about values built in
/// code have no location.
pub fn validate(file_name: &str, plan: &Plan) -> Result<(), PlanError> {
    let problems = validate::check(plan, None);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(invalid(file_name, problems))
    }
}

fn invalid(file_name: &str, mut problems: Vec<Problem>) -> PlanError {
    // One line per problem: no control characters from the file may break the layout.
    for p in &mut problems {
        if p.message.chars().any(char::is_control) {
            p.message = p
                .message
                .chars()
                .map(|c| {
                    if c.is_control() {
                        c.escape_debug().to_string()
                    } else {
                        c.to_string()
                    }
                })
                .collect();
        }
    }
    PlanError::Invalid {
        file: file_name.to_string(),
        problems,
    }
}
