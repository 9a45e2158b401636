//! ferry: agentless, Ansible-compatible provisioning over SSH.

pub mod cli;
pub mod config;
pub mod connection;
pub mod doc;
pub mod engine;
pub mod error;
pub mod inventory;
pub mod modules;
pub mod playbook;
pub mod report;
pub mod template;
pub mod vault;
pub mod vault_cli;
pub mod yaml;
