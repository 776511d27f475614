//! Widget data (each stored widget's queries, run by the server) and share links: what a
//! link opens, what it does not, and its end by revocation or by the dashboard's deletion.

use crate::support::*;
use crate::web::{add_user, sign_in};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

const HOUR: i64 = 3_600_000;

/// A project with two metrics over the last two hours and a dashboard of one widget of each
/// kind that draws them; returns the dashboard as stored.
async fn dashboard_with_data(c: &Client, key: &str) -> (Value, i64) {
    let t0 = (now_ms() / HOUR - 2) * HOUR;
    let mut points = Vec::new();
    for i in 0..120 {
        let ts = t0 + i * 60_000;
        points.push(metric("signups", i as f64 + 0.5, ts));
        if i % 10 == 0 {
            points.push(metric("backup_done", 1.0, ts));
        }
    }
    for chunk in points.chunks(100) {
        let r = c.post(key, &batch("p1", chunk.to_vec())).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
    }
    let body = json!({"name": "Ops", "widgets": [
        {"type": "line", "metricIds": ["signups", "never_sent"], "agg": "max", "w": 8},
        {"type": "stat", "metricIds": ["signups"], "agg": "sum", "x": 8, "w": 4},
        {"type": "table", "metricIds": ["signups", "backup_done"], "y": 4},
        {"type": "heartbeat", "metricIds": ["backup_done"], "expectedIntervalS": 600, "y": 8}]});
    let r = c
        .admin(Method::POST, "/api/v1/projects/p1/dashboards", Some(body))
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    (r.body, t0)
}

fn widget_id(dash: &Value, i: usize) -> String {
    dash["widgets"][i]["id"].as_str().unwrap().to_owned()
}

async fn anonymous(c: &Client, path: &str) -> Reply {
    c.send(c.http.get(format!("{}{path}", c.url))).await
}

#[tokio::test]
async fn each_widget_kind_answers_what_it_draws() {
    let (_dir, s, c, key) = Server::with_project("p1").await;
    let (dash, t0) = dashboard_with_data(&c, &key).await;
    let base = format!(
        "/api/v1/projects/p1/dashboards/{}/widgets",
        dash["id"].as_str().unwrap()
    );
    let range = format!("from={t0}&to={}", t0 + 2 * HOUR - 1);

    // A chart: one column per metric on shared timestamps; one never sent is all gaps.
    let r = c
        .get(&format!(
            "{base}/{}/data?{range}&maxPoints=2",
            widget_id(&dash, 0)
        ))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["step"], HOUR);
    assert_eq!(r.body["agg"], "max");
    assert_eq!(r.body["timestamps"], json!([t0, t0 + HOUR]));
    assert_eq!(r.body["series"][0]["metricName"], "signups name");
    assert_eq!(r.body["series"][0]["unit"], "count");
    assert_eq!(r.body["series"][0]["values"], json!([59.5, 119.5]));
    assert_eq!(r.body["series"][1]["values"], json!([null, null]));

    // A stat: the sum over the range, the period before it (empty), a sparkline.
    let r = c
        .get(&format!("{base}/{}/data?{range}", widget_id(&dash, 1)))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let sum: f64 = (0..120).map(|i| i as f64 + 0.5).sum();
    assert_eq!(r.body["value"].as_f64(), Some(sum));
    assert_eq!(r.body["previous"], Value::Null);
    assert!(r.body["spark"]["values"].as_array().unwrap().len() > 1);
    assert_eq!(r.body["lastTimestamp"], t0 + 119 * 60_000);

    // A table: the latest values, whatever the range.
    let r = c.get(&format!("{base}/{}/data", widget_id(&dash, 2))).await;
    assert_eq!(r.body["rows"][0]["lastValue"], json!(119.5));
    assert_eq!(r.body["rows"][1]["metricId"], "backup_done");

    // A heartbeat strip: slots of the expected interval, those with a sample listed.
    let r = c
        .get(&format!("{base}/{}/data?{range}", widget_id(&dash, 3)))
        .await;
    assert_eq!(r.body["step"], 600_000);
    let beats = r.body["beats"].as_array().unwrap();
    assert_eq!(beats.len(), 12);
    assert_eq!(beats[1], t0 + 600_000);

    // CSV of a stat gives its value, not a chart's columns.
    let csv = c
        .http
        .get(format!(
            "{}{base}/{}/data?{range}&format=csv",
            c.url,
            widget_id(&dash, 1)
        ))
        .bearer_auth(&c.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let text = csv.text().await.unwrap();
    assert_eq!(
        text,
        format!(
            "metricId,from,to,agg,value,previous\nsignups,{t0},{},sum,{sum},\n",
            t0 + 2 * HOUR - 1
        )
    );

    // Refusals name what is wrong.
    let r = c
        .get(&format!("{base}/{}/data?maxPoints=0", widget_id(&dash, 0)))
        .await;
    assert_eq!(r.status, 400);
    assert!(r.body["error"].as_str().unwrap().contains("maxPoints"));
    let r = c
        .get(&format!("{base}/{}/data?form=-1h", widget_id(&dash, 0)))
        .await;
    assert_eq!(r.status, 400);
    assert!(r.body["error"].as_str().unwrap().contains("\"form\""));
    assert_eq!(c.get(&format!("{base}/w_nope/data")).await.status, 404);
    let r = c
        .send(
            c.http
                .get(format!("{}{base}/{}/data", c.url, widget_id(&dash, 0)))
                .bearer_auth(&key),
        )
        .await;
    assert_eq!(r.status, 403, "a webhook key reads nothing");
    s.stop().await;
}

