//! Journal frames → one remote-write `WriteRequest`: a batch of up to `max_samples` samples
//! and about `max_bytes`, read from a [`Chunk`] starting `skip` samples into its first
//! frame (a batch may end inside a frame; the cursor then says how far). Each series gets
//! PromQL's labels (`promql::labels::series_labels`: `__name__`, `project`, the pushed
//! labels), its samples in timestamp order, one per timestamp (the last acknowledged wins,
//! as a later webhook sample replaces an earlier one). Pure.

use crate::ingest::remote_write::{Label, Sample};
use crate::journal::record::{decode_frame, FrameError, FRAME_HEADER_LEN};
use crate::journal::{Chunk, Position};
use bytes::Bytes;
use prost::encoding::{encode_key, encode_varint, message, WireType};
/// foldhash, not SipHash: the keys are the server's own journal, and hashing was a visible
/// share of the forward thread's profile.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// Where the next batch starts: a frame, and how many of its samples are already sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Next {
    pub at: Position,
    pub skip: u64,
}

/// One series of a batch: its labels already encoded as `TimeSeries.labels` fields, and its
/// samples.
#[derive(Debug)]
pub struct Series {
    pub labels: Bytes,
    pub samples: Vec<Sample>,
}

#[derive(Debug)]
pub struct Batch {
    pub series: Vec<Series>,
    pub samples: u64,
    /// Where the following batch starts.
    pub next: Next,
    /// The chunk's generation is sealed and fully read: the next batch is in a later file.
    pub generation_done: bool,
    /// A frame that failed its checksum or does not parse (never in a file recovery has
    /// checked; reported, and the rest of a sealed file is skipped).
    pub damage: Option<FrameError>,
}

/// Per-sample overhead counted toward `max_bytes` (a protobuf sample: tag, double, varint).
const SAMPLE_BYTES: usize = 20;
/// Series whose labels [`Labeller`] keeps; past it the cache starts again.
const MAX_CACHED_SERIES: usize = 200_000;

/// Each series' remote-write labels, made once and reused by every batch (the label values
/// are `Bytes`: a batch's copy is a reference count, not a copy of the text).
#[derive(Default)]
pub struct Labeller {
    /// project → metricId → (labels, their size): two levels, so a lookup borrows the
    /// record's strings instead of allocating a key.
    cache: HashMap<String, HashMap<String, Bytes>>,
    len: usize,
}

impl Labeller {
    /// The labels of `metric_id` in `project`, encoded as the `labels` fields of a
    /// `TimeSeries` (made once per series: encoding them per batch was a visible share of
    /// the forward thread).
    fn labels(&mut self, project: &str, metric_id: &str) -> Bytes {
        if let Some(hit) = self.cache.get(project).and_then(|m| m.get(metric_id)) {
            return hit.clone();
        }
        if self.len >= MAX_CACHED_SERIES {
            self.cache.clear();
            self.len = 0;
        }
        let mut encoded = Vec::new();
        for (k, v) in crate::promql::labels::series_labels(project, metric_id) {
            let label = Label {
                name: k.into(),
                value: v.into(),
            };
            message::encode(1, &label, &mut encoded);
        }
        let encoded = Bytes::from(encoded);
        self.cache
            .entry(project.to_owned())
            .or_default()
            .insert(metric_id.to_owned(), encoded.clone());
        self.len += 1;
        encoded
    }
}

/// Journal bytes to build a batch from: read at `at`; `sealed` when they reach the end of a
/// sealed generation's file (a sub-slice of a [`Chunk`] read once for several batches).
#[derive(Clone, Copy)]
pub struct Source<'a> {
    pub at: Position,
    pub bytes: &'a [u8],
    pub sealed: bool,
}

