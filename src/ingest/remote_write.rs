//! Prometheus remote write 1.0: a snappy block-compressed protobuf `WriteRequest`
//! (prometheus/prompb/remote.proto, types.proto), decoded with `prost` into the message
//! structs below (only the fields stathook reads; protobuf skips the rest) and `snap`.
//! Every series' `__name__` and labels become a [`SeriesBatch`] series. Samples whose value
//! is not finite are skipped, not refused: staleness markers (the NaN Prometheus writes when
//! a series disappears; stathook has no staleness, its PromQL's lookback ends a series
//! instead) and the NaN quantiles of a summary with no observations arrive in every batch
//! of a healthy Prometheus, and refusing them would make it drop the whole batch. Pure.

use super::series::SeriesBatch;
use super::IngestError;
use prost::Message;

/// Largest decompressed `WriteRequest`, in bytes. Prometheus sends at most
/// `max_samples_per_send` (2,000 by default since 2.43; 500 before) samples a request, a
/// few hundred KiB; vmagent up to 8 MiB. The snappy header announces the length, so a body
/// claiming more is refused before anything is allocated.
pub const MAX_DECODED_BYTES: usize = 32 << 20;

#[derive(Clone, PartialEq, Message)]
pub struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

#[derive(Clone, PartialEq, Message)]
pub struct TimeSeries {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
    /// Native histograms (2.40+, behind a feature flag): kept undecoded only to refuse them
    /// instead of dropping them silently.
    #[prost(bytes = "vec", repeated, tag = "4")]
    pub histograms: Vec<Vec<u8>>,
}

