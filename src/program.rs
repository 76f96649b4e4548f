//! The helper's own name, as its messages and the commands they tell a
//! person to run say it. Below every module that words such a message
//! (the CLI, the Docker-config code), so none of them imports the CLI for
//! it.

/// This helper's program, as messages and commands to run name it.
pub(crate) const PROGRAM: &str = "docker-credential-exchange";