#[tokio::test]
async fn a_share_link_opens_its_dashboard_and_nothing_else() {
    let (_dir, s, c, key) = Server::with_project("p1").await;
    let (dash, _) = dashboard_with_data(&c, &key).await;
    let other_dash = c
        .admin(
            Method::POST,
            "/api/v1/projects/p1/dashboards",
            Some(
                json!({"name": "Private", "widgets": [{"type": "line", "metricIds": ["secret"]}]}),
            ),
        )
        .await
        .body;
    let id = dash["id"].as_str().unwrap();
    let shares = format!("/api/v1/projects/p1/dashboards/{id}/shares");

    // A viewer may list links but not make one.
    add_user(&c, "vic", "viewer").await;
    let viewer = sign_in(&c, "vic", "pass word 1").await.unwrap();
    let r = c
        .send(
            c.http
                .post(format!("{}{shares}", c.url))
                .header("Cookie", &viewer)
                .header("Sec-Fetch-Site", "same-origin"),
        )
        .await;
    assert_eq!(r.status, 403, "{:?}", r.body);

    let r = c.admin(Method::POST, &shares, None).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let token = r.body["token"].as_str().unwrap().to_owned();
    let link_id = r.body["id"].as_str().unwrap().to_owned();
    assert!(token.starts_with("shl_") && token.len() == 68, "{token}");
    assert_eq!(r.body["url"], format!("/share/{token}"));
    assert_eq!(r.body["embedUrl"], format!("/share/{token}/embed"));
    let r = c
        .send(
            c.http
                .get(format!("{}{shares}", c.url))
                .header("Cookie", &viewer),
        )
        .await;
    assert_eq!(r.status, 200);
    let listed = &r.body["shares"][0];
    assert_eq!(listed["id"], link_id.as_str());
    assert_eq!(listed["tokenPrefix"], &token[..12]);
    assert!(
        !r.body.to_string().contains(&token),
        "a listing shows no token"
    );

    // Signed out, with nothing but the link: the dashboard and its widgets' data.
    let r = anonymous(&c, &format!("/api/v1/share/{token}")).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["name"], "Ops");
    assert_eq!(r.body["widgets"], dash["widgets"]);
    let w0 = widget_id(&dash, 0);
    let r = anonymous(
        &c,
        &format!("/api/v1/share/{token}/widgets/{w0}/data?from=-3h"),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["series"][0]["metricId"], "signups");

    // Its page sends no Referer onwards: the URL holds the token.
    let page = c
        .http
        .get(format!("{}/share/{token}", c.url))
        .send()
        .await
        .unwrap();
    assert_eq!(page.headers()["referrer-policy"], "no-referrer");

    // Not another dashboard's widget, and not the project's API.
    let other_widget = widget_id(&other_dash, 0);
    let r = anonymous(
        &c,
        &format!("/api/v1/share/{token}/widgets/{other_widget}/data"),
    )
    .await;
    assert_eq!(r.status, 404);
    for path in [
        "/api/v1/projects/p1/metrics".to_owned(),
        "/api/v1/projects/p1/metrics/signups/points".to_owned(),
        format!("/api/v1/projects/p1/dashboards/{id}"),
        format!("/api/v1/projects/p1/dashboards/{id}/widgets/{w0}/data"),
    ] {
        let r = c
            .send(c.http.get(format!("{}{path}", c.url)).bearer_auth(&token))
            .await;
        assert_eq!(r.status, 401, "{path}: {:?}", r.body);
    }

    // The link's stream tells of its dashboard's metrics only.
    let mut events = c
        .http
        .get(format!("{}/api/v1/share/{token}/events", c.url))
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), 200);
    let first = events.chunk().await.unwrap().unwrap();
    assert!(first.starts_with(b"retry:"));
    let r = c
        .post(&key, &batch("p1", vec![metric("secret", 1.0, now_ms())]))
        .await;
    assert_eq!(r.status, 200);
    let r = c
        .post(&key, &batch("p1", vec![metric("signups", 2.5, now_ms())]))
        .await;
    assert_eq!(r.status, 200);
    let chunk = tokio::time::timeout(Duration::from_secs(5), events.chunk())
        .await
        .expect("a change event within 5 s")
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&chunk);
    assert!(text.contains(r#"{"metricIds":["signups"]}"#), "{text}");

    // Revoked: refused at once, and the open stream ends at its next notice.
    let r = c.delete(&format!("{shares}/{link_id}")).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = anonymous(&c, &format!("/api/v1/share/{token}")).await;
    assert_eq!(r.status, 401);
    assert!(r.body["error"].as_str().unwrap().contains("revoked"));
    let r = c
        .post(&key, &batch("p1", vec![metric("signups", 3.5, now_ms())]))
        .await;
    assert_eq!(r.status, 200);
    let end = tokio::time::timeout(Duration::from_secs(5), events.chunk())
        .await
        .expect("the stream ends within 5 s of a notice after revocation")
        .unwrap();
    assert!(end.is_none(), "{end:?}");
    assert_eq!(c.delete(&format!("{shares}/{link_id}")).await.status, 404);

    // Deleting the dashboard ends its links.
    let token2 = c.admin(Method::POST, &shares, None).await.body["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        anonymous(&c, &format!("/api/v1/share/{token2}"))
            .await
            .status,
        200
    );
    assert_eq!(
        c.delete(&format!("/api/v1/projects/p1/dashboards/{id}"))
            .await
            .status,
        200
    );
    assert_eq!(
        anonymous(&c, &format!("/api/v1/share/{token2}"))
            .await
            .status,
        401
    );
    assert_eq!(anonymous(&c, "/api/v1/share/shl_guess").await.status, 401);
    s.stop().await;
}
