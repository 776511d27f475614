//! Evaluates a parsed PromQL expression at one time or at each step of a range, over a
//! `Source` of series. Prometheus 2.x's semantics for what is supported (selectors with the
//! lookback, ranges `[t - range, t]`, `offset`, the functions of `funcs`, aggregations by
//! and without, binary operators with scalars and one-to-one between vectors); anything
//! else is refused naming the construct. Each matcher set's points are read once per query,
//! over the widest span its selectors need (`Engine::plan`).
//! Pure: the source does the I/O.

use super::funcs::RangeFn;
use super::labels::{Labels, NAME};
use promql_parser::label::{MatchOp, Matcher};
use promql_parser::parser::token::*;
use promql_parser::parser::{
    AggregateExpr, BinaryExpr, Call, Expr, LabelModifier, MatrixSelector, Offset,
    VectorMatchCardinality, VectorSelector,
};
use std::collections::HashMap;
use std::rc::Rc;

/// Label sets are shared: a series' labels (and its labels without the name) are built
/// once per query, and each step's samples point at them.
pub type SharedLabels = Rc<Labels>;

#[derive(Debug, Clone, PartialEq)]
pub enum ErrorKind {
    /// The query is wrong or asks for what is not supported (400).
    BadData,
    /// It could not be run (422): too many samples, many-to-many matching.
    Execution,
    /// It ran past its `timeout` (503).
    Timeout,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EvalError {
    pub kind: ErrorKind,
    pub message: String,
}

fn bad(message: impl Into<String>) -> EvalError {
    EvalError {
        kind: ErrorKind::BadData,
        message: message.into(),
    }
}

fn exec(message: impl Into<String>) -> EvalError {
    EvalError {
        kind: ErrorKind::Execution,
        message: message.into(),
    }
}

/// One series: its labels and points (timestamp ms, value), oldest first.
pub type Series = (Labels, Vec<(i64, f64)>);

/// What `Source::select_map` hands each series' points to.
pub type MapPoints<'a, T> = dyn Fn(&[(i64, f64)]) -> T + Sync + 'a;

pub trait Source {
    /// Every series matching all `matchers`, with its points in `[from, to]`.
    fn select(&self, matchers: &[Matcher], from: i64, to: i64) -> Result<Vec<Series>, EvalError>;

    /// As `select`, but each series' points are handed to `each` and only its result is
    /// kept, in the same order: a source may then read and map series on several threads
    /// at once, one buffer each, instead of holding every point of every series.
    fn select_map<T: Send>(
        &self,
        matchers: &[Matcher],
        from: i64,
        to: i64,
        each: &MapPoints<'_, T>,
    ) -> Result<Vec<(Labels, T)>, EvalError> {
        Ok(self
            .select(matchers, from, to)?
            .into_iter()
            .map(|(l, p)| {
                let t = each(&p);
                (l, t)
            })
            .collect())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: SharedLabels,
    pub value: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Scalar(f64),
    String(String),
    Vector(Vec<Sample>),
    /// A range selector at the top of an instant query.
    Matrix(Vec<Series>),
}

pub struct Engine<'a, S: Source> {
    source: &'a S,
    pub lookback_ms: i64,
    /// The first and last evaluation times (equal for an instant query).
    start: i64,
    end: i64,
    max_samples: usize,
    loaded: usize,
    /// Loaded series by (selector node, range): the parsed query outlives the engine's use.
    cache: HashMap<(usize, i64), Rc<Loaded>>,
    /// The points of each distinct matcher set, read once per query whatever the number of
    /// selectors using it (`m - m offset 1d`, `rate(m[5m]) / rate(m[1h])`)...
    shared: HashMap<String, Rc<Shared>>,
    /// ...over the widest span those selectors need (`plan`).
    spans: HashMap<String, (i64, i64)>,
    /// Past this, evaluation stops with a `Timeout`.
    pub deadline: Option<std::time::Instant>,
    /// Aggregation group keys by (aggregation, label set), kept across steps for label sets
    /// that live for the whole query (the loaded series'); each entry holds its label set,
    /// so the address it is keyed by cannot be reused by another.
    group_keys: HashMap<(usize, usize), (SharedLabels, SharedLabels)>,
}

/// The series of one matcher set, read once per query, with their shared label sets.
pub struct Shared {
    pub series: Vec<Series>,
    labels: Vec<SharedLabels>,
    nameless: Vec<SharedLabels>,
    /// Whether the label sets stay distinct once the names are dropped (else a function
    /// that drops them gives Prometheus's "same labelset" error).
    nameless_unique: bool,
}

/// One selector's use of its matcher set's series: the series and its own cursors.
pub struct Loaded {
    shared: Rc<Shared>,
    /// Per series, where the last window began and ended: steps move forward, so the next
    /// window is found by moving these on, not by searching again.
    cursors: std::cell::RefCell<Vec<(usize, usize)>>,
}

impl std::ops::Deref for Loaded {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.shared
    }
}

