//! Stores for workspace-billing (PostgreSQL and embedded SQLite). Work in progress: see the issues.
#![forbid(unsafe_code)]
