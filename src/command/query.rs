//! `stathook query`: one metric through `…/points`, several through `…/query`, printed as a
//! table, CSV or JSON.

use super::{enc, print_json, request};
use crate::cli::{OutputFormat, QueryArgs};
use hyper::Method;
use serde_json::Value;

pub fn query(a: QueryArgs) -> Result<(), String> {
    let mut q: Vec<(&str, String)> = Vec::new();
    let mut opt = |k: &'static str, v: Option<String>| {
        if let Some(v) = v {
            q.push((k, v));
        }
    };
    opt("from", a.from);
    opt("to", a.to);
    opt("step", a.step);
    opt("agg", a.agg);
    opt("maxPoints", a.max_points.map(|n| n.to_string()));
    opt("limit", a.limit.map(|n| n.to_string()));
    for w in a.filters {
        q.push(("where", w));
    }
    if a.format == OutputFormat::Csv {
        q.push(("format", "csv".into()));
    }
    let project = enc(&a.project);
    let path = match a.metrics.as_slice() {
        [one] => format!("/api/v1/projects/{project}/metrics/{}/points", enc(one)),
        many => {
            q.push(("metricIds", many.join(",")));
            format!("/api/v1/projects/{project}/query")
        }
    };
    let qs: Vec<String> = q.iter().map(|(k, v)| format!("{k}={}", enc(v))).collect();
    let path = format!("{path}?{}", qs.join("&"));
    let reply = request(&a.remote, a.key.as_deref(), Method::GET, &path, None)?;
    match a.format {
        OutputFormat::Csv => print!("{}", reply.as_str().unwrap_or_default()),
        OutputFormat::Json => print_json(&reply),
        OutputFormat::Table => print_table(&reply),
    }
    Ok(())
}

/// Points or aligned series as columns: TIMESTAMP (UTC ms) then one column per metric.
fn print_table(v: &Value) {
    let cell = |x: &Value| match x {
        Value::Null => "-".to_string(),
        other => other.to_string(),
    };
    if let Some(ts) = v["timestamps"].as_array() {
        let series = v["series"].as_array().cloned().unwrap_or_default();
        print!("{:<15}", "TIMESTAMP");
        for s in &series {
            print!(" {:>14}", s["metricId"].as_str().unwrap_or("?"));
        }
        println!();
        for (i, t) in ts.iter().enumerate() {
            print!("{:<15}", cell(t));
            for s in &series {
                print!(" {:>14}", cell(&s["values"][i]));
            }
            println!();
        }
        return;
    }
    let blocks: Vec<&Value> = match v["series"].as_array() {
        Some(series) => series.iter().collect(),
        None => vec![v],
    };
    for b in blocks {
        if v["series"].is_array() {
            println!("# {}", b["metricId"].as_str().unwrap_or("?"));
        }
        println!("{:<15} {:>14}  METADATA", "TIMESTAMP", "VALUE");
        for p in b["points"].as_array().into_iter().flatten() {
            let meta = if p["metadata"].is_null() {
                String::new()
            } else {
                p["metadata"].to_string()
            };
            println!(
                "{:<15} {:>14}  {meta}",
                cell(&p["timestamp"]),
                cell(&p["value"])
            );
        }
        if b["truncated"] == Value::Bool(true) {
            println!(
                "(more points: ask again with --from after the last timestamp, or raise --limit)"
            );
        }
    }
}
