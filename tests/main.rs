//! All integration tests in one binary (faster to build and link). Each test starts a real
//! server on 127.0.0.1:0 with a temp data dir and speaks real HTTP to it.

mod support;

mod admin;
mod alerts;
mod browser;
mod cli;
mod crash;
mod damage;
mod fleet;
mod forward;
mod full_disk;
mod hardening;
mod hostile;
mod keys;
mod prom;
mod push;
mod push_clients;
mod query;
mod ratelimit;
mod share;
mod storage;
mod tidy;
mod tls;
mod web;
mod webhook;
