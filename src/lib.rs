//! ferry: agentless, Ansible-compatible provisioning over SSH.

pub mod error;
pub mod inventory;
pub mod yaml;
pub mod connection;
pub mod modules;
pub mod playbook;
pub mod template;
pub mod engine;
pub mod report;
pub mod cli;
pub mod config;
pub mod doc;
pub mod vault;
pub mod vault_cli;
