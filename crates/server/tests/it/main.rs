//! The `server` binary, run as a process: its operator commands, a graceful stop, many instances
//! on one database, and its traces.

mod cli;
mod traces;
