//! `stathook project …` and `stathook metric …`: requests to the admin API's project and
//! metric endpoints, and how their replies print.

use super::{enc, s, Request};
use crate::cli::{MetricCommand, ProjectCommand, TierArg};
use hyper::Method;
use serde_json::{json, Value};

pub fn project(cmd: ProjectCommand) -> Request {
    match cmd {
        ProjectCommand::Create {
            name,
            id,
            tier,
            retention,
        } => {
            let tier = tier.map(TierArg::name);
            (
                Method::POST,
                "/api/v1/projects".into(),
                Some(json!({"name": name, "id": id, "tier": tier, "retention": retention})),
                |v| {
                    println!("Project ID: {}", s(&v["id"]));
                },
            )
        }
        ProjectCommand::List => (Method::GET, "/api/v1/projects".into(), None, |v| {
            println!("{:<24} {:<10} {:<10} NAME", "ID", "TIER", "RETENTION");
            for p in v["projects"].as_array().into_iter().flatten() {
                let retention = p["retention"].as_str().unwrap_or("default");
                println!(
                    "{:<24} {:<10} {:<10} {}",
                    s(&p["id"]),
                    s(&p["tier"]),
                    retention,
                    s(&p["name"])
                );
            }
        }),
        ProjectCommand::SetTier { project, tier } => (
            Method::PUT,
            format!("/api/v1/projects/{}/tier", enc(&project)),
            Some(json!({ "tier": tier.name() })),
            |v| println!("Project {}: tier {}", s(&v["id"]), s(&v["tier"])),
        ),
        ProjectCommand::SetLabels { project, keys } => (
            Method::PUT,
            format!("/api/v1/projects/{}/labels", enc(&project)),
            Some(json!({ "labelKeys": keys })),
            |v| {
                let keys: Vec<&str> = v["labelKeys"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                if keys.is_empty() {
                    println!("Project {}: no metadata labels", s(&v["id"]));
                } else {
                    println!(
                        "Project {}: metadata labels {}",
                        s(&v["id"]),
                        keys.join(", ")
                    );
                }
            },
        ),
        ProjectCommand::SetRetention { project, retention } => {
            let value = if retention == "default" {
                Value::Null
            } else {
                Value::String(retention)
            };
            (
                Method::PUT,
                format!("/api/v1/projects/{}/retention", enc(&project)),
                Some(json!({ "retention": value })),
                |v| {
                    let r = v["retention"].as_str().unwrap_or("default (the server's)");
                    println!("Project {}: retention {r}", s(&v["id"]));
                },
            )
        }
    }
}

pub fn metric(cmd: MetricCommand) -> Request {
    match cmd {
        MetricCommand::Delete { project, metric } => (
            Method::DELETE,
            format!(
                "/api/v1/projects/{}/metrics/{}",
                enc(&project),
                enc(&metric)
            ),
            None,
            |v| {
                println!(
                    "Deleted metric {} of project {}",
                    s(&v["metricId"]),
                    s(&v["projectId"])
                );
            },
        ),
    }
}
