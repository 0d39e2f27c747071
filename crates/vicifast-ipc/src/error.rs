//! Errors a command rejects with: `{code, message, field?}` on the wire (docs/ipc-contract.md).

use serde::{Deserialize, Serialize};

/// Why a command failed, in words for the call-center agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[error("{message}")]
pub struct CommandError {
    /// Stable, machine-readable: `invalid`, `settings_file`, `credentials`, `not_configured`,
    /// `no_password`, `autostart`, `unreachable` (the window cannot reach the tray process).
    pub code: String,
    pub message: String,
    /// The settings field at fault, for validation errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub field: Option<String>,
}

impl CommandError {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.to_owned(),
            message: message.into(),
            field: None,
        }
    }

    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: "invalid".to_owned(),
            message: message.into(),
            field: Some(field.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_without_field_when_none() {
        let e = CommandError::new("credentials", "The keychain is locked.");
        assert_eq!(
            serde_json::to_value(&e).ok(),
            Some(serde_json::json!({"code": "credentials", "message": "The keychain is locked."}))
        );
        let e = CommandError::invalid("server", "Enter the server.");
        assert_eq!(
            serde_json::to_value(&e).ok(),
            Some(
                serde_json::json!({"code": "invalid", "message": "Enter the server.", "field": "server"})
            )
        );
    }
}
