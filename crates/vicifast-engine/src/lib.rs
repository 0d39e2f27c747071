//! Tokio driver for the registration core.
