//! Journal frames → one remote-write `WriteRequest`: a batch of up to `max_samples` samples
//! and about `max_bytes`, read from a [`Chunk`] starting `skip` samples into its first
//! frame (a batch may end inside a frame; the cursor then says how far). Each series gets
//! PromQL's labels (`promql::labels::series_labels`: `__name__`, `project`, the pushed
//! labels), its samples in timestamp order, one per timestamp (the last acknowledged wins,
//! as a later webhook sample replaces an earlier one). Pure.

use crate::ingest::remote_write::{Label, Sample, TimeSeries, WriteRequest};
use crate::journal::record::{decode_frame, FrameError, FRAME_HEADER_LEN};
use crate::journal::{Chunk, Position};
use std::collections::HashMap;

/// Where the next batch starts: a frame, and how many of its samples are already sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Next {
    pub at: Position,
    pub skip: u64,
}

#[derive(Debug)]
pub struct Batch {
    pub request: WriteRequest,
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

pub fn build(chunk: &Chunk, skip: u64, max_samples: usize, max_bytes: usize) -> Batch {
    let mut series: Vec<TimeSeries> = Vec::new();
    let mut index: HashMap<(&str, &str), usize> = HashMap::new();
    let (mut bytes, mut samples) = (0usize, 0u64);
    let mut pos = 0usize;
    let mut next = Next { at: chunk.at, skip };
    let mut skip = skip;
    let mut damage = None;
    let mut finished = false;
    'frames: while pos < chunk.bytes.len() {
        let rest = &chunk.bytes[pos..];
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
                        at: Position {
                            generation: chunk.at.generation,
                            offset: chunk.at.offset + pos as u64,
                        },
                        skip: in_frame,
                    };
                    break 'frames;
                }
                let i = *index.entry((rec.project, s.metric_id)).or_insert_with(|| {
                    let labels = crate::promql::labels::series_labels(rec.project, s.metric_id);
                    bytes += labels
                        .iter()
                        .map(|(k, v)| k.len() + v.len() + 4)
                        .sum::<usize>();
                    series.push(TimeSeries {
                        labels: labels
                            .into_iter()
                            .map(|(k, v)| Label {
                                name: k.into(),
                                value: v.into(),
                            })
                            .collect(),
                        samples: Vec::new(),
                        histograms: Vec::new(),
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
            at: Position {
                generation: chunk.at.generation,
                offset: chunk.at.offset + pos as u64,
            },
            skip: 0,
        };
    }
    if pos >= chunk.bytes.len() && chunk.sealed {
        finished = true;
    }
    for s in &mut series {
        in_order(&mut s.samples);
    }
    Batch {
        request: WriteRequest { timeseries: series },
        samples,
        next,
        generation_done: chunk.sealed && (finished || damage.is_some()),
        damage,
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
    use crate::ingest::ValidMetric;
    use crate::journal::record::{encode_record, FrameBuilder, HEADER_LEN};

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
        let cpu = &b.request.timeseries[0];
        assert_eq!(label(cpu, "__name__"), "cpu");
        assert_eq!(label(cpu, "host"), "a");
        assert_eq!(label(cpu, "project"), "p");
        let names: Vec<&[u8]> = cpu.labels.iter().map(|l| &l.name[..]).collect();
        assert!(names.windows(2).all(|w| w[0] < w[1]), "labels sorted");
        let got: Vec<(i64, f64)> = cpu.samples.iter().map(|s| (s.timestamp, s.value)).collect();
        assert_eq!(got, vec![(10, 3.0), (20, 4.0)], "sorted; the later 20 wins");
        let api = &b.request.timeseries[1];
        assert_eq!(label(api, "__name__"), "api_latency");
        assert_eq!(label(api, "metricId"), "api.latency");
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
            for s in &b.request.timeseries[..] {
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