/// A matcher set as text, the same for the same matchers in any order.
fn matcher_key(matchers: &[Matcher]) -> String {
    let mut parts: Vec<String> = matchers
        .iter()
        .map(|m| format!("{:?}\u{1}{:?}\u{1}{:?}", m.name, m.op, m.value))
        .collect();
    parts.sort();
    parts.join("\u{2}")
}

/// Calls `f` with every selector of `e` and the range it is read over (0: an instant one).
fn each_selector(e: &Expr, f: &mut dyn FnMut(&VectorSelector, i64)) {
    match e {
        Expr::VectorSelector(vs) => f(vs, 0),
        Expr::MatrixSelector(ms) => f(&ms.vs, ms.range.as_millis() as i64),
        Expr::Paren(p) => each_selector(&p.expr, f),
        Expr::Unary(u) => each_selector(&u.expr, f),
        Expr::Binary(b) => {
            each_selector(&b.lhs, f);
            each_selector(&b.rhs, f);
        }
        Expr::Aggregate(a) => {
            each_selector(&a.expr, f);
            if let Some(p) = &a.param {
                each_selector(p, f);
            }
        }
        Expr::Call(c) => c.args.args.iter().for_each(|a| each_selector(a, f)),
        Expr::Subquery(_)
        | Expr::NumberLiteral(_)
        | Expr::StringLiteral(_)
        | Expr::Extension(_) => {}
    }
}

impl Loaded {
    /// Series `i`'s points in `[from, to]`.
    fn window(&self, i: usize, from: i64, to: i64) -> &[(i64, f64)] {
        let pts = &self.series[i].1;
        let mut cursors = self.cursors.borrow_mut();
        let (mut a, mut b) = cursors[i];
        if (a > 0 && pts[a - 1].0 >= from) || (b > 0 && pts[b - 1].0 > to) {
            // Earlier than the last window (another use of this selector): search.
            a = pts.partition_point(|p| p.0 < from);
            b = pts.partition_point(|p| p.0 <= to);
        } else {
            while a < pts.len() && pts[a].0 < from {
                a += 1;
            }
            b = b.max(a);
            while b < pts.len() && pts[b].0 <= to {
                b += 1;
            }
        }
        cursors[i] = (a, b);
        &pts[a..b.max(a)]
    }
}

pub(super) fn offset_ms(o: &Option<Offset>) -> i64 {
    match o {
        Some(Offset::Pos(d)) => d.as_millis() as i64,
        Some(Offset::Neg(d)) => -(d.as_millis() as i64),
        None => 0,
    }
}

/// The points of `pts` in `[from, to]`.
fn window(pts: &[(i64, f64)], from: i64, to: i64) -> &[(i64, f64)] {
    let a = pts.partition_point(|p| p.0 < from);
    let b = pts.partition_point(|p| p.0 <= to);
    &pts[a..b.max(a)]
}

