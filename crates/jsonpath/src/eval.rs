//! Executing a parsed template over a [`serde_json::Value`] (client-go's `jsonpath.go`):
//! result groups, `{range}`/`{end}` blocks, fields, slices, filters, unions, wildcards and
//! recursive descent, and printing the groups as kubectl does.

use std::borrow::Cow;
use std::cmp::Ordering;

use serde_json::{Number, Value};

use crate::Error;
use crate::format::{go_sprint, go_type_name, marshal_go_json_indent, result_text};
use crate::parser::{Filter, Node, Param, Segment, parse_template};

type Val<'a> = Cow<'a, Value>;

/// A template block: text, an action, or a `{range EXPR}...{end}` loop.
#[derive(Debug, Clone, PartialEq)]
enum Block {
    Text(String),
    Action(Vec<Node>),
    Range { expr: Vec<Node>, body: Vec<Block> },
    StrayEnd,
}

/// A parsed JSONPath template.
///
/// Missing keys are errors unless [`JsonPath::allow_missing_keys`] is set (kubectl sets it).
#[derive(Debug, Clone, PartialEq)]
pub struct JsonPath {
    blocks: Vec<Block>,
    allow_missing_keys: bool,
    json_output: bool,
}

fn exec_err(msg: impl Into<String>) -> Error {
    Error::Execute(msg.into())
}

fn structure(segments: Vec<Segment>) -> Vec<Block> {
    // Stack of open ranges: (expr, body so far); the bottom frame is the template itself.
    let mut stack: Vec<(Vec<Node>, Vec<Block>)> = vec![(Vec::new(), Vec::new())];
    for segment in segments {
        let block = match segment {
            Segment::Text(t) => Block::Text(t),
            Segment::Action(mut nodes) => match nodes.first() {
                Some(Node::Identifier(id)) if id == "range" => {
                    nodes.remove(0);
                    stack.push((nodes, Vec::new()));
                    continue;
                }
                Some(Node::Identifier(id)) if id == "end" => {
                    if stack.len() > 1 {
                        let (expr, body) = stack.pop().unwrap_or_default();
                        Block::Range { expr, body }
                    } else {
                        Block::StrayEnd
                    }
                }
                _ => Block::Action(nodes),
            },
        };
        if let Some(top) = stack.last_mut() {
            top.1.push(block);
        }
    }
    // A range without `{end}` runs to the end of the template.
    while stack.len() > 1 {
        let (expr, body) = stack.pop().unwrap_or_default();
        if let Some(top) = stack.last_mut() {
            top.1.push(Block::Range { expr, body });
        }
    }
    stack.pop().map(|(_, body)| body).unwrap_or_default()
}

/// Children of a value for `.*` and `..`: map values (by sorted key), list items, and a string's
/// bytes (as numbers, as Go's reflection yields them).
fn children<'a>(v: &Val<'a>) -> Vec<Val<'a>> {
    fn of(v: &Value) -> Vec<&Value> {
        match v {
            Value::Object(map) => {
                let mut entries: Vec<_> = map.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                entries.into_iter().map(|(_, v)| v).collect()
            }
            Value::Array(items) => items.iter().collect(),
            _ => Vec::new(),
        }
    }
    if let Value::String(s) = v.as_ref() {
        return s.bytes().map(|b| Cow::Owned(Value::Number(b.into()))).collect();
    }
    match v {
        Cow::Borrowed(r) => of(r).into_iter().map(Cow::Borrowed).collect(),
        Cow::Owned(o) => of(o).into_iter().map(|c| Cow::Owned(c.clone())).collect(),
    }
}

fn field<'a>(v: &Val<'a>, name: &str) -> Option<Val<'a>> {
    match v {
        Cow::Borrowed(r) => r.as_object()?.get(name).map(Cow::Borrowed),
        Cow::Owned(o) => o.as_object()?.get(name).map(|c| Cow::Owned(c.clone())),
    }
}

fn index<'a>(v: &Val<'a>, i: usize) -> Val<'a> {
    match v {
        Cow::Borrowed(r) => Cow::Borrowed(&r[i]),
        Cow::Owned(o) => Cow::Owned(o[i].clone()),
    }
}

#[derive(Debug, PartialEq)]
enum Kind<'v> {
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(&'v str),
}

fn basic_kind(v: &Value) -> Result<Kind<'_>, Error> {
    match v {
        Value::Bool(b) => Ok(Kind::Bool(*b)),
        Value::String(s) => Ok(Kind::Str(s)),
        Value::Number(n) => Ok(number_kind(n)),
        _ => Err(exec_err("invalid type for comparison")),
    }
}

fn number_kind(n: &Number) -> Kind<'static> {
    if let Some(i) = n.as_i64() {
        Kind::Int(i.into())
    } else if let Some(u) = n.as_u64() {
        Kind::Int(u.into())
    } else {
        Kind::Float(n.as_f64().unwrap_or(0.0))
    }
}

