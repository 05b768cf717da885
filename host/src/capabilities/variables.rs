//! `fermyon:spin/variables`: the component's own `[component.x.variables]`, rendered at start.

use crate::bindings::fermyon::spin2_0_0::variables::{Error, Host};
use crate::state::InstanceState;

impl Host for InstanceState {
    async fn get(&mut self, name: String) -> wasmtime::Result<Result<String, Error>> {
        // Spin normalises names to its variable syntax; anything else can never be declared.
        let valid = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid {
            return Ok(Err(Error::InvalidName(format!(
                "{name:?} is not a valid variable name"
            ))));
        }
        Ok(match self.caps.variables.get(&name) {
            Some(v) => Ok(v.clone()),
            None => Err(Error::Undefined(format!(
                "no variable {name:?} for component {:?}",
                self.caps.id
            ))),
        })
    }
}
