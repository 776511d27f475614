//! Range queries of the commonest shapes evaluated series by series instead of step by
//! step: a range function over a selector (`rate(m[5m])`), an instant selector (`m`), and
//! `sum`, `avg`, `min`, `max`, `count` (with `by` or `without`) of either. Each series'
//! points are walked once, with two cursors, across every step, and an aggregation folds
//! each series into its group's per-step accumulators. Step by step, a query over 1,000
//! series visits each of them at every step (a cache miss per series and step, and a
//! sample, a label-set handle and a group look-up built for each); here it does not.
//!
//! Same arithmetic as `eval`, in the same order (a group's members in the selector's series
//! order), so the answers are equal to the bit, refusals included (two series left with one
//! label set and a value at one step): the unit tests and the `promql_eval` fuzz target
//! compare the two. Any other shape gives None and is evaluated step by step. Pure.

use super::eval::{group_key, offset_ms, same_labelset, Engine, EvalError, Series, Source};
use super::funcs::RangeFn;
use super::labels::{Labels, NAME};
use promql_parser::parser::token::{TokenId, T_AVG, T_COUNT, T_MAX, T_MIN, T_SUM};
use promql_parser::parser::{AggregateExpr, Expr, MatrixSelector, VectorSelector};
use std::collections::HashMap;

/// The evaluation times: `start + k * step` for `k < count`.
#[derive(Clone, Copy)]
pub(super) struct Steps {
    pub start: i64,
    pub step: i64,
    pub count: usize,
}

impl Steps {
    pub fn new(start: i64, end: i64, step: i64) -> Steps {
        Steps {
            start,
            step,
            count: ((end - start) / step + 1) as usize,
        }
    }

    fn at(&self, k: usize) -> i64 {
        self.start + k as i64 * self.step
    }
}

/// What gives one value per series and step.
enum Inner<'e> {
    Function {
        f: RangeFn,
        ms: &'e MatrixSelector,
        q: Option<f64>,
    },
    Selector(&'e VectorSelector),
}

fn unparen(e: &Expr) -> &Expr {
    match e {
        Expr::Paren(p) => unparen(&p.expr),
        other => other,
    }
}

fn inner(e: &Expr) -> Option<Inner<'_>> {
    match unparen(e) {
        Expr::VectorSelector(vs) => Some(Inner::Selector(vs)),
        Expr::Call(c) => {
            let f = RangeFn::by_name(c.func.name)?;
            let args = &c.args.args;
            let (q, arg) = if f == RangeFn::Quantile {
                match (unparen(args.first()?), args.get(1)?) {
                    (Expr::NumberLiteral(n), arg) => (Some(n.val), arg),
                    _ => return None,
                }
            } else {
                (None, args.first()?)
            };
            // The argument itself, not through parentheses: `eval` refuses `rate((m[5m]))`.
            match &**arg {
                Expr::MatrixSelector(ms) => Some(Inner::Function { f, ms, q }),
                _ => None,
            }
        }
        _ => None,
    }
}

/// `expr` at every step, when its shape is one this module evaluates.
pub(super) fn range<S: Source>(
    engine: &mut Engine<'_, S>,
    expr: &Expr,
    steps: Steps,
) -> Option<Result<Vec<Series>, EvalError>> {
    match unparen(expr) {
        Expr::Aggregate(a) => {
            let op = a.op.id();
            if a.param.is_some() || ![T_SUM, T_AVG, T_MIN, T_MAX, T_COUNT].contains(&op) {
                return None;
            }
            let inner = inner(&a.expr)?;
            Some(aggregate(engine, a, op, &inner, steps))
        }
        e => {
            let inner = inner(e)?;
            Some(each_series(engine, &inner, steps).map(|found| {
                // Series left with one label set (their values at distinct steps) are one.
                let mut out: Vec<Series> = Vec::with_capacity(found.len());
                let mut index: HashMap<Labels, usize> = HashMap::new();
                for (labels, values) in found {
                    if values.is_empty() {
                        continue;
                    }
                    let pts = values.iter().map(|&(k, v)| (steps.at(k), v));
                    match index.get(&labels) {
                        Some(&i) => {
                            out[i].1.extend(pts);
                            out[i].1.sort_by_key(|p| p.0);
                        }
                        None => {
                            index.insert(labels.clone(), out.len());
                            out.push((labels, pts.collect()));
                        }
                    }
                }
                out
            }))
        }
    }
}

/// A series' value at the step of that index.
type StepValue = (usize, f64);

/// Each series' labels and its values at the steps where it has one.
type SeriesValues = Vec<(Labels, Vec<StepValue>)>;

/// What is computed from one series' points at each step: a range function (`q` its φ),
/// or the last point (an instant selector). Plain data, so that a source may run it on
/// several threads.
#[derive(Clone, Copy)]
struct Kernel {
    function: Option<RangeFn>,
    q: Option<f64>,
    /// The window's length: the function's range, or the lookback.
    range: i64,
    offset: i64,
}