/// The forked text/template `eq`.
fn equal(l: &Value, r: &Value) -> Result<bool, Error> {
    match (basic_kind(l)?, basic_kind(r)?) {
        (Kind::Bool(a), Kind::Bool(b)) => Ok(a == b),
        (Kind::Int(a), Kind::Int(b)) => Ok(a == b),
        (Kind::Float(a), Kind::Float(b)) => Ok(a == b),
        (Kind::Str(a), Kind::Str(b)) => Ok(a == b),
        _ => Err(exec_err("incompatible types for comparison")),
    }
}

/// The forked text/template `lt`.
fn less(l: &Value, r: &Value) -> Result<bool, Error> {
    match (basic_kind(l)?, basic_kind(r)?) {
        (Kind::Bool(_), Kind::Bool(_)) => Err(exec_err("invalid type for comparison")),
        (Kind::Int(a), Kind::Int(b)) => Ok(a < b),
        (Kind::Float(a), Kind::Float(b)) => Ok(a.partial_cmp(&b) == Some(Ordering::Less)),
        (Kind::Str(a), Kind::Str(b)) => Ok(a < b),
        _ => Err(exec_err("incompatible types for comparison")),
    }
}

fn compare(op: &str, l: &Value, r: &Value) -> Result<bool, Error> {
    match op {
        "<" => less(l, r),
        "<=" => Ok(less(l, r)? || equal(l, r)?),
        ">" => Ok(!(less(l, r)? || equal(l, r)?)),
        ">=" => Ok(!less(l, r)?),
        "==" => equal(l, r),
        "!=" => Ok(!equal(l, r)?),
        _ => Err(exec_err(format!("unrecognized filter operator {op}"))),
    }
}

impl JsonPath {
    /// Parses a template such as `{range .items[*]}{.metadata.name}{"\n"}{end}`.
    pub fn parse(template: &str) -> Result<Self, Error> {
        Ok(Self {
            blocks: structure(parse_template(template)?),
            allow_missing_keys: false,
            json_output: false,
        })
    }

    /// Missing fields yield nothing instead of an `X is not found` error.
    pub fn allow_missing_keys(mut self, allow: bool) -> Self {
        self.allow_missing_keys = allow;
        self
    }

    /// Print each result group as an indented JSON array (`-o jsonpath-as-json`).
    pub fn json_output(mut self, enable: bool) -> Self {
        self.json_output = enable;
        self
    }

