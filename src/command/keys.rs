//! `stathook webhook …` and `stathook key …`: webhook connections, read keys, rotation,
//! revocation and usage, as requests to the admin API and their printed replies. A new key
//! is printed once, the way the spec's Step 2 shows it.

use super::{enc, print_json, s, time, Request};
use crate::cli::{KeyCommand, ScopeArg, WebhookCommand};
use hyper::Method;
use serde_json::{json, Value};

fn print_key(v: &Value) {
    println!("Webhook URL: {}", s(&v["webhookUrl"]));
    println!("API Key: {}", s(&v["apiKey"]));
    println!("Project ID: {}", s(&v["projectId"]));
    eprintln!(
        "Webhook ID: {} (copy the API key now: it is not shown again)",
        s(&v["webhook"]["id"])
    );
}

pub fn webhook(cmd: WebhookCommand) -> Request {
    match cmd {
        WebhookCommand::Create { project, name } => (
            Method::POST,
            format!("/api/v1/projects/{}/webhooks", enc(&project)),
            Some(json!({"name": name})),
            print_key,
        ),
        WebhookCommand::List { project } => {
            let q = project
                .map(|p| format!("?projectId={}", enc(&p)))
                .unwrap_or_default();
            (Method::GET, format!("/api/v1/webhooks{q}"), None, |v| {
                println!(
                    "{:<20} {:<24} {:<8} {:<12} {:>8} {:<20} NAME",
                    "ID", "PROJECT", "STATUS", "KEY", "KEY AGE", "LAST USED"
                );
                for w in v["webhooks"].as_array().into_iter().flatten() {
                    let age = format!(
                        "{}d{}",
                        w["keyAgeDays"].as_i64().unwrap_or(0),
                        if w["keyTooOld"] == true { "!" } else { "" }
                    );
                    println!(
                        "{:<20} {:<24} {:<8} {:<12} {:>8} {:<20} {}",
                        s(&w["id"]),
                        s(&w["projectId"]),
                        s(&w["status"]),
                        s(&w["keyPrefix"]),
                        age,
                        time(&w["lastUsedAt"]),
                        s(&w["name"])
                    );
                }
                if v["webhooks"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|w| w["keyTooOld"] == true)
                {
                    eprintln!("(!: older than the server's --max-key-age; rotate with 'stathook key rotate --webhook ID --grace 1h')");
                }
            })
        }
        WebhookCommand::Usage { id, json } => (
            Method::GET,
            format!("/api/v1/webhooks/{}/usage", enc(&id)),
            None,
            if json { print_json } else { print_usage },
        ),
    }
}

fn print_read_key(v: &Value) {
    println!("API Key: {}", s(&v["apiKey"]));
    println!("Key ID: {}", s(&v["webhook"]["id"]));
    println!("Scope: {}", s(&v["webhook"]["scope"]));
    println!("Project ID: {}", s(&v["projectId"]));
    eprintln!("(copy the API key now: it is not shown again)");
}

pub fn key(cmd: KeyCommand) -> Request {
    match cmd {
        KeyCommand::Create {
            project,
            scope,
            name,
        } => (
            Method::POST,
            format!("/api/v1/projects/{}/keys", enc(&project)),
            Some(json!({
                "scope": if scope == ScopeArg::Read { "read" } else { "ingest" },
                "name": name,
            })),
            |v| {
                if v["webhook"]["scope"] == "read" {
                    print_read_key(v)
                } else {
                    print_key(v)
                }
            },
        ),
        KeyCommand::List { project } => (
            Method::GET,
            format!("/api/v1/projects/{}/keys", enc(&project)),
            None,
            |v| {
                println!(
                    "{:<20} {:<7} {:<8} {:<12} NAME",
                    "ID", "SCOPE", "STATUS", "KEY"
                );
                for w in v["keys"].as_array().into_iter().flatten() {
                    println!(
                        "{:<20} {:<7} {:<8} {:<12} {}",
                        s(&w["id"]),
                        s(&w["scope"]),
                        s(&w["status"]),
                        s(&w["keyPrefix"]),
                        s(&w["name"])
                    );
                }
            },
        ),
        KeyCommand::Rotate { webhook, grace } => (
            Method::POST,
            format!(
                "/api/v1/webhooks/{}/rotate{}",
                enc(&webhook),
                grace
                    .map(|g| format!("?grace={}", enc(&g)))
                    .unwrap_or_default()
            ),
            None,
            |v| {
                print_key(v);
                for g in v["webhook"]["graceKeys"].as_array().into_iter().flatten() {
                    eprintln!(
                        "The old key {}… keeps working until {}",
                        s(&g["keyPrefix"]),
                        time(&g["validUntil"])
                    );
                }
            },
        ),
        KeyCommand::Revoke { webhook } => (
            Method::POST,
            format!("/api/v1/webhooks/{}/revoke", enc(&webhook)),
            None,
            |v| {
                println!("Revoked the API key of webhook {}", s(&v["webhook"]["id"]));
            },
        ),
    }
}

fn print_usage(v: &Value) {
    let w = &v["webhook"];
    let r = &v["rejected"];
    let n = |v: &Value| v.as_u64().unwrap_or(0);
    println!(
        "Webhook: {} ({}) key {}…, {}",
        s(&w["id"]),
        s(&w["name"]),
        s(&w["keyPrefix"]),
        s(&w["status"])
    );
    println!("Accepted requests: {}", n(&v["accepted"]));
    println!("Samples stored: {}", n(&v["samplesStored"]));
    println!(
        "Rejected requests: {} (auth {}, validation {}, rate limit {}, size {}, unavailable {})",
        n(&v["rejectedTotal"]),
        n(&r["auth"]),
        n(&r["validation"]),
        n(&r["rateLimit"]),
        n(&r["size"]),
        n(&r["unavailable"])
    );
    println!(
        "Last used: {} from {}",
        time(&v["lastUsedAt"]),
        s(&v["lastSourceIp"])
    );
    let busy: Vec<&Value> = v["hourly"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|h| n(&h["accepted"]) + n(&h["rejected"]) > 0)
        .collect();
    if !busy.is_empty() {
        println!(
            "\n{:<20} {:>10} {:>10} {:>12}",
            "HOUR (UTC)", "ACCEPTED", "REJECTED", "SAMPLES"
        );
        for h in busy {
            println!(
                "{:<20} {:>10} {:>10} {:>12}",
                time(&h["hourStart"]),
                n(&h["accepted"]),
                n(&h["rejected"]),
                n(&h["samples"])
            );
        }
    }
}
