//! What people use to run arclist: the admin service, the HTTP listeners (one-click, admin API,
//! console, chain viewer) and operators' reports and checks.

pub mod admin;
pub mod operate;
pub mod web;
