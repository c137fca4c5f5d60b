//! Integration tests of the HTTP API: a real server on 127.0.0.1:0 over a
//! temporary SQLite file, driven with reqwest. No sleeps: runs are awaited
//! with `?wait=true`.

mod bad_input;
mod budgets;
mod common;
mod failures;
mod fork;
mod inspector;
mod layout;
mod ledger;
mod live;
mod meta;
mod openapi;
mod origin;
mod parallel;
mod run_view;
mod story;
mod subworkflows;
mod ui;
