//! `stathook channel …` and `stathook alert …`: requests to the alerts API
//! (docs/alerts.md) and how their replies print. The condition flags are turned into the
//! rule's JSON here; the server checks it and names what is wrong.

use super::{enc, s, time, Request};
use crate::cli::{AlertCommand, AlertRef, ChannelCommand, ChannelRef};
use hyper::Method;
use serde_json::{json, Value};

pub fn channel(cmd: ChannelCommand) -> Request {
    let path = |p: &str| format!("/api/v1/projects/{}/channels", enc(p));
    let one = |c: &ChannelRef| format!("{}/{}", path(&c.project), enc(&c.channel));
    match cmd {
        ChannelCommand::Add(add) => (
            Method::POST,
            path(&add.project),
            Some(channel_body(*add)),
            |v| {
                println!("Channel ID: {}", s(&v["id"]));
                if let Some(secret) = v["secret"].as_str() {
                    println!("Signing secret: {secret}");
                    println!("(shown this once: receivers verify webhook-signature with it)");
                }
            },
        ),
        ChannelCommand::List { project } => (Method::GET, path(&project), None, |v| {
            println!(
                "{:<20} {:<8} {:<8} {:<40} NAME",
                "ID", "TYPE", "FAILING", "URL"
            );
            for c in v["channels"].as_array().into_iter().flatten() {
                println!(
                    "{:<20} {:<8} {:<8} {:<40} {}",
                    s(&c["id"]),
                    s(&c["type"]),
                    if c["failing"] == true { "yes" } else { "no" },
                    s(&c["url"]),
                    s(&c["name"])
                );
            }
        }),
        ChannelCommand::Show(c) => (Method::GET, one(&c), None, |v| {
            println!(
                "{} ({}, {}) {}",
                s(&v["name"]),
                s(&v["type"]),
                s(&v["id"]),
                s(&v["url"])
            );
            println!(
                "{:<22} {:<10} {:<8} {:<7} ERROR",
                "AT", "OUTCOME", "EVENT", "STATUS"
            );
            for d in v["deliveries"].as_array().into_iter().flatten() {
                attempt_line(d);
            }
        }),
        ChannelCommand::Test(c) => (
            Method::POST,
            format!("{}/test", one(&c)),
            None,
            attempt_line,
        ),
        ChannelCommand::Remove(c) => (Method::DELETE, one(&c), None, |v| {
            println!("Removed channel {}", s(&v["deleted"]))
        }),
    }
}

/// The channel as the API takes it; an email channel's SMTP password from standard input.
fn channel_body(a: crate::cli::ChannelAdd) -> Value {
    if a.kind != "email" {
        let mut body = json!({"name": a.name, "type": a.kind});
        if let Some(url) = a.url {
            body["url"] = json!(url);
        }
        return body;
    }
    let mut smtp = json!({"host": a.smtp_host, "security": a.smtp_security});
    if let Some(p) = a.smtp_port {
        smtp["port"] = json!(p);
    }
    if let Some(u) = a.smtp_username {
        let mut password = String::new();
        let _ = std::io::stdin().read_line(&mut password);
        smtp["username"] = json!(u);
        smtp["password"] = json!(password.trim_end_matches(['\r', '\n']));
    }
    json!({"name": a.name, "type": "email", "to": a.to, "from": a.from, "smtp": smtp})
}

fn attempt_line(d: &Value) {
    let status = d["status"].as_u64().map_or("-".into(), |s| s.to_string());
    println!(
        "{:<22} {:<10} {:<8} {:<7} {}",
        time(&d["at"]),
        s(&d["outcome"]),
        s(&d["event"]),
        status,
        d["error"].as_str().unwrap_or("")
    );
}

/// "AGG WINDOW OP NUMBER" → its four parts.
fn spec<'a>(flag: &str, text: &'a str) -> Result<(&'a str, &'a str, &'a str, f64), String> {
    let parts: Vec<&str> = text.split_whitespace().collect();
    let bad =
        || format!("{flag} must look like \"avg 5m > 300\" (AGG WINDOW OP NUMBER); not {text:?}");
    let [agg, window, op, n] = parts.as_slice() else {
        return Err(bad());
    };
    Ok((agg, window, op, n.parse().map_err(|_| bad())?))
}

