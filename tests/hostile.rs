//! The bad-input corpus: well over 100 malformed or hostile webhook requests, each answered
//! with its documented 4xx and a JSON error, none storing anything, the server healthy after
//! all of them and still accepting a good request.

use crate::support::*;
use serde_json::{json, Value};
use std::io::Write;

/// One hostile request: a name for messages, the body, whether it is gzip-encoded, the status
/// it must get and a fragment its error message must contain.
struct Case {
    name: String,
    body: Vec<u8>,
    gzip: bool,
    status: u16,
    fragment: &'static str,
}

fn case(
    name: impl Into<String>,
    body: impl Into<Vec<u8>>,
    status: u16,
    fragment: &'static str,
) -> Case {
    Case {
        name: name.into(),
        body: body.into(),
        gzip: false,
        status,
        fragment,
    }
}

/// A body with one metric whose fields are replaced by `fields` (raw JSON text).
fn with_metric(fields: &str) -> String {
    format!(r#"{{"projectId":"p","metrics":[{{{fields}}}]}}"#)
}

const GOOD_METRIC: &str = r#""metricId":"m","metricName":"M","value":1,"timestamp":1000"#;

fn corpus() -> Vec<Case> {
    let good = with_metric(GOOD_METRIC);
    let mut cases = Vec::new();

    // Truncated JSON: every cut of a good body (a cut at the end would be the body itself).
    for cut in (1..good.len() - 1).step_by(3) {
        cases.push(case(
            format!("truncated at {cut}"),
            &good.as_bytes()[..cut],
            400,
            "invalid JSON",
        ));
    }
    // Not JSON at all, or not an object.
    for (name, body, fragment) in [
        ("empty", "", "empty"),
        ("whitespace", "  \n\t ", "empty"),
        ("null", "null", "JSON object"),
        ("array", "[]", "JSON object"),
        ("string", "\"metrics\"", "JSON object"),
        ("number", "42", "JSON object"),
        ("true", "true", "JSON object"),
        ("xml", "<metrics/>", "invalid JSON"),
        ("form", "projectId=p&value=1", "invalid JSON"),
        ("single quotes", "{'projectId':'p'}", "invalid JSON"),
        (
            "trailing comma",
            r#"{"projectId":"p","metrics":[],}"#,
            "invalid JSON",
        ),
        ("two documents", &format!("{good}{good}"), "invalid JSON"),
        ("trailing garbage", &format!("{good} xyz"), "invalid JSON"),
        ("comment", &format!("// c\n{good}"), "invalid JSON"),
        ("unquoted key", r#"{projectId:"p"}"#, "invalid JSON"),
        (
            "NaN literal",
            &with_metric(r#""metricId":"m","metricName":"M","value":NaN"#),
            "invalid JSON",
        ),
        (
            "Infinity literal",
            &with_metric(r#""metricId":"m","metricName":"M","value":Infinity"#),
            "invalid JSON",
        ),
        (
            "-Infinity literal",
            &with_metric(r#""metricId":"m","metricName":"M","value":-Infinity"#),
            "invalid JSON",
        ),
        (
            "value beyond a 64-bit float",
            &with_metric(r#""metricId":"m","metricName":"M","value":1e400"#),
            "beyond a 64-bit float's range (about 1.8e308) (near `\"value\":1e400",
        ),
        (
            "hex number",
            &with_metric(r#""metricId":"m","metricName":"M","value":0x10"#),
            "invalid JSON",
        ),
        (
            "leading zero",
            &with_metric(r#""metricId":"m","metricName":"M","value":012"#),
            "invalid JSON",
        ),
        (
            "plus sign",
            &with_metric(r#""metricId":"m","metricName":"M","value":+1"#),
            "invalid JSON",
        ),
        (
            "bare dot",
            &with_metric(r#""metricId":"m","metricName":"M","value":.5"#),
            "invalid JSON",
        ),
        (
            "lone surrogate escape",
            &with_metric(r#""metricId":"\ud800","metricName":"M","value":1"#),
            "invalid JSON",
        ),
        (
            "bad escape",
            &with_metric(r#""metricId":"\q","metricName":"M","value":1"#),
            "invalid JSON",
        ),
        (
            "raw newline in string",
            &with_metric("\"metricId\":\"a\nb\",\"metricName\":\"M\",\"value\":1"),
            "invalid JSON",
        ),
    ] {
        cases.push(case(name, body, 400, fragment));
    }
    // Deep nesting, at the top and inside metadata.
    let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    cases.push(case("nested arrays 100k deep", deep(100_000), 400, ""));
    cases.push(case(
        "nested objects 10k deep",
        format!("{}{}", r#"{"a":"#.repeat(10_000), "}".repeat(10_000)),
        400,
        "",
    ));
    cases.push(case(
        "metadata nested 5k deep",
        with_metric(&format!(
            r#""metricId":"m","metricName":"M","value":1,"metadata":{}1{}"#,
            r#"{"a":"#.repeat(5_000),
            "}".repeat(5_000)
        )),
        400,
        "",
    ));
    // Deeper than stathook keeps, yet within what simd-json parses (1,024): such metadata was
    // once stored, and every read of its metric then failed with a 500.
    for (levels, fragment) in [
        (33, "metadata is nested 33 levels deep; at most 32"),
        (200, "metadata is nested 200 levels deep; at most 32"),
    ] {
        cases.push(case(
            format!("metadata nested {levels} deep"),
            with_metric(&format!(
                r#""metricId":"m","metricName":"M","value":1,"metadata":{}1{}"#,
                r#"{"a":"#.repeat(levels),
                "}".repeat(levels)
            )),
            400,
            fragment,
        ));
    }
    // Invalid UTF-8 in a string and outside one; a UTF-8 BOM.
    let mut bad_utf8 = with_metric(GOOD_METRIC).into_bytes();
    let at = bad_utf8.iter().position(|b| *b == b'M').unwrap();
    bad_utf8[at] = 0xff;
    cases.push(case(
        "invalid UTF-8 in a string",
        bad_utf8,
        400,
        "invalid JSON",
    ));
    let mut overlong = with_metric(GOOD_METRIC).into_bytes();
    overlong.splice(at..at + 1, [0xc0, 0xaf]);
    cases.push(case("overlong UTF-8", overlong, 400, "invalid JSON"));
    cases.push(case(
        "bare 0xff",
        vec![0xff, 0xfe, 0xfd],
        400,
        "invalid JSON",
    ));
    let mut bom = vec![0xef, 0xbb, 0xbf];
    bom.extend_from_slice(good.as_bytes());
    cases.push(case("UTF-8 BOM", bom, 400, "invalid JSON"));
    cases.push(case("NUL byte", format!("{good}\0"), 400, "invalid JSON"));

    // Wrong types and missing or empty fields, top level.
    for (name, body, fragment) in [
        (
            "no projectId",
            r#"{"metrics":[{"metricId":"m","metricName":"M","value":1}]}"#.to_string(),
            "projectId is required",
        ),
        (
            "projectId null",
            r#"{"projectId":null,"metrics":[]}"#.into(),
            "projectId is required",
        ),
        (
            "projectId number",
            r#"{"projectId":7,"metrics":[]}"#.into(),
            "projectId must be a string",
        ),
        (
            "projectId empty",
            r#"{"projectId":"","metrics":[]}"#.into(),
            "projectId must not be empty",
        ),
        (
            "projectId too long",
            format!(r#"{{"projectId":"{}","metrics":[]}}"#, "p".repeat(129)),
            "projectId",
        ),
        (
            "projectId control char",
            r#"{"projectId":"p\u0007","metrics":[]}"#.into(),
            "control characters",
        ),
        (
            "no metrics",
            r#"{"projectId":"p"}"#.into(),
            "metrics is required",
        ),
        (
            "metrics null",
            r#"{"projectId":"p","metrics":null}"#.into(),
            "metrics is required",
        ),
        (
            "metrics object",
            r#"{"projectId":"p","metrics":{}}"#.into(),
            "metrics must be an array",
        ),
        (
            "metrics string",
            r#"{"projectId":"p","metrics":"m"}"#.into(),
            "metrics must be an array",
        ),
        (
            "metrics empty",
            r#"{"projectId":"p","metrics":[]}"#.into(),
            "at least one",
        ),
        (
            "duplicate projectId",
            r#"{"projectId":"p","projectId":"q","metrics":[]}"#.into(),
            "more than once",
        ),
        (
            "duplicate metrics",
            format!(r#"{{"projectId":"p","metrics":[{{{GOOD_METRIC}}}],"metrics":[]}}"#),
            "more than once",
        ),
    ] {
        cases.push(case(name, body, 400, fragment));
    }
    // 101 metrics.
    let many: Vec<String> = (0..101)
        .map(|i| format!(r#"{{"metricId":"m{i}","metricName":"M","value":1}}"#))
        .collect();
    cases.push(case(
        "101 metrics",
        format!(r#"{{"projectId":"p","metrics":[{}]}}"#, many.join(",")),
        400,
        "at most 100",
    ));

    // Wrong types and bad values inside a metric.
    for (name, fields, fragment) in [
        ("metric is a number", None, "metrics[0] must be an object"),
        (
            "no metricId",
            Some(r#""metricName":"M","value":1"#.to_string()),
            "metrics[0].metricId is required",
        ),
        (
            "metricId number",
            Some(r#""metricId":5,"metricName":"M","value":1"#.to_string()),
            "metrics[0].metricId must be a string",
        ),
        (
            "metricId empty",
            Some(r#""metricId":"","metricName":"M","value":1"#.to_string()),
            "metricId must not be empty",
        ),
        (
            "metricId array",
            Some(r#""metricId":["m"],"metricName":"M","value":1"#.to_string()),
            "metricId must be a string",
        ),
        (
            "no metricName",
            Some(r#""metricId":"m","value":1"#.to_string()),
            "metricName is required",
        ),
        (
            "metricName object",
            Some(r#""metricId":"m","metricName":{},"value":1"#.to_string()),
            "metricName must be a string",
        ),
        (
            "no value",
            Some(r#""metricId":"m","metricName":"M""#.to_string()),
            "value is required",
        ),
        (
            "value null",
            Some(r#""metricId":"m","metricName":"M","value":null"#.to_string()),
            "value is required",
        ),
        (
            "value string",
            Some(r#""metricId":"m","metricName":"M","value":"42""#.to_string()),
            "value must be a number",
        ),
        (
            "value bool",
            Some(r#""metricId":"m","metricName":"M","value":true"#.to_string()),
            "value must be a number",
        ),
        (
            "value array",
            Some(r#""metricId":"m","metricName":"M","value":[1]"#.to_string()),
            "value must be a number",
        ),
        (
            "value object",
            Some(r#""metricId":"m","metricName":"M","value":{"v":1}"#.to_string()),
            "value must be a number",
        ),
        (
            "value 1e400",
            Some(r#""metricId":"m","metricName":"M","value":1e400"#.to_string()),
            "",
        ),
        (
            "value -1e400",
            Some(r#""metricId":"m","metricName":"M","value":-1e400"#.to_string()),
            "",
        ),
        (
            "value 400-digit integer",
            Some(format!(
                r#""metricId":"m","metricName":"M","value":{}"#,
                "9".repeat(400)
            )),
            "",
        ),
        (
            "unit number",
            Some(r#""metricId":"m","metricName":"M","value":1,"unit":3"#.to_string()),
            "unit must be a string",
        ),
        (
            "unit too long",
            Some(format!(
                r#""metricId":"m","metricName":"M","value":1,"unit":"{}""#,
                "u".repeat(33)
            )),
            "unit",
        ),
        (
            "timestamp string",
            Some(
                r#""metricId":"m","metricName":"M","value":1,"timestamp":"2024-01-01""#.to_string(),
            ),
            "timestamp must be a non-negative integer",
        ),
        (
            "timestamp negative",
            Some(r#""metricId":"m","metricName":"M","value":1,"timestamp":-1"#.to_string()),
            "timestamp must be a non-negative integer",
        ),
        (
            "timestamp fraction",
            Some(r#""metricId":"m","metricName":"M","value":1,"timestamp":1.5"#.to_string()),
            "timestamp must be a non-negative integer",
        ),
        (
            "timestamp 1e30",
            Some(r#""metricId":"m","metricName":"M","value":1,"timestamp":1e30"#.to_string()),
            "timestamp",
        ),
        (
            "timestamp u64 max",
            Some(
                r#""metricId":"m","metricName":"M","value":1,"timestamp":18446744073709551615"#
                    .to_string(),
            ),
            "timestamp",
        ),
        (
            "timestamp far future",
            Some(
                r#""metricId":"m","metricName":"M","value":1,"timestamp":99999999999999"#
                    .to_string(),
            ),
            "in the future",
        ),
        (
            "timestamp bool",
            Some(r#""metricId":"m","metricName":"M","value":1,"timestamp":true"#.to_string()),
            "timestamp",
        ),
        (
            "metadata string",
            Some(r#""metricId":"m","metricName":"M","value":1,"metadata":"x""#.to_string()),
            "metadata must be an object",
        ),
        (
            "metadata array",
            Some(r#""metricId":"m","metricName":"M","value":1,"metadata":[1]"#.to_string()),
            "metadata must be an object",
        ),
        (
            "metadata too big",
            Some(format!(
                r#""metricId":"m","metricName":"M","value":1,"metadata":{{"k":"{}"}}"#,
                "x".repeat(5000)
            )),
            "at most 4096",
        ),
        (
            "metadata duplicate key",
            Some(
                r#""metricId":"m","metricName":"M","value":1,"metadata":{"a":1,"a":2}"#.to_string(),
            ),
            "more than once",
        ),
        (
            "duplicate value",
            Some(r#""metricId":"m","metricName":"M","value":1,"value":2"#.to_string()),
            "metrics[0].value appears more than once",
        ),
        (
            "duplicate metricId",
            Some(r#""metricId":"m","metricId":"n","metricName":"M","value":1"#.to_string()),
            "more than once",
        ),
        (
            "metricId control char",
            Some(r#""metricId":"m\u0000","metricName":"M","value":1"#.to_string()),
            "control characters",
        ),
        (
            "metricName newline",
            Some(r#""metricId":"m","metricName":"a\nb","value":1"#.to_string()),
            "control characters",
        ),
        (
            "metricId too long",
            Some(format!(
                r#""metricId":"{}","metricName":"M","value":1"#,
                "m".repeat(129)
            )),
            "metricId",
        ),
        (
            "metricName too long",
            Some(format!(
                r#""metricId":"m","metricName":"{}","value":1"#,
                "n".repeat(257)
            )),
            "metricName",
        ),
    ] {
        let body = match fields {
            Some(f) => with_metric(&f),
            None => r#"{"projectId":"p","metrics":[7]}"#.to_string(),
        };
        cases.push(case(name, body, 400, fragment));
    }
    // The bad metric is the last of a batch of otherwise good ones: still nothing stored.
    let mut batch_with_bad_tail: Vec<String> = (0..99)
        .map(|i| format!(r#"{{"metricId":"ok{i}","metricName":"M","value":{i}}}"#))
        .collect();
    batch_with_bad_tail.push(r#"{"metricId":"bad","metricName":"M","value":"NaN"}"#.into());
    cases.push(case(
        "99 good + 1 bad",
        format!(
            r#"{{"projectId":"p","metrics":[{}]}}"#,
            batch_with_bad_tail.join(",")
        ),
        400,
        "metrics[99].value",
    ));

    // Oversized: a 10 MB string, a 2 MB body of spaces, a gzip bomb; a broken gzip stream.
    cases.push(case(
        "10 MB metricId",
        with_metric(&format!(
            r#""metricId":"{}","metricName":"M","value":1"#,
            "m".repeat(10 << 20)
        )),
        413,
        "larger than",
    ));
    cases.push(case(
        "2 MB of whitespace around a good body",
        format!("{}{good}", " ".repeat(2 << 20)),
        413,
        "larger than",
    ));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&vec![b' '; 64 << 20]).unwrap();
    cases.push(Case {
        name: "gzip bomb: 64 MB of spaces".into(),
        body: gz.finish().unwrap(),
        gzip: true,
        status: 413,
        fragment: "larger than",
    });
    cases.push(Case {
        name: "not gzip".into(),
        body: good.clone().into_bytes(),
        gzip: true,
        status: 400,
        fragment: "gzip",
    });
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(good.as_bytes()).unwrap();
    let mut cut = gz.finish().unwrap();
    cut.truncate(cut.len() - 6);
    cases.push(Case {
        name: "truncated gzip".into(),
        body: cut,
        gzip: true,
        status: 400,
        fragment: "gzip",
    });
    cases
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bad_input_corpus_gets_4xx_and_stores_nothing() {
    let (_dir, s, c, key) = Server::with_project("p").await;
    let cases = corpus();
    assert!(cases.len() >= 100, "only {} cases", cases.len());
    eprintln!("bad-input corpus: {} requests", cases.len());
    for case in &cases {
        let mut req = c
            .http
            .post(format!("{}/api/webhooks/custom", c.url))
            .bearer_auth(&key)
            .header("Content-Type", "application/json")
            .body(case.body.clone());
        if case.gzip {
            req = req.header("Content-Encoding", "gzip");
        }
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.unwrap();
        let body: Value = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            panic!(
                "{}: not JSON: {:?}",
                case.name,
                String::from_utf8_lossy(&bytes)
            )
        });
        let error = body["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{}: no error in {body}", case.name));
        assert_eq!(status, case.status, "{}: {error}", case.name);
        assert!(
            error.contains(case.fragment),
            "{}: {error:?} lacks {:?}",
            case.name,
            case.fragment
        );
        assert_eq!(body.as_object().unwrap().len(), 1, "{}", case.name);
    }
    // Nothing was stored, the server is healthy, and a good request still works.
    assert_eq!(c.catalog("p").await, Vec::<Value>::new());
    assert_eq!(c.get("/healthz").await.body, json!({"status": "ok"}));
    let r = c
        .post(&key, &batch("p", vec![metric("m", 1.0, 1000)]))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(c.points("p", "m").await, vec![(1000, 1.0)]);
    s.stop().await;
}