/// Each series' labels (without the name where the function drops it) and its
/// (step index, value) pairs, in the selector's series order; refused as `eval` refuses
/// two series left with one label set that have a value at one step.
fn each_series<S: Source>(
    engine: &mut Engine<'_, S>,
    inner: &Inner<'_>,
    steps: Steps,
) -> Result<SeriesValues, EvalError> {
    let (vs, select_range, kernel) = match inner {
        Inner::Function { f, ms, q } => (
            &ms.vs,
            ms.range.as_millis() as i64,
            Kernel {
                function: Some(*f),
                q: *q,
                range: ms.range.as_millis() as i64,
                offset: offset_ms(&ms.vs.offset),
            },
        ),
        Inner::Selector(vs) => (
            *vs,
            0,
            Kernel {
                function: None,
                q: None,
                range: engine.lookback_ms,
                offset: offset_ms(&vs.offset),
            },
        ),
    };
    let (matchers, from, to) = engine.selection(vs, select_range)?;
    engine.check_deadline()?;
    // Each series' values, and how many points they came from (the query's limit).
    let each = |pts: &[(i64, f64)]| {
        let mut values = Vec::new();
        series_values(pts, kernel, steps, &mut values);
        (values, pts.len())
    };
    let found = engine.source().select_map(&matchers, from, to, &each)?;
    engine.check_deadline()?;
    engine.count_loaded(found.iter().map(|(_, (_, n))| n).sum())?;
    let found = found.into_iter().map(|(l, (v, _))| (l, v));
    if kernel.function.is_none_or(RangeFn::keeps_name) {
        return Ok(found.collect());
    }
    // Without their names two series may share a label set: as `eval` does at each step,
    // that is refused where both have a value at one step, and is one series otherwise.
    let mut out: SeriesValues = Vec::with_capacity(found.len());
    let mut first_of: HashMap<Labels, usize> = HashMap::new();
    let mut taken: HashMap<usize, Vec<bool>> = HashMap::new();
    for (mut labels, values) in found {
        labels.remove(NAME);
        if let Some(&first) = first_of.get(&labels) {
            let steps_taken = taken.entry(first).or_insert_with(|| {
                let mut t = vec![false; steps.count];
                for &(k, _) in &out[first].1 {
                    t[k] = true;
                }
                t
            });
            for &(k, _) in &values {
                if std::mem::replace(&mut steps_taken[k], true) {
                    return Err(same_labelset());
                }
            }
        } else {
            first_of.insert(labels.clone(), out.len());
        }
        out.push((labels, values));
    }
    Ok(out)
}

/// A series' value at each step where it has one.
fn series_values(pts: &[(i64, f64)], kernel: Kernel, steps: Steps, out: &mut Vec<StepValue>) {
    let (mut a, mut b) = (0, 0);
    for k in 0..steps.count {
        let to = steps.at(k) - kernel.offset;
        let from = to - kernel.range;
        while a < pts.len() && pts[a].0 < from {
            a += 1;
        }
        b = b.max(a);
        while b < pts.len() && pts[b].0 <= to {
            b += 1;
        }
        let w = &pts[a..b];
        let v = match kernel.function {
            Some(f) => f.apply(w, from, to, kernel.q),
            None => w.last().map(|p| p.1),
        };
        if let Some(v) = v {
            out.push((k, v));
        }
    }
}

/// One group's accumulator at one step: how many members had a value, and the fold.
#[derive(Clone, Copy)]
struct Acc {
    n: u32,
    v: f64,
}

fn aggregate<S: Source>(
    engine: &mut Engine<'_, S>,
    a: &AggregateExpr,
    op: TokenId,
    inner: &Inner<'_>,
    steps: Steps,
) -> Result<Vec<Series>, EvalError> {
    // Each fold starts where `eval`'s does: the sum of nothing (as `Iterator::sum` gives
    // it), NaN for min and max, 0 for the mean.
    let start = match op {
        T_SUM => std::iter::empty::<f64>().sum(),
        T_MIN | T_MAX => f64::NAN,
        _ => 0.0,
    };
    let found = each_series(engine, inner, steps)?;
    let mut groups: Vec<(Labels, Vec<Acc>)> = Vec::new();
    let mut index: HashMap<Labels, usize> = HashMap::new();
    for (labels, values) in &found {
        if values.is_empty() {
            continue;
        }
        let key = group_key(&a.modifier, labels);
        let g = *index.entry(key.clone()).or_insert_with(|| {
            groups.push((key, vec![Acc { n: 0, v: start }; steps.count]));
            groups.len() - 1
        });
        let accs = &mut groups[g].1;
        for &(k, v) in values {
            let acc = &mut accs[k];
            acc.n += 1;
            acc.v = match op {
                T_SUM => acc.v + v,
                T_MIN => {
                    if acc.v.is_nan() || v < acc.v {
                        v
                    } else {
                        acc.v
                    }
                }
                T_MAX => {
                    if acc.v.is_nan() || v > acc.v {
                        v
                    } else {
                        acc.v
                    }
                }
                T_COUNT => acc.n as f64,
                // Prometheus's incremental mean, as `eval` folds it.
                _ => acc.v + (v - acc.v) / acc.n as f64,
            };
        }
    }
    Ok(groups
        .into_iter()
        .map(|(key, accs)| {
            let pts = accs
                .iter()
                .enumerate()
                .filter(|(_, acc)| acc.n > 0)
                .map(|(k, acc)| (steps.at(k), acc.v))
                .collect();
            (key, pts)
        })
        .collect())
}
