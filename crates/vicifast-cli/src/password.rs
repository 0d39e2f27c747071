//! Where a password comes from on the command line: never a flag value (it would show in `ps`
//! and shell history), only standard input or an environment variable.

use crate::UsageError;
use clap::Args;
use std::io::BufRead;
use vicifast_engine::Password;

#[derive(Args, Debug, Default)]
pub struct PasswordArgs {
    /// Read the password from the first line of standard input.
    #[arg(long, conflicts_with = "password_env")]
    pub password_stdin: bool,
    /// Read the password from this environment variable.
    #[arg(long, value_name = "VAR")]
    pub password_env: Option<String>,
}

impl PasswordArgs {
    /// The password the flags point at; `None` when neither flag was given.
    pub fn read(&self) -> Result<Option<Password>, UsageError> {
        let secret = if self.password_stdin {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(UsageError::Stdin)?;
            line.trim_end_matches(['\r', '\n']).to_owned()
        } else if let Some(var) = &self.password_env {
            std::env::var(var).map_err(|_| UsageError::MissingEnv(var.clone()))?
        } else {
            return Ok(None);
        };
        if secret.is_empty() {
            return Err(UsageError::EmptyPassword);
        }
        Ok(Some(Password::new(secret)))
    }
}