impl<'a> Source<'a> {
    pub fn of(chunk: &'a Chunk) -> Source<'a> {
        Source {
            at: chunk.at,
            bytes: &chunk.bytes,
            sealed: chunk.sealed,
        }
    }
}

/// [`build_with`] without a label cache (tests, counting).
pub fn build(chunk: &Chunk, skip: u64, max_samples: usize, max_bytes: usize) -> Batch {
    build_with(
        &mut Labeller::default(),
        Source::of(chunk),
        skip,
        max_samples,
        max_bytes,
    )
}

pub fn build_with(
    labeller: &mut Labeller,
    src: Source<'_>,
    skip: u64,
    max_samples: usize,
    max_bytes: usize,
) -> Batch {
    let mut series: Vec<Series> = Vec::new();
    let mut index: HashMap<(&str, &str), usize> = HashMap::default();
    let (mut bytes, mut samples) = (0usize, 0u64);
    let mut pos = 0usize;
    let mut next = Next { at: src.at, skip };
    let mut skip = skip;
    let mut damage = None;
    let mut finished = false;
    let at = |pos: usize| Position {
        generation: src.at.generation,
        offset: src.at.offset + pos as u64,
    };
    'frames: while pos < src.bytes.len() {
        let rest = &src.bytes[pos..];
        // The zero fill after the last frame: the clean end of the file's data.
        if rest.iter().take(FRAME_HEADER_LEN).all(|b| *b == 0) {
            finished = true;
            break;
        }
        let (records, used) = match decode_frame(rest) {
            Ok(r) => r,
            // Past the window or the acknowledged end: the next read continues here.
            Err(FrameError::Torn) => break,
            Err(e) => {
                damage = Some(e);
                break;
            }
        };
        let mut in_frame = 0u64;
        for rec in &records {
            for s in &rec.samples {
                if in_frame < skip {
                    in_frame += 1;
                    continue;
                }
                if samples as usize >= max_samples || bytes >= max_bytes {
                    next = Next {
                        at: at(pos),
                        skip: in_frame,
                    };
                    break 'frames;
                }
                let i = *index.entry((rec.project, s.metric_id)).or_insert_with(|| {
                    let labels = labeller.labels(rec.project, s.metric_id);
                    bytes += labels.len();
                    series.push(Series {
                        labels,
                        samples: Vec::new(),
                    });
                    series.len() - 1
                });
                series[i].samples.push(Sample {
                    value: s.value,
                    timestamp: s.timestamp_ms,
                });
                bytes += SAMPLE_BYTES;
                samples += 1;
                in_frame += 1;
            }
        }
        pos += used;
        skip = 0;
        next = Next {
            at: at(pos),
            skip: 0,
        };
    }
    if pos >= src.bytes.len() && src.sealed {
        finished = true;
    }
    for s in &mut series {
        in_order(&mut s.samples);
    }
    Batch {
        series,
        samples,
        next,
        generation_done: src.sealed && (finished || damage.is_some()),
        damage,
    }
}

impl Batch {
    /// The remote-write body: the `WriteRequest` protobuf (each `TimeSeries` its cached
    /// label fields, then its samples), snappy-compressed. The same bytes prost writes for
    /// the equivalent message (a test decodes them with prost).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.samples as usize * 24 + self.series.len() * 64);
        let mut samples = Vec::new();
        for s in &self.series {
            samples.clear();
            for sample in &s.samples {
                message::encode(2, sample, &mut samples);
            }
            encode_key(1, WireType::LengthDelimited, &mut out);
            encode_varint((s.labels.len() + samples.len()) as u64, &mut out);
            out.extend_from_slice(&s.labels);
            out.extend_from_slice(&samples);
        }
        snap::raw::Encoder::new()
            .compress_vec(&out)
            .expect("BUG: snappy refused an in-memory buffer")
    }
}