pub(super) fn same_labelset() -> EvalError {
    exec("vector cannot contain metrics with the same labelset")
}

/// Prometheus refuses a step whose samples repeat a label set (two series whose names were
/// dropped, say).
fn distinct(v: Vec<Sample>) -> Result<Vec<Sample>, EvalError> {
    let mut seen = std::collections::HashSet::new();
    if v.iter().all(|s| seen.insert(&*s.labels)) {
        Ok(v)
    } else {
        Err(same_labelset())
    }
}

fn nameless(l: &SharedLabels) -> SharedLabels {
    if l.contains_key(NAME) {
        Rc::new(without_name((**l).clone()))
    } else {
        l.clone()
    }
}

fn without_name(mut l: Labels) -> Labels {
    l.remove(NAME);
    l
}

impl<'a, S: Source> Engine<'a, S> {
    pub fn new(source: &'a S, start: i64, end: i64, lookback_ms: i64, max_samples: usize) -> Self {
        Engine {
            source,
            lookback_ms,
            start,
            end,
            max_samples,
            loaded: 0,
            cache: HashMap::new(),
            shared: HashMap::new(),
            spans: HashMap::new(),
            group_keys: HashMap::new(),
            deadline: None,
        }
    }

    /// What a selector asks the source for: its matchers, and the span (ms) that every
    /// step of the query needs.
    pub(super) fn selection(
        &self,
        vs: &VectorSelector,
        range_ms: i64,
    ) -> Result<(Vec<Matcher>, i64, i64), EvalError> {
        if vs.at.is_some() {
            return Err(bad("the @ modifier is not supported"));
        }
        let mut matchers: Vec<Matcher> = vs.matchers.matchers.clone();
        if !vs.matchers.or_matchers.is_empty() {
            return Err(bad("\"or\" inside a selector is not supported"));
        }
        if let Some(name) = &vs.name {
            matchers.push(Matcher::new(MatchOp::Equal, NAME, name));
        }
        let off = offset_ms(&vs.offset);
        let from = self.start - off - range_ms.max(self.lookback_ms);
        Ok((matchers, from, self.end - off))
    }

    /// Notes the span each of `expr`'s matcher sets is needed over, so that a set used by
    /// several selectors is read once, over all of them. Without it each is read over its
    /// first selector's span.
    pub fn plan(&mut self, expr: &Expr) {
        let mut spans = std::mem::take(&mut self.spans);
        each_selector(expr, &mut |vs, range| {
            if let Ok((matchers, from, to)) = self.selection(vs, range) {
                let span = spans.entry(matcher_key(&matchers)).or_insert((from, to));
                *span = (span.0.min(from), span.1.max(to));
            }
        });
        self.spans = spans;
    }