fn condition(
    threshold: Option<String>,
    clear: Option<f64>,
    absent_for: Option<String>,
    absent_cron: Option<String>,
    grace: Option<String>,
    change: Option<String>,
) -> Result<Value, String> {
    match (threshold, absent_for, absent_cron, change) {
        (Some(t), None, None, None) => {
            let (agg, window, op, value) = spec("--threshold", &t)?;
            let mut c = json!({"type": "threshold", "agg": agg, "window": window, "op": op, "value": value});
            if let Some(clear) = clear {
                c["clear"] = json!(clear);
            }
            Ok(c)
        }
        (None, Some(f), None, None) => Ok(json!({"type": "absence", "for": f})),
        (None, None, Some(cron), None) => {
            let mut c = json!({"type": "absence", "cron": cron});
            if let Some(g) = grace {
                c["grace"] = json!(g);
            }
            Ok(c)
        }
        (None, None, None, Some(ch)) => {
            let (agg, window, op, percent) = spec("--change", &ch)?;
            Ok(
                json!({"type": "change", "agg": agg, "window": window, "op": op, "percent": percent}),
            )
        }
        _ => Err("give exactly one of --threshold, --absent-for, --absent-cron, --change".into()),
    }
}

fn print_rule_line(r: &Value) {
    let value = r["value"].as_f64().map_or("-".into(), |v| v.to_string());
    println!(
        "{:<20} {:<8} {:<12} {:<24} {} ({})",
        s(&r["id"]),
        s(&r["state"]),
        value,
        s(&r["metricId"]),
        s(&r["name"]),
        s(&r["description"])
    );
}

pub fn alert(cmd: AlertCommand) -> Result<Request, String> {
    let path = |p: &str| format!("/api/v1/projects/{}/alerts", enc(p));
    let one = |r: &AlertRef| format!("{}/{}", path(&r.project), enc(&r.alert));
    Ok(match cmd {
        AlertCommand::Add(add) => {
            let crate::cli::AlertAdd {
                project,
                name,
                metric,
                threshold,
                clear,
                absent_for,
                absent_cron,
                grace,
                change,
                hold,
                repeat,
                channels,
                fire_on_no_data,
            } = *add;
            let mut body = json!({"name": name, "metricId": metric, "channels": channels,
                "condition": condition(threshold, clear, absent_for, absent_cron, grace, change)?,
                "fireOnNoData": fire_on_no_data});
            if let Some(h) = hold {
                body["for"] = json!(h);
            }
            if let Some(r) = repeat {
                body["repeatInterval"] = json!(r);
            }
            (Method::POST, path(&project), Some(body), |v| {
                println!("Alert ID: {}", s(&v["id"]));
                println!("Condition: {}", s(&v["description"]));
            })
        }
        AlertCommand::List { project } => (Method::GET, path(&project), None, |v| {
            println!(
                "{:<20} {:<8} {:<12} {:<24} NAME (CONDITION)",
                "ID", "STATE", "VALUE", "METRIC"
            );
            for r in v["alerts"].as_array().into_iter().flatten() {
                print_rule_line(r);
            }
        }),
        AlertCommand::Show(r) => (Method::GET, one(&r), None, |v| {
            print_rule_line(v);
            if let Some(m) = v["mutedUntil"].as_u64() {
                println!("muted until {}", time(&json!(m)));
            }
            println!("{:<22} {:<8} {:<8} VALUE", "AT", "FROM", "TO");
            for h in v["history"].as_array().into_iter().flatten() {
                let value = h["value"].as_f64().map_or("-".into(), |x| x.to_string());
                println!(
                    "{:<22} {:<8} {:<8} {value}",
                    time(&h["at"]),
                    s(&h["from"]),
                    s(&h["to"])
                );
            }
        }),
        AlertCommand::Mute { rule, duration } => {
            let ms = crate::query::plan::parse_duration_ms(&duration)
                .ok_or_else(|| format!("--for must be a duration like 2h; not {duration:?}"))?;
            (
                Method::PATCH,
                one(&rule),
                Some(json!({"mutedUntil": crate::clock::now_ms() + ms})),
                |v| println!("Muted {} until {}", s(&v["id"]), time(&v["mutedUntil"])),
            )
        }
        AlertCommand::Unmute(r) => (
            Method::PATCH,
            one(&r),
            Some(json!({"mutedUntil": null})),
            |v| println!("Unmuted {}", s(&v["id"])),
        ),
        AlertCommand::Remove(r) => (Method::DELETE, one(&r), None, |v| {
            println!("Removed alert {}", s(&v["deleted"]))
        }),
    })
}