impl TimeSeries {
    /// A series of `labels` (`__name__` among them) and (timestamp ms, value) samples.
    pub fn new(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> TimeSeries {
        TimeSeries {
            labels: labels
                .iter()
                .map(|(n, v)| Label {
                    name: bytes::Bytes::copy_from_slice(n.as_bytes()),
                    value: bytes::Bytes::copy_from_slice(v.as_bytes()),
                })
                .collect(),
            samples: samples
                .iter()
                .map(|&(timestamp, value)| Sample { value, timestamp })
                .collect(),
            histograms: vec![],
        }
    }
}

/// A label, its name and value as bytes: decoded from a `Bytes` buffer they are slices of
/// it, not two allocations each (`decode_series` checks they are UTF-8, as `string` would).
#[derive(Clone, PartialEq, Message)]
pub struct Label {
    #[prost(bytes = "bytes", tag = "1")]
    pub name: bytes::Bytes,
    #[prost(bytes = "bytes", tag = "2")]
    pub value: bytes::Bytes,
}

#[derive(Clone, PartialEq, Message)]
pub struct Sample {
    #[prost(double, tag = "1")]
    pub value: f64,
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// Decodes one remote-write body (snappy block format, not framed).
pub fn parse(body: &[u8], now_ms: i64) -> Result<SeriesBatch, IngestError> {
    let len = snap::raw::decompress_len(body)
        .map_err(|e| IngestError::new(format!("the body is not snappy block-compressed: {e}")))?;
    if len > MAX_DECODED_BYTES {
        return Err(IngestError::new(format!(
            "the body decompresses to {len} bytes; at most {MAX_DECODED_BYTES} are accepted in one request"
        )));
    }
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| IngestError::new(format!("the body is not valid snappy: {e}")))?;
    let request = WriteRequest::decode(bytes::Bytes::from(raw))
        .map_err(|e| IngestError::new(format!("the body is not a protobuf WriteRequest: {e}")))?;
    decode_series(&request, now_ms)
}

/// The samples of a decoded `WriteRequest`, all or nothing.
pub fn decode_series(request: &WriteRequest, now_ms: i64) -> Result<SeriesBatch, IngestError> {
    let samples = request.timeseries.iter().map(|t| t.samples.len()).sum();
    let mut batch = SeriesBatch::with_capacity(request.timeseries.len(), samples);
    for (i, ts) in request.timeseries.iter().enumerate() {
        let origin = || format!("timeseries[{i}]");
        if !ts.histograms.is_empty() {
            return Err(IngestError::new(format!(
                "{}: native histograms are not supported; send classic histograms (_bucket, _sum, _count series)",
                origin()
            )));
        }
        let mut labels = Vec::with_capacity(ts.labels.len());
        let mut name = None;
        for l in &ts.labels {
            let (Ok(key), Ok(value)) =
                (std::str::from_utf8(&l.name), std::str::from_utf8(&l.value))
            else {
                return Err(IngestError::new(format!(
                    "{}: a label is not valid UTF-8",
                    origin()
                )));
            };
            if key != "__name__" {
                labels.push((key, value));
            } else if name.replace(value).is_some() {
                return Err(IngestError::new(format!(
                    "{}: the label __name__ appears more than once",
                    origin()
                )));
            }
        }
        let Some(name) = name else {
            return Err(IngestError::new(format!(
                "{}: the series has no __name__ label",
                origin()
            )));
        };
        let described = || format!("timeseries[{i}] ({name})");
        let series = batch.series(name, labels, &described)?;
        for s in &ts.samples {
            if !s.value.is_finite() {
                continue;
            }
            batch.push(series, s.timestamp, s.value, now_ms, &described)?;
        }
    }
    Ok(batch)
}

/// Encodes a `WriteRequest` the way Prometheus sends it (tests, benches, the fuzz seeds).
pub fn encode(request: &WriteRequest) -> Vec<u8> {
    snap::raw::Encoder::new()
        .compress_vec(&request.encode_to_vec())
        .expect("BUG: snappy refused an in-memory buffer")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bit pattern of Prometheus's staleness marker (`value.StaleNaN`), which decoding
    /// skips like any other non-finite value.
    const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

    fn series(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> TimeSeries {
        TimeSeries::new(labels, samples)
    }

    #[test]
    fn series_keep_their_labels_and_stale_markers_are_skipped() {
        let req = WriteRequest {
            timeseries: vec![
                series(
                    &[("__name__", "up"), ("job", "a")],
                    &[
                        (1_000, 1.0),
                        (2_000, f64::from_bits(STALE_NAN_BITS)),
                        (3_000, f64::NAN),
                        (4_000, f64::INFINITY),
                    ],
                ),
                series(&[("job", "b"), ("__name__", "up")], &[(1_000, 0.5)]),
            ],
        };
        let batch = parse(&encode(&req), 10_000).unwrap();
        let v = batch.valid("p");
        let got: Vec<(&str, i64, f64)> = v
            .metrics
            .iter()
            .map(|m| (m.metric_id, m.timestamp_ms, m.value))
            .collect();
        assert_eq!(
            got,
            [
                (r#"up{job="a"}"#, 1_000, 1.0),
                (r#"up{job="b"}"#, 1_000, 0.5)
            ]
        );
    }

    #[test]
    fn bad_bodies_are_refused_with_a_reason() {
        let err = |b: &[u8]| parse(b, 10_000).unwrap_err().message;
        assert!(err(b"").contains("snappy"), "{}", err(b""));
        // A snappy header claiming 2 GiB: refused before allocating.
        assert!(err(&[0x80, 0x80, 0x80, 0x80, 0x08]).contains("decompresses to"));
        let truncated = encode(&WriteRequest {
            timeseries: vec![series(&[("__name__", "up")], &[(1, 1.0)])],
        });
        assert!(err(&truncated[..truncated.len() - 2]).contains("snappy"));
        let not_proto = snap::raw::Encoder::new().compress_vec(&[0xff; 10]).unwrap();
        assert!(err(&not_proto).contains("protobuf"));
        let nameless = WriteRequest {
            timeseries: vec![series(&[("job", "a")], &[(1, 1.0)])],
        };
        assert!(err(&encode(&nameless)).contains("timeseries[0]: the series has no __name__"));
        let future = WriteRequest {
            timeseries: vec![series(&[("__name__", "up")], &[(1 << 50, 1.0)])],
        };
        assert!(err(&encode(&future)).contains("timeseries[0] (up): the timestamp is"));
    }
}