    pub(super) fn source(&self) -> &'a S {
        self.source
    }

    /// Counts `n` more samples read against the query's limit.
    pub(super) fn count_loaded(&mut self, n: usize) -> Result<(), EvalError> {
        self.loaded += n;
        if self.loaded > self.max_samples {
            return Err(exec(format!(
                "the query would touch more than {} samples; narrow the selector or the range",
                self.max_samples
            )));
        }
        Ok(())
    }

    /// The series of a selector over everything the query's steps need, loaded once.
    pub(super) fn series(
        &mut self,
        vs: &VectorSelector,
        range_ms: i64,
    ) -> Result<Rc<Loaded>, EvalError> {
        let key = (vs as *const VectorSelector as usize, range_ms);
        if let Some(s) = self.cache.get(&key) {
            return Ok(s.clone());
        }
        let (matchers, from, to) = self.selection(vs, range_ms)?;
        let mkey = matcher_key(&matchers);
        let shared = match self.shared.get(&mkey) {
            // Read for another selector over a span that covers this one's (`plan`).
            Some(s) if self.spans.contains_key(&mkey) => s.clone(),
            _ => {
                let (from, to) = self.spans.get(&mkey).copied().unwrap_or((from, to));
                self.check_deadline()?;
                let series = self.source.select(&matchers, from, to)?;
                self.check_deadline()?;
                self.count_loaded(series.iter().map(|s| s.1.len()).sum::<usize>())?;
                let labels: Vec<SharedLabels> =
                    series.iter().map(|s| Rc::new(s.0.clone())).collect();
                let nameless: Vec<SharedLabels> = labels.iter().map(nameless).collect();
                let mut seen = std::collections::HashSet::new();
                let nameless_unique = nameless.iter().all(|l| seen.insert(&**l));
                let shared = Rc::new(Shared {
                    series,
                    labels,
                    nameless,
                    nameless_unique,
                });
                self.shared.insert(mkey, shared.clone());
                shared
            }
        };
        let cursors = std::cell::RefCell::new(vec![(0, 0); shared.series.len()]);
        let rc = Rc::new(Loaded { shared, cursors });
        self.cache.insert(key, rc.clone());
        Ok(rc)
    }

    /// A `Timeout` once the deadline has passed (asked after each load and at each step).
    pub fn check_deadline(&self) -> Result<(), EvalError> {
        if self.deadline.is_some_and(|d| std::time::Instant::now() > d) {
            return Err(EvalError {
                kind: ErrorKind::Timeout,
                message: "query timed out in expression evaluation".into(),
            });
        }
        Ok(())
    }

    pub fn eval(&mut self, e: &Expr, t: i64) -> Result<Value, EvalError> {
        match e {
            Expr::NumberLiteral(n) => Ok(Value::Scalar(n.val)),
            Expr::StringLiteral(s) => Ok(Value::String(s.val.clone())),
            Expr::Paren(p) => self.eval(&p.expr, t),
            Expr::Unary(u) => match self.eval(&u.expr, t)? {
                Value::Scalar(v) => Ok(Value::Scalar(-v)),
                Value::Vector(v) => Ok(Value::Vector(distinct(
                    v.into_iter()
                        .map(|s| Sample {
                            labels: nameless(&s.labels),
                            value: -s.value,
                        })
                        .collect(),
                )?)),
                _ => Err(bad("unary minus applies to a scalar or an instant vector")),
            },
            Expr::VectorSelector(vs) => {
                let off = offset_ms(&vs.offset);
                let (to, from) = (t - off, t - off - self.lookback_ms);
                let loaded = self.series(vs, 0)?;
                let mut out = Vec::with_capacity(loaded.series.len());
                for (i, l) in loaded.labels.iter().enumerate() {
                    if let Some(p) = loaded.window(i, from, to).last() {
                        out.push(Sample {
                            labels: l.clone(),
                            value: p.1,
                        });
                    }
                }
                Ok(Value::Vector(out))
            }
            Expr::MatrixSelector(ms) => {
                let (range, loaded) = self.matrix(ms)?;
                let off = offset_ms(&ms.vs.offset);
                Ok(Value::Matrix(
                    loaded
                        .series
                        .iter()
                        .map(|(l, pts)| (l.clone(), window(pts, t - off - range, t - off).to_vec()))
                        .filter(|s| !s.1.is_empty())
                        .collect(),
                ))
            }
            Expr::Call(c) => self.call(c, t),
            Expr::Aggregate(a) => self.aggregate(a, t),
            Expr::Binary(b) => self.binary(b, t),
            Expr::Subquery(_) => Err(bad("subqueries are not supported")),
            Expr::Extension(_) => Err(bad("this expression is not supported")),
        }
    }

    fn matrix(&mut self, ms: &MatrixSelector) -> Result<(i64, Rc<Loaded>), EvalError> {
        let range = ms.range.as_millis() as i64;
        Ok((range, self.series(&ms.vs, range)?))
    }

    fn scalar_arg(&mut self, e: &Expr, t: i64, what: &str) -> Result<f64, EvalError> {
        match self.eval(e, t)? {
            Value::Scalar(v) => Ok(v),
            _ => Err(bad(format!("{what} must be a scalar"))),
        }
    }

    fn vector_arg(&mut self, e: &Expr, t: i64) -> Result<Vec<Sample>, EvalError> {
        match self.eval(e, t)? {
            Value::Vector(v) => Ok(v),
            Value::Scalar(_) => Err(bad("expected an instant vector, got a scalar")),
            _ => Err(bad("expected an instant vector")),
        }
    }

    fn call(&mut self, c: &Call, t: i64) -> Result<Value, EvalError> {
        let name = c.func.name;
        let args = &c.args.args;

        match name {
            _ if RangeFn::by_name(name).is_some() => {
                let f = RangeFn::by_name(name).expect("matched above");
                let (q, ms) = if f == RangeFn::Quantile {
                    (
                        Some(self.scalar_arg(&args[0], t, "quantile_over_time's φ")?),
                        as_matrix(name, &args[1])?,
                    )
                } else {
                    (None, as_matrix(name, &args[0])?)
                };
                let (range, loaded) = self.matrix(ms)?;
                let keeps_name = f.keeps_name();
                if !keeps_name && !loaded.nameless_unique {
                    // Prometheus checks each step's result; with two series of one label
                    // set in the range it fails wherever both have points.
                    let off = offset_ms(&ms.vs.offset);
                    let (from, to) = (t - off - range, t - off);
                    let mut seen = std::collections::HashSet::new();
                    for ((_, pts), l) in loaded.series.iter().zip(&loaded.nameless) {
                        if window(pts, from, to).len() >= f.min_points() && !seen.insert(&**l) {
                            return Err(same_labelset());
                        }
                    }
                }
                let off = offset_ms(&ms.vs.offset);
                let (from, to) = (t - off - range, t - off);
                let out = (0..loaded.series.len())
                    .zip(loaded.labels.iter().zip(&loaded.nameless))
                    .filter_map(|(i, (l, nl))| {
                        let w = loaded.window(i, from, to);
                        let v = f.apply(w, from, to, q)?;
                        let labels = if keeps_name { l.clone() } else { nl.clone() };
                        Some(Sample { labels, value: v })
                    })
                    .collect();
                Ok(Value::Vector(out))
            }
            "abs" | "round" | "clamp_min" | "clamp_max" | "ceil" | "floor" | "sqrt" | "ln"
            | "exp" => {
                let v = self.vector_arg(&args[0], t)?;
                let p = match name {
                    "clamp_min" | "clamp_max" => Some(self.scalar_arg(&args[1], t, "the bound")?),
                    "round" if args.len() > 1 => {
                        Some(self.scalar_arg(&args[1], t, "round's to_nearest")?)
                    }
                    _ => None,
                };
                let f = |x: f64| match name {
                    "abs" => x.abs(),
                    "ceil" => x.ceil(),
                    "floor" => x.floor(),
                    "sqrt" => x.sqrt(),
                    "ln" => x.ln(),
                    "exp" => x.exp(),
                    "clamp_min" => x.max(p.unwrap_or(f64::NAN)),
                    "clamp_max" => x.min(p.unwrap_or(f64::NAN)),
                    _ => {
                        // Prometheus: floor(v / to_nearest + 0.5) * to_nearest, via the inverse.
                        let inv = 1.0 / p.unwrap_or(1.0);
                        (x * inv + 0.5).floor() / inv
                    }
                };
                Ok(Value::Vector(distinct(
                    v.into_iter()
                        .map(|s| Sample {
                            labels: nameless(&s.labels),
                            value: f(s.value),
                        })
                        .collect(),
                )?))
            }
            "absent" => {
                let v = self.vector_arg(&args[0], t)?;
                if !v.is_empty() {
                    return Ok(Value::Vector(Vec::new()));
                }
                let mut labels = Labels::new();
                if let Expr::VectorSelector(vs) = &*args[0] {
                    for m in &vs.matchers.matchers {
                        if matches!(m.op, MatchOp::Equal) && m.name != NAME {
                            labels.insert(m.name.clone(), m.value.clone());
                        }
                    }
                }
                Ok(Value::Vector(vec![Sample {
                    labels: Rc::new(labels),
                    value: 1.0,
                }]))
            }
            "label_replace" => {
                let v = self.vector_arg(&args[0], t)?;
                let text = |i: usize| match &*args[i] {
                    Expr::StringLiteral(s) => Ok(s.val.clone()),
                    _ => Err(bad("label_replace takes string literals")),
                };
                let (dst, repl, src, re) = (text(1)?, text(2)?, text(3)?, text(4)?);
                let re = regex::Regex::new(&format!("^(?:{re})$"))
                    .map_err(|e| bad(format!("label_replace: invalid regex {re:?}: {e}")))?;
                let out = v
                    .into_iter()
                    .map(|mut s| {
                        let value = s.labels.get(&src).cloned().unwrap_or_default();
                        if let Some(caps) = re.captures(&value) {
                            let mut res = String::new();
                            caps.expand(&repl, &mut res);
                            let l = Rc::make_mut(&mut s.labels);
                            if res.is_empty() {
                                l.remove(&dst);
                            } else {
                                l.insert(dst.clone(), res);
                            }
                        }
                        s
                    })
                    .collect();
                Ok(Value::Vector(distinct(out)?))
            }
            "vector" => Ok(Value::Vector(vec![Sample {
                labels: Rc::new(Labels::new()),
                value: self.scalar_arg(&args[0], t, "vector's argument")?,
            }])),
            "scalar" => {
                let v = self.vector_arg(&args[0], t)?;
                Ok(Value::Scalar(if v.len() == 1 {
                    v[0].value
                } else {
                    f64::NAN
                }))
            }
            "time" => Ok(Value::Scalar(t as f64 / 1000.0)),
            other => Err(bad(format!("the function {other} is not supported"))),
        }
    }

    fn aggregate(&mut self, a: &AggregateExpr, t: i64) -> Result<Value, EvalError> {
        let op = a.op.id();
        let k = match op {
            T_TOPK | T_BOTTOMK => {
                let e = a
                    .param
                    .as_ref()
                    .ok_or_else(|| bad("topk and bottomk take k"))?;
                Some(self.scalar_arg(e, t, "k")?)
            }
            T_SUM | T_AVG | T_MIN | T_MAX | T_COUNT => None,
            _ => return Err(bad(format!("the aggregation {} is not supported", a.op))),
        };
        let input = self.vector_arg(&a.expr, t)?;
        let modifier = &a.modifier;
        let key_of = |l: &Labels| group_key(modifier, l);
        let mut groups: Vec<(SharedLabels, Vec<Sample>)> = Vec::new();
        if modifier.is_none() {
            // One group: no key to build or look up.
            if !input.is_empty() {
                groups.push((Rc::new(Labels::new()), input));
            }
        } else {
            let agg_id = a as *const AggregateExpr as usize;
            let mut index: HashMap<SharedLabels, usize> = HashMap::new();
            for s in input {
                // The same series gives the same key at every step: built once per query
                // for shared label sets; a set made for this step alone is keyed directly.
                let g = if Rc::strong_count(&s.labels) > 1 {
                    let (labels, ptr) = (s.labels.clone(), Rc::as_ptr(&s.labels) as usize);
                    self.group_keys
                        .entry((agg_id, ptr))
                        .or_insert_with(|| (labels, Rc::new(key_of(&s.labels))))
                        .1
                        .clone()
                } else {
                    Rc::new(key_of(&s.labels))
                };
                let i = *index.entry(g.clone()).or_insert_with(|| {
                    groups.push((g, Vec::new()));
                    groups.len() - 1
                });
                groups[i].1.push(s);
            }
        }
        let mut out = Vec::new();
        for (labels, mut members) in groups {
            if let Some(k) = k {
                let k = if k.is_nan() { 0 } else { k.max(0.0) as usize };
                members.sort_by(|x, y| {
                    let o = x.value.total_cmp(&y.value);
                    if op == T_TOPK {
                        o.reverse()
                    } else {
                        o
                    }
                });
                out.extend(members.into_iter().take(k));
                continue;
            }
            let values = members.iter().map(|s| s.value);
            let value = match op {
                T_SUM => values.sum(),
                T_COUNT => members.len() as f64,
                T_MIN => values.fold(f64::NAN, |m, v| if m.is_nan() || v < m { v } else { m }),
                T_MAX => values.fold(f64::NAN, |m, v| if m.is_nan() || v > m { v } else { m }),
                _ => {
                    let mut mean = 0.0;
                    for (i, v) in values.enumerate() {
                        mean += (v - mean) / (i + 1) as f64;
                    }
                    mean
                }
            };
            out.push(Sample { labels, value });
        }
        Ok(Value::Vector(out))
    }

    fn binary(&mut self, b: &BinaryExpr, t: i64) -> Result<Value, EvalError> {
        let op = b.op.id();
        if b.op.is_set_operator() || op == T_ATAN2 {
            return Err(bad(format!("the operator {} is not supported", b.op)));
        }
        let comparison = b.op.is_comparison_operator();
        let return_bool = b.modifier.as_ref().is_some_and(|m| m.return_bool);
        let apply = |l: f64, r: f64| -> (f64, bool) {
            let c = |x: bool| (if x { 1.0 } else { 0.0 }, x);
            match op {
                T_ADD => (l + r, true),
                T_SUB => (l - r, true),
                T_MUL => (l * r, true),
                T_DIV => (l / r, true),
                T_MOD => (l % r, true),
                T_POW => (l.powf(r), true),
                T_EQLC => c(l == r),
                T_NEQ => c(l != r),
                T_GTR => c(l > r),
                T_LSS => c(l < r),
                T_GTE => c(l >= r),
                _ => c(l <= r),
            }
        };
        let lhs = self.eval(&b.lhs, t)?;
        let rhs = self.eval(&b.rhs, t)?;
        match (lhs, rhs) {
            (Value::Scalar(l), Value::Scalar(r)) => Ok(Value::Scalar(apply(l, r).0)),
            (Value::Vector(v), Value::Scalar(s)) | (Value::Scalar(s), Value::Vector(v)) => {
                let scalar_left = matches!(self.kind_of(&b.lhs), Kind::Scalar);
                let out = v
                    .into_iter()
                    .filter_map(|smp| {
                        let (l, r) = if scalar_left {
                            (s, smp.value)
                        } else {
                            (smp.value, s)
                        };
                        let (res, keep) = apply(l, r);
                        if comparison && !return_bool {
                            // A filter: the vector's own value, its name kept.
                            return keep.then_some(smp);
                        }
                        Some(Sample {
                            labels: nameless(&smp.labels),
                            value: res,
                        })
                    })
                    .collect();
                Ok(Value::Vector(distinct(out)?))
            }
            (Value::Vector(l), Value::Vector(r)) => {
                let modifier = b.modifier.as_ref();
                if let Some(m) = modifier {
                    if !matches!(m.card, VectorMatchCardinality::OneToOne) {
                        return Err(bad("group_left and group_right are not supported"));
                    }
                }
                let matching = modifier.and_then(|m| m.matching.clone());
                let signature = |labels: &Labels| -> Labels {
                    match &matching {
                        Some(LabelModifier::Include(on)) => labels
                            .iter()
                            .filter(|(n, _)| on.labels.contains(n))
                            .map(|(n, v)| (n.clone(), v.clone()))
                            .collect(),
                        Some(LabelModifier::Exclude(ign)) => labels
                            .iter()
                            .filter(|(n, _)| !ign.labels.contains(n) && n.as_str() != NAME)
                            .map(|(n, v)| (n.clone(), v.clone()))
                            .collect(),
                        None => without_name(labels.clone()),
                    }
                };
                let mut right: HashMap<Labels, f64> = HashMap::new();
                for s in &r {
                    if right.insert(signature(&s.labels), s.value).is_some() {
                        return Err(exec("many-to-many matching not allowed: matching labels must be unique on one side"));
                    }
                }
                let mut seen: HashMap<Labels, ()> = HashMap::new();
                let mut out = Vec::new();
                for s in l {
                    let sig = signature(&s.labels);
                    let Some(&rv) = right.get(&sig) else { continue };
                    if seen.insert(sig.clone(), ()).is_some() {
                        return Err(exec("many-to-many matching not allowed: matching labels must be unique on one side"));
                    }
                    let (res, keep) = apply(s.value, rv);
                    if comparison && !return_bool {
                        if keep {
                            out.push(s);
                        }
                        continue;
                    }
                    let labels = match &matching {
                        Some(LabelModifier::Include(_)) => sig,
                        _ => signature_drop(&s.labels, &matching),
                    };
                    out.push(Sample {
                        labels: Rc::new(labels),
                        value: res,
                    });
                }
                Ok(Value::Vector(out))
            }
            _ => Err(bad(format!(
                "the operator {} takes scalars or instant vectors",
                b.op
            ))),
        }
    }

    /// Whether an expression gives a scalar (for the side of a scalar in a binary operation).
    fn kind_of(&self, e: &Expr) -> Kind {
        match e {
            Expr::NumberLiteral(_) => Kind::Scalar,
            Expr::Paren(p) => self.kind_of(&p.expr),
            Expr::Unary(u) => self.kind_of(&u.expr),
            Expr::Call(c) if c.func.name == "time" || c.func.name == "scalar" => Kind::Scalar,
            Expr::Binary(b) => match (self.kind_of(&b.lhs), self.kind_of(&b.rhs)) {
                (Kind::Scalar, Kind::Scalar) => Kind::Scalar,
                _ => Kind::Vector,
            },
            _ => Kind::Vector,
        }
    }
}