/// Sorts by timestamp and keeps the last of equal timestamps (the sort is stable, so the
/// last in journal order).
fn in_order(samples: &mut Vec<Sample>) {
    if samples.windows(2).all(|w| w[0].timestamp < w[1].timestamp) {
        return;
    }
    samples.sort_by_key(|s| s.timestamp);
    let mut out: Vec<Sample> = Vec::with_capacity(samples.len());
    for s in samples.drain(..) {
        match out.last_mut() {
            Some(last) if last.timestamp == s.timestamp => *last = s,
            _ => out.push(s),
        }
    }
    *samples = out;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::remote_write::{TimeSeries, WriteRequest};
    use crate::ingest::ValidMetric;
    use crate::journal::record::{encode_record, FrameBuilder, HEADER_LEN};
    use prost::Message;

    /// The batch's body, decoded by prost.
    fn request(b: &Batch) -> WriteRequest {
        let raw = snap::raw::Decoder::new()
            .decompress_vec(&b.encode())
            .unwrap();
        WriteRequest::decode(raw.as_slice()).unwrap()
    }

    fn metric<'a>(id: &'a str, ts: i64, v: f64) -> ValidMetric<'a> {
        ValidMetric {
            metric_id: id,
            metric_name: "Name",
            value: v,
            unit: None,
            timestamp_ms: ts,
            metadata: None,
        }
    }

    /// A record: (project, [(metric, ts, value)]).
    type TestRecord<'a> = (&'a str, Vec<(&'a str, i64, f64)>);

    /// Frames of one record each.
    fn chunk(frames: &[TestRecord<'_>], sealed: bool) -> Chunk {
        let mut bytes = Vec::new();
        for (project, samples) in frames {
            let metrics: Vec<ValidMetric<'_>> =
                samples.iter().map(|(m, t, v)| metric(m, *t, *v)).collect();
            let mut record = Vec::new();
            encode_record(&mut record, project, metrics.iter(), metrics.len());
            let mut f = FrameBuilder::new(record.len());
            f.push(&record);
            bytes.extend_from_slice(f.finish());
        }
        bytes.extend_from_slice(&[0; 64]);
        Chunk {
            at: Position::start_of(3),
            bytes,
            sealed,
        }
    }

    fn label<'a>(s: &'a TimeSeries, name: &str) -> &'a str {
        let l = s.labels.iter().find(|l| l.name == name.as_bytes()).unwrap();
        std::str::from_utf8(&l.value).unwrap()
    }

    #[test]
    fn series_get_promql_labels_and_ordered_deduplicated_samples() {
        let c = chunk(
            &[
                (
                    "p",
                    vec![("cpu{host=\"a\"}", 20, 1.0), ("api.latency", 5, 2.5)],
                ),
                (
                    "p",
                    vec![("cpu{host=\"a\"}", 10, 3.0), ("cpu{host=\"a\"}", 20, 4.0)],
                ),
            ],
            false,
        );
        let b = build(&c, 0, 2_000, 4 << 20);
        assert_eq!(b.samples, 4);
        assert!(!b.generation_done, "not sealed");
        let req = request(&b);
        let cpu = &req.timeseries[0];
        assert_eq!(label(cpu, "__name__"), "cpu");
        assert_eq!(label(cpu, "host"), "a");
        assert_eq!(label(cpu, "project"), "p");
        let names: Vec<&[u8]> = cpu.labels.iter().map(|l| &l.name[..]).collect();
        assert!(names.windows(2).all(|w| w[0] < w[1]), "labels sorted");
        let got: Vec<(i64, f64)> = cpu.samples.iter().map(|s| (s.timestamp, s.value)).collect();
        assert_eq!(got, vec![(10, 3.0), (20, 4.0)], "sorted; the later 20 wins");
        let api = &req.timeseries[1];
        assert_eq!(label(api, "__name__"), "api_latency");
        assert_eq!(label(api, "metricId"), "api.latency");
    }

    #[test]
    fn the_hand_framed_body_is_byte_for_byte_what_prost_writes() {
        let c = chunk(
            &[(
                "p",
                vec![
                    ("a{x=\"1\"}", 10, 0.0),
                    ("b", 0, -2.5),
                    ("a{x=\"1\"}", 5, 1e300),
                ],
            )],
            false,
        );
        let b = build(&c, 0, 100, 1 << 20);
        let ours = snap::raw::Decoder::new()
            .decompress_vec(&b.encode())
            .unwrap();
        let theirs = WriteRequest {
            timeseries: request(&b)
                .timeseries
                .into_iter()
                .map(|t| TimeSeries {
                    labels: t.labels,
                    samples: t.samples,
                    histograms: vec![],
                })
                .collect(),
        }
        .encode_to_vec();
        assert_eq!(ours, theirs);
        assert_eq!(request(&b).timeseries.len(), 2);
    }

    #[test]
    fn a_batch_cut_inside_a_frame_resumes_where_it_stopped() {
        let frame: Vec<(&str, i64, f64)> = (0..5).map(|i| ("m", i, i as f64)).collect();
        let c = chunk(&[("p", frame.clone()), ("p", frame)], true);
        let mut seen = Vec::new();
        let (mut at, mut skip) = (c.at, 0);
        for _ in 0..10 {
            let sub = Chunk {
                at,
                bytes: c.bytes[(at.offset - c.at.offset) as usize..].to_vec(),
                sealed: true,
            };
            let b = build(&sub, skip, 3, 1 << 20);
            for s in &request(&b).timeseries[..] {
                seen.extend(s.samples.iter().map(|s| s.timestamp));
            }
            if b.generation_done {
                assert_eq!(seen.len(), 10, "{seen:?}");
                assert_eq!(b.samples as usize, 10 % 3, "the last batch");
                return;
            }
            assert_eq!(b.samples, 3);
            (at, skip) = (b.next.at, b.next.skip);
        }
        panic!("never finished: {seen:?}");
    }

    #[test]
    fn a_torn_frame_waits_and_damage_ends_a_sealed_file() {
        let mut c = chunk(
            &[("p", vec![("m", 1, 1.0)]), ("p", vec![("m", 2, 2.0)])],
            false,
        );
        let full = c.bytes.clone();
        c.bytes.truncate(c.bytes.len() - 64 - 3);
        let b = build(&c, 0, 100, 1 << 20);
        assert_eq!(b.samples, 1, "the torn second frame is not read");
        assert_eq!(
            b.next.at.offset,
            HEADER_LEN as u64 + (full.len() - 64) as u64 / 2
        );
        let mut bad = chunk(&[("p", vec![("m", 1, 1.0)])], true);
        bad.bytes[9] ^= 0xff;
        let b = build(&bad, 0, 100, 1 << 20);
        assert_eq!(b.samples, 0);
        assert_eq!(b.damage, Some(FrameError::Checksum));
        assert!(b.generation_done);
    }
}
