//! ferry: agentless, Ansible-compatible provisioning over SSH.

pub mod error;
pub mod inventory;
pub mod yaml;
pub mod connection;
pub mod modules;
pub mod playbook;
pub mod template;