/// A range function's argument, by reference: the cache of loaded series is keyed by the
/// selector node's address, so it must be the query's own node, never a copy.
/// An aggregation's group for a sample's labels: those `by` names, or all but the name and
/// those `without` names, or none.
pub(super) fn group_key(modifier: &Option<LabelModifier>, l: &Labels) -> Labels {
    match modifier {
        Some(LabelModifier::Include(by)) => l
            .iter()
            .filter(|(n, _)| by.labels.contains(n))
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect(),
        Some(LabelModifier::Exclude(without)) => l
            .iter()
            .filter(|(n, _)| !without.labels.contains(n) && n.as_str() != NAME)
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect(),
        None => Labels::new(),
    }
}

fn as_matrix<'e>(name: &str, e: &'e Expr) -> Result<&'e MatrixSelector, EvalError> {
    match e {
        Expr::MatrixSelector(ms) => Ok(ms),
        _ => Err(bad(format!("{name} takes a range vector such as m[5m]"))),
    }
}

enum Kind {
    Scalar,
    Vector,
}

/// A one-to-one result's labels without `on`: the left side's, minus the name and the
/// `ignoring` labels.
fn signature_drop(labels: &Labels, matching: &Option<LabelModifier>) -> Labels {
    let mut l = without_name(labels.clone());
    if let Some(LabelModifier::Exclude(ign)) = matching {
        for n in &ign.labels {
            l.remove(n);
        }
    }
    l
}