    /// The result groups, one per text or action executed (ranges contribute one per iteration
    /// and action); borrowed from `data` where possible.
    pub fn find_results<'a>(&self, data: &'a Value) -> Result<Vec<Vec<Cow<'a, Value>>>, Error> {
        let mut out = Vec::new();
        self.run(&self.blocks, Cow::Borrowed(data), &mut out)?;
        Ok(out)
    }

    /// Executes the template and prints the results as kubectl does: results of one group
    /// separated by a space, strings raw, maps and lists as compact JSON.
    pub fn execute(&self, data: &Value) -> Result<String, Error> {
        let groups = self.find_results(data)?;
        let mut out = String::new();
        for group in groups {
            if self.json_output {
                let list = Value::Array(group.into_iter().map(Cow::into_owned).collect());
                out.push_str(&marshal_go_json_indent(&list));
                out.push('\n');
                continue;
            }
            for (i, v) in group.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(&result_text(v));
            }
        }
        Ok(out)
    }

    fn run<'a>(&self, blocks: &[Block], data: Val<'a>, out: &mut Vec<Vec<Val<'a>>>) -> Result<(), Error> {
        for block in blocks {
            match block {
                Block::Text(t) => out.push(vec![Cow::Owned(Value::String(t.clone()))]),
                Block::Action(nodes) => out.push(self.eval_list(vec![data.clone()], nodes)?),
                Block::Range { expr, body } => {
                    let items = self.eval_list(vec![data.clone()], expr)?;
                    if items.is_empty() {
                        // Upstream still walks the body once (on nothing), so its errors surface.
                        let mut scratch = Vec::new();
                        self.run(body, Cow::Owned(Value::Null), &mut scratch)?;
                    }
                    for item in items {
                        self.run(body, item, out)?;
                    }
                }
                Block::StrayEnd => return Err(exec_err("not in range, nothing to end")),
            }
        }
        Ok(())
    }

    fn eval_list<'a>(&self, input: Vec<Val<'a>>, nodes: &[Node]) -> Result<Vec<Val<'a>>, Error> {
        nodes.iter().try_fold(input, |cur, node| self.eval_node(cur, node))
    }

    fn eval_node<'a>(&self, input: Vec<Val<'a>>, node: &Node) -> Result<Vec<Val<'a>>, Error> {
        let repeat = |v: Value| vec![Cow::Owned(v); input.len()];
        match node {
            Node::Text(t) => Ok(vec![Cow::Owned(Value::String(t.clone()))]),
            Node::Int(i) => Ok(repeat(Value::Number((*i).into()))),
            Node::Float(f) => Ok(repeat(Number::from_f64(*f).map_or(Value::Null, Value::Number))),
            Node::Bool(b) => Ok(repeat(Value::Bool(*b))),
            Node::Field(name) => self.eval_field(input, name),
            Node::Array(params) => eval_array(input, params),
            Node::Filter(filter) => self.eval_filter(input, filter),
            Node::Wildcard => Ok(input.iter().filter(|v| !v.is_null()).flat_map(children).collect()),
            Node::Recursive => Ok(eval_recursive(input)),
            Node::Union(lists) => {
                let mut out = Vec::new();
                for list in lists {
                    out.extend(self.eval_list(input.clone(), list)?);
                }
                Ok(out)
            }
            Node::Identifier(id) if id == "range" => Ok(input),
            Node::Identifier(id) if id == "end" => Err(exec_err("not in range, nothing to end")),
            Node::Identifier(id) => Err(exec_err(format!("unrecognized identifier {id}"))),
        }
    }

    fn eval_field<'a>(&self, input: Vec<Val<'a>>, name: &str) -> Result<Vec<Val<'a>>, Error> {
        if input.is_empty() {
            return Ok(input);
        }
        let results: Vec<Val<'a>> = input.iter().filter_map(|v| field(v, name)).collect();
        if results.is_empty() && !self.allow_missing_keys {
            return Err(exec_err(format!("{name} is not found")));
        }
        Ok(results)
    }

    fn eval_filter<'a>(&self, input: Vec<Val<'a>>, filter: &Filter) -> Result<Vec<Val<'a>>, Error> {
        let mut results = Vec::new();
        for value in &input {
            let Value::Array(items) = value.as_ref() else {
                return Err(exec_err(format!(
                    "{} is not array or slice and cannot be filtered",
                    go_sprint(value)
                )));
            };
            for i in 0..items.len() {
                let item = index(value, i);
                let lefts = self.eval_list(vec![item.clone()], &filter.left);
                if filter.op == "exists" {
                    if lefts.is_ok_and(|l| !l.is_empty()) {
                        results.push(item);
                    }
                    continue;
                }
                let lefts = lefts?;
                let left = match lefts.as_slice() {
                    [] => continue,
                    [one] => one,
                    _ => return Err(exec_err("can only compare one element at a time")),
                };
                let rights = self.eval_list(vec![item.clone()], &filter.right)?;
                let right = match rights.as_slice() {
                    [] => continue,
                    [one] => one,
                    _ => return Err(exec_err("can only compare one element at a time")),
                };
                if compare(&filter.op, left, right)? {
                    results.push(item);
                }
            }
        }
        Ok(results)
    }
}

fn eval_array<'a>(input: Vec<Val<'a>>, params: &[Param; 3]) -> Result<Vec<Val<'a>>, Error> {
    let mut results = Vec::new();
    for value in &input {
        if value.is_null() {
            continue;
        }
        let Value::Array(items) = value.as_ref() else {
            return Err(exec_err(format!("{} is not array or slice", go_type_name(value))));
        };
        let len = items.len() as i64;
        let mut start = if params[0].known { params[0].value } else { 0 };
        if start < 0 {
            start += len;
        }
        let mut end = if params[1].known { params[1].value } else { len };
        if end < 0 || (end == 0 && params[1].derived) {
            end += len;
        }
        if start == end {
            // Upstream stops here, returning what earlier inputs produced.
            return Ok(results);
        }
        if start >= len || start < 0 {
            return Err(exec_err(format!(
                "array index out of bounds: index {start}, length {len}"
            )));
        }
        if end > len || end < 0 {
            return Err(exec_err(format!(
                "array index out of bounds: index {}, length {len}",
                end - 1
            )));
        }
        if start > end {
            return Err(exec_err(format!(
                "starting index {start} is greater than ending index {end}"
            )));
        }
        let step = if params[2].known {
            if params[2].value <= 0 {
                return Err(exec_err("step must be > 0"));
            }
            params[2].value as usize
        } else {
            1
        };
        for i in (start as usize..end as usize).step_by(step) {
            results.push(index(value, i));
        }
    }
    Ok(results)
}

/// `..`: every value that has children, followed by its descendants, depth first.
fn eval_recursive<'a>(input: Vec<Val<'a>>) -> Vec<Val<'a>> {
    let mut out = Vec::new();
    for value in input {
        if value.is_null() {
            continue;
        }
        let kids = children(&value);
        if kids.is_empty() {
            continue;
        }
        out.push(value);
        out.extend(eval_recursive(kids));
    }
    out
}
