//! CEL expressions: compiled once at save time, evaluated many times against
//! JSON variables.
//!
//! # Safety limits
//!
//! Before an expression reaches the CEL parser it must be at most [`MAX_LEN`]
//! bytes, nest brackets (`(`, `[`, `{`) and conditionals (`a ? b : c ? d : e`)
//! at most [`MAX_DEPTH`] deep, and have an estimated syntax depth (operator
//! chains such as `a + b + c …` count their length) of at most
//! [`MAX_AST_DEPTH`]; after parsing the exact syntax tree depth is checked
//! against [`MAX_AST_DEPTH`] too. Parsing and evaluation recurse over that
//! depth, so a hostile expression is rejected before it can overflow a stack.
//! Panics inside the CEL crate are caught and become [`ExprError`]s.
//!
//! Stack budget: with the `cel` and `antlr4rust` crates optimised (release
//! builds, or `[profile.dev.package.cel]` / `[profile.dev.package.antlr4rust]`
//! `opt-level = 2` in the workspace), an expression at the limits needs under
//! 1 MiB of stack to compile and evaluate. Unoptimised, those crates need about
//! 250 KiB per bracket level to parse and 64 KiB per level to evaluate, so a
//! plain debug build can overflow a 2 MiB (tokio worker) stack on expressions
//! well within the limits.
//!
//! # Numbers
//!
//! JSON integers become CEL `int` (signed), integers above `i64::MAX` `uint`,
//! other numbers `double`. Results convert back: `int`/`uint` to JSON
//! integers, `double` to JSON floats (NaN and infinities are errors).
//!
//! # Functions
//!
//! The CEL standard library plus the `strings` (`lowerAscii`, `trim`, `split`,
//! `replace`, `join`, …), `math` (`math.greatest`, `math.abs`, …) and list
//! (`sort`, `distinct`, `flatten`, `slice`, `sortBy`, …) extensions. The
//! `lists.range(n)` function is deliberately not reachable: it allocates a list
//! of any size from a tiny expression. Function names are not checked at
//! compile time: calling an unknown function is an evaluation error.
//!
//! CEL has no cost limit here: nested comprehensions over literal lists can
//! still make an evaluation slow or large. Expressions come from workflow
//! authors, not from run inputs.

use std::collections::HashMap;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, LazyLock};

use cel::common::ast::{EntryExpr, Expr as Ast};
use cel::common::types::{
    CelBool, CelDouble, CelInt, CelList, CelMap, CelMapKey, CelNull, CelString, CelUInt,
};
use cel::common::value::Val;
use cel::objects::{Key, Map};
use cel::{Context, Env, ExecutionError, IdedExpr, Program, Value as CelValue};
use serde_json::Value as Json;

/// The longest expression accepted, in bytes.
pub const MAX_LEN: usize = 4096;

/// The deepest nesting of brackets (`(`, `[`, `{`) and conditionals
/// (`a ? b : c ? d : e`) accepted, checked before parsing.
pub const MAX_DEPTH: usize = 32;

/// The deepest syntax tree accepted, estimated before parsing and checked
/// after. Operators chain: `1 + 2 + 3` is two levels deep, `a.b.c` three.
pub const MAX_AST_DEPTH: usize = 128;

/// The deepest JSON value converted to or from CEL during an evaluation.
const MAX_VALUE_DEPTH: usize = 256;

/// Function namespaces: `math.abs(x)` names the function `math.abs`, not a
/// field of a variable `math`. (`lists` is left out on purpose, see the module
/// documentation; `optional` is CEL's own.)
const FUNCTION_NAMESPACES: &[&str] = &["math", "strings", "optional"];

/// Type names an expression may use as identifiers, e.g. `type(x) == string`.
const TYPE_NAMES: &[&str] = &[
    "bool",
    "bytes",
    "double",
    "int",
    "list",
    "map",
    "null_type",
    "string",
    "type",
    "uint",
    "optional_type",
];

static ENV: LazyLock<Arc<Env>> = LazyLock::new(|| {
    let mut env = Env::stdlib();
    // These only fail when an overload is declared twice, which a fresh
    // standard environment rules out (a test checks they succeed).
    let _ = env.add_extension(cel::extensions::strings);
    let _ = env.add_extension(cel::extensions::math);
    let _ = env.add_extension(cel::extensions::lists);
    Arc::new(env)
});

/// An expression that failed to compile or to evaluate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expression `{expression}`: {message}")]
pub struct ExprError {
    /// The source of the expression.
    pub expression: String,
    /// What went wrong.
    pub message: String,
}

impl ExprError {
    fn new(expression: &str, message: impl Into<String>) -> Self {
        ExprError {
            expression: expression.to_owned(),
            message: message.into(),
        }
    }
}

/// The variables of one evaluation: names bound to borrowed JSON values.
///
/// Cheap to build; nothing is copied until an expression reads a variable,
/// and then only the fields it reads (see [`Expr::eval`]).
///
/// ```
/// # use braid_expr::{Expr, Vars};
/// let state = serde_json::json!({"count": 1});
/// let expr = Expr::compile("state.count + 1", &["state"]).unwrap();
/// let vars = Vars::new().with("state", &state);
/// assert_eq!(expr.eval(&vars).unwrap(), serde_json::json!(2));
/// ```
#[derive(Debug, Clone, Default)]
pub struct Vars<'a> {
    entries: Vec<(&'a str, &'a Json)>,
}

impl<'a> Vars<'a> {
    /// No variables.
    pub fn new() -> Self {
        Vars {
            entries: Vec::new(),
        }
    }

    /// Binds `name` to `value`, replacing an earlier binding of `name`.
    pub fn with(mut self, name: &'a str, value: &'a Json) -> Self {
        self.set(name, value);
        self
    }

    /// Binds `name` to `value`, replacing an earlier binding of `name`.
    pub fn set(&mut self, name: &'a str, value: &'a Json) {
        match self.entries.iter_mut().find(|(n, _)| *n == name) {
            Some(entry) => entry.1 = value,
            None => self.entries.push((name, value)),
        }
    }

    /// The value bound to `name`.
    pub fn get(&self, name: &str) -> Option<&'a Json> {
        self.entries
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
    }
}

/// What an expression reads of one top-level variable.
#[derive(Debug)]
enum Use {
    /// The variable itself, e.g. `size(state)`.
    Whole,
    /// Only these fields of it, e.g. `state.a` and `has(state.b)`.
    Fields(Vec<String>),
}

#[derive(Debug)]
struct Binding {
    name: String,
    used: Use,
}

struct Inner {
    source: String,
    program: Program,
    bindings: Vec<Binding>,
}

/// A compiled CEL expression. Cloning is cheap (a reference count).
#[derive(Clone)]
pub struct Expr {
    inner: Arc<Inner>,
}

impl fmt::Debug for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Expr").field(&self.inner.source).finish()
    }
}

impl PartialEq for Expr {
    fn eq(&self, other: &Self) -> bool {
        self.inner.source == other.inner.source
    }
}

impl Expr {
    /// Parses and checks `source` (at save time).
    ///
    /// `names` are the identifiers the expression may use at top level, e.g.
    /// `["input", "state", "output", "artifacts", "_branch", "_loop"]`.
    /// Comprehension variables (`x` in `list.filter(x, x > 1)`), type names
    /// (`int`, `string`, …) and function namespaces (`math`, `strings`,
    /// `optional`) are always allowed.
    ///
    /// Rejects expressions longer than [`MAX_LEN`] bytes, nested deeper than
    /// [`MAX_DEPTH`] brackets and conditionals or [`MAX_AST_DEPTH`] syntax
    /// levels, parse errors (with line and column) and unknown identifiers
    /// (naming them and listing `names`).
    pub fn compile(source: &str, names: &[&str]) -> Result<Expr, ExprError> {
        let err = |message: String| ExprError::new(source, message);
        if source.len() > MAX_LEN {
            return Err(err(format!(
                "expression is {} bytes long; the limit is {MAX_LEN}",
                source.len()
            )));
        }
        if source.trim().is_empty() {
            return Err(err("expression is empty".to_owned()));
        }
        let (nested, depth) = nesting(source);
        if nested > MAX_DEPTH {
            return Err(err(format!(
                "expression nests brackets and conditionals {nested} deep; the limit is {MAX_DEPTH}"
            )));
        }
        if depth > MAX_AST_DEPTH {
            return Err(err(format!(
                "expression nests about {depth} levels deep; the limit is {MAX_AST_DEPTH} \
                 (split long chains of operators)"
            )));
        }
        let program = catch_unwind(|| ENV.compile(source))
            .map_err(|_| err("the CEL parser failed unexpectedly".to_owned()))?
            .map_err(|errors| err(describe_parse_errors(&errors)))?;

        let mut checker = Checker {
            names,
            scopes: Vec::new(),
            unknown: Vec::new(),
            bindings: Vec::new(),
        };
        checker.walk(program.expression(), 1).map_err(err)?;
        if !checker.unknown.is_empty() {
            let mut allowed: Vec<&str> = names.to_vec();
            allowed.sort_unstable();
            allowed.dedup();
            let unknown = checker
                .unknown
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ");
            let plural = if checker.unknown.len() == 1 {
                "identifier"
            } else {
                "identifiers"
            };
            return Err(err(format!(
                "unknown {plural} {unknown}; allowed here: {}",
                if allowed.is_empty() {
                    "none".to_owned()
                } else {
                    allowed.join(", ")
                }
            )));
        }
        let bindings = checker.bindings;
        Ok(Expr {
            inner: Arc::new(Inner {
                source: source.to_owned(),
                program,
                bindings,
            }),
        })
    }

    /// The source the expression was compiled from.
    pub fn source(&self) -> &str {
        &self.inner.source
    }

    /// Evaluates the expression with `vars` and returns its value as JSON.
    ///
    /// Only the variables the expression names are converted to CEL, and of a
    /// variable read only through its fields (`state.a`, `has(state.b)`), only
    /// those fields; strings are borrowed, not copied.
    ///
    /// Errors (a missing field read without `has()`, a missing key, a type
    /// mismatch, division by zero, a result with no JSON form such as bytes, a
    /// variable not bound in `vars`) are [`ExprError`]s. Evaluation never
    /// panics: a panic inside the CEL interpreter becomes an error too.
    pub fn eval(&self, vars: &Vars<'_>) -> Result<Json, ExprError> {
        self.run(vars, |v| into_json(v, 0))
    }

    /// Evaluates the expression to a `bool`; any other result is an error
    /// naming its type.
    pub fn eval_bool(&self, vars: &Vars<'_>) -> Result<bool, ExprError> {
        self.run(vars, |v| match v {
            CelValue::Bool(b) => Ok(b),
            other => Err(format!(
                "expected a bool, got a value of type {}",
                other.type_of()
            )),
        })
    }

    fn run<T>(
        &self,
        vars: &Vars<'_>,
        finish: impl FnOnce(CelValue) -> Result<T, String>,
    ) -> Result<T, ExprError> {
        let inner = &*self.inner;
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let mut ctx = Context::with_env(Arc::clone(&ENV));
            for binding in &inner.bindings {
                if let Some(value) = vars.get(&binding.name) {
                    let val = match &binding.used {
                        Use::Whole => json_to_val(value, 0)?,
                        Use::Fields(fields) => fields_to_val(value, fields)?,
                    };
                    ctx.add_variable_as_val(binding.name.as_str(), val);
                }
            }
            // `Program::execute`, not `Value::resolve_val`: the latter is
            // `#[inline(always)]` and recursive, so calling it would compile the
            // whole interpreter loop into this crate, with this crate's
            // optimisation level (and, unoptimised, ~64 KiB of stack per level).
            match inner.program.execute(&ctx) {
                Ok(value) => finish(value),
                Err(e) => Err(describe_execution_error(&e)),
            }
        }));
        match outcome {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(message)) => Err(ExprError::new(&inner.source, message)),
            Err(_) => Err(ExprError::new(
                &inner.source,
                "the CEL interpreter failed unexpectedly",
            )),
        }
    }
}

/// How deeply `source` nests, measured on its tokens before parsing:
/// `(bracket and conditional depth, estimated syntax depth)`.
///
/// The first counts brackets and the `?` of conditionals (`a ? b : c ? d : e`
/// nests): what the parser recurses on.
///
/// The estimate is an upper bound of the parse and syntax tree depth: every
/// bracket level counts one, and inside a level every binary operator of a
/// chain (`a + b + c`), every ternary, and the longest run of member accesses,
/// calls, indexes and unary operators of one operand (`a.b[0].c()`). `&&`,
/// `||`, `,` and `:` start a new chain: the parser keeps `&&` and `||` chains
/// flat.
fn nesting(source: &str) -> (usize, usize) {
    #[derive(Default, Clone, Copy)]
    struct Frame {
        base: usize,
        nested: usize,
        ternary: usize,
        binary: usize,
        member_max: usize,
        run: usize,
    }
    impl Frame {
        fn estimate(&self) -> usize {
            self.base + self.ternary + self.binary + self.member_max.max(self.run)
        }
        fn binary_op(&mut self) {
            self.binary += 1;
            self.member_max = self.member_max.max(self.run);
            self.run = 0;
        }
        fn reset(&mut self) {
            self.binary = 0;
            self.member_max = 0;
            self.run = 0;
        }
    }

    let bytes = source.as_bytes();
    let mut stack = vec![Frame::default()];
    let mut max_nested = 0usize;
    let mut max_estimate = 0usize;
    // whether the previous token ends an operand (so `-` is binary, `(` a call)
    let mut operand = false;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let next = bytes.get(i + 1).copied();
        let top = stack.len() - 1;
        let mut is_operand = false;
        match b {
            b' ' | b'\t' | b'\r' | b'\n' => {
                i += 1;
                continue;
            }
            b'/' if next == Some(b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'"' | b'\'' => {
                i = skip_string(bytes, i, b, false);
                is_operand = true;
            }
            b'0'..=b'9' => {
                i = skip_number(bytes, i);
                is_operand = true;
            }
            b'A'..=b'Z' | b'a'..=b'z' | b'_' => {
                let start = i;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                let word = &source[start..i];
                let prefix = word.len() <= 2 && word.bytes().all(|c| b"rRbB".contains(&c));
                if prefix && matches!(bytes.get(i), Some(b'"' | b'\'')) {
                    let raw = word.bytes().any(|c| c == b'r' || c == b'R');
                    i = skip_string(bytes, i, bytes[i], raw);
                    is_operand = true;
                } else if word == "in" && operand {
                    stack[top].binary_op();
                } else {
                    is_operand = true;
                }
            }
            b'.' => {
                stack[top].run += 1;
                i += if next == Some(b'?') { 2 } else { 1 };
            }
            b'(' | b'[' | b'{' => {
                if operand && b != b'{' {
                    stack[top].run += 1;
                }
                let frame = Frame {
                    base: stack[top].estimate() + 1,
                    nested: stack[top].nested + stack[top].ternary + 1,
                    ..Frame::default()
                };
                max_nested = max_nested.max(frame.nested);
                stack.push(frame);
                i += if b == b'[' && next == Some(b'?') {
                    2
                } else {
                    1
                };
            }
            b')' | b']' | b'}' => {
                if stack.len() > 1 {
                    stack.pop();
                }
                is_operand = true;
                i += 1;
            }
            b'&' | b'|' if next == Some(b) => {
                stack[top].reset();
                i += 2;
            }
            b',' | b':' => {
                stack[top].reset();
                i += 1;
            }
            b'?' => {
                stack[top].reset();
                stack[top].ternary += 1;
                max_nested = max_nested.max(stack[top].nested + stack[top].ternary);
                i += 1;
            }
            b'-' | b'!' if !operand && next != Some(b'=') => {
                stack[top].run += 1;
                i += 1;
            }
            b'+' | b'-' | b'*' | b'/' | b'%' | b'<' | b'>' | b'=' | b'!' => {
                stack[top].binary_op();
                i += if next == Some(b'=') { 2 } else { 1 };
            }
            _ => {
                // not CEL: the parser reports it
                i += 1;
            }
        }
        operand = is_operand;
        let top = stack.len() - 1;
        max_estimate = max_estimate.max(stack[top].estimate());
    }
    (max_nested, max_estimate)
}

/// The index just past the number starting at `start`: digits, a fraction,
/// an exponent with its sign, hex digits, a `u` suffix.
fn skip_number(bytes: &[u8], start: usize) -> usize {
    let hex = bytes[start] == b'0' && matches!(bytes.get(start + 1), Some(b'x' | b'X'));
    let mut i = start;
    while i < bytes.len() {
        let c = bytes[i];
        let fraction = c == b'.' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit);
        let exponent_sign = !hex && matches!(c, b'+' | b'-') && matches!(bytes[i - 1], b'e' | b'E');
        if c.is_ascii_alphanumeric() || c == b'_' || fraction || exponent_sign {
            i += 1;
        } else {
            break;
        }
    }
    i
}

/// The index just past the string literal opening at `start`.
fn skip_string(bytes: &[u8], start: usize, quote: u8, raw: bool) -> usize {
    let triple = bytes.get(start + 1) == Some(&quote) && bytes.get(start + 2) == Some(&quote);
    let mut i = start + if triple { 3 } else { 1 };
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'\\' && !raw {
            i += 2;
        } else if b == quote {
            if !triple {
                return i + 1;
            }
            if bytes.get(i + 1) == Some(&quote) && bytes.get(i + 2) == Some(&quote) {
                return i + 3;
            }
            i += 1;
        } else if b == b'\n' && !triple {
            return i + 1;
        } else {
            i += 1;
        }
    }
    i
}

fn describe_parse_errors(errors: &cel::ParseErrors) -> String {
    // Formatted here rather than with the errors' `Display`, which draws a
    // caret line and panics for a column past 65,535.
    let mut parts: Vec<String> = errors
        .errors
        .iter()
        .take(3)
        .map(|e| {
            let (line, column) = e.pos;
            let msg = e.msg.strip_prefix("Syntax error: ").unwrap_or(&e.msg);
            if msg.contains("Recursion limit") {
                return "the expression nests too deeply for the parser".to_owned();
            }
            if line > 0 {
                format!("line {line}, column {column}: {msg}")
            } else {
                msg.to_owned()
            }
        })
        .collect();
    if parts.is_empty() {
        parts.push("syntax error".to_owned());
    }
    if errors.errors.len() > 3 {
        parts.push(format!("and {} more", errors.errors.len() - 3));
    }
    format!("syntax error: {}", parts.join("; "))
}

fn describe_execution_error(e: &ExecutionError) -> String {
    match e {
        ExecutionError::NoSuchKey(key) => {
            format!("no such key `{key}` (use has() to test whether a field is present)")
        }
        ExecutionError::UndeclaredReference(name) => {
            format!("undeclared reference to `{name}`")
        }
        ExecutionError::DivisionByZero(_) => "division by zero".to_owned(),
        ExecutionError::RemainderByZero(_) => "modulo by zero".to_owned(),
        ExecutionError::UnsupportedBinaryOperator(op, lhs, rhs) => format!(
            "operator `{op}` does not apply to {} and {}",
            lhs.type_of(),
            rhs.type_of()
        ),
        ExecutionError::ValuesNotComparable(lhs, rhs) => {
            format!("cannot compare {} with {}", lhs.type_of(), rhs.type_of())
        }
        other => other.to_string(),
    }
}

/// Walks a parsed expression: bounds its depth, finds unknown identifiers and
/// records what it reads of each variable.
struct Checker<'n, 'e> {
    names: &'n [&'n str],
    /// Comprehension variables in scope, innermost last.
    scopes: Vec<&'e str>,
    unknown: Vec<String>,
    bindings: Vec<Binding>,
}

impl<'e> Checker<'_, 'e> {
    fn walk(&mut self, e: &'e IdedExpr, depth: usize) -> Result<(), String> {
        if depth > MAX_AST_DEPTH {
            return Err(format!(
                "expression is nested more than {MAX_AST_DEPTH} levels deep; \
                 split long chains of operators"
            ));
        }
        let next = depth + 1;
        match &e.expr {
            Ast::Unspecified | Ast::Literal(_) => {}
            Ast::Ident(name) => self.ident(name, None),
            Ast::Select(select) => match &select.operand.expr {
                Ast::Ident(root) => {
                    self.ident(root, Some(&select.field));
                }
                _ => self.walk(&select.operand, next)?,
            },
            Ast::Call(call) => {
                if let Some(target) = &call.target {
                    let namespace = match &target.expr {
                        Ast::Ident(ns) => {
                            FUNCTION_NAMESPACES.contains(&ns.as_str()) && !self.is_variable(ns)
                        }
                        _ => false,
                    };
                    if !namespace {
                        self.walk(target, next)?;
                    }
                }
                for arg in &call.args {
                    self.walk(arg, next)?;
                }
            }
            Ast::Comprehension(c) => {
                self.walk(&c.iter_range, next)?;
                self.walk(&c.accu_init, next)?;
                let mark = self.scopes.len();
                self.scopes.push(&c.iter_var);
                if let Some(v) = &c.iter_var2 {
                    self.scopes.push(v);
                }
                self.scopes.push(&c.accu_var);
                self.walk(&c.loop_cond, next)?;
                self.walk(&c.loop_step, next)?;
                self.walk(&c.result, next)?;
                self.scopes.truncate(mark);
            }
            Ast::List(list) => {
                for element in &list.elements {
                    self.walk(element, next)?;
                }
            }
            Ast::Map(map) => {
                for entry in &map.entries {
                    self.entry(&entry.expr, next)?;
                }
            }
            Ast::Struct(s) => {
                for entry in &s.entries {
                    self.entry(&entry.expr, next)?;
                }
            }
        }
        Ok(())
    }

    fn entry(&mut self, entry: &'e EntryExpr, depth: usize) -> Result<(), String> {
        match entry {
            EntryExpr::MapEntry(m) => {
                self.walk(&m.key, depth)?;
                self.walk(&m.value, depth)
            }
            EntryExpr::StructField(f) => self.walk(&f.value, depth),
        }
    }

    /// Whether `name` is a comprehension variable or an allowed name.
    fn is_variable(&self, name: &str) -> bool {
        self.scopes.contains(&name) || self.names.contains(&name)
    }

    /// A use of the identifier `name`, alone or (`field`) to select a field.
    fn ident(&mut self, name: &str, field: Option<&str>) {
        if name.starts_with('@') || self.scopes.contains(&name) {
            return;
        }
        if self.names.contains(&name) {
            let binding = match self.bindings.iter_mut().position(|b| b.name == name) {
                Some(i) => &mut self.bindings[i],
                None => {
                    self.bindings.push(Binding {
                        name: name.to_owned(),
                        used: Use::Fields(Vec::new()),
                    });
                    let last = self.bindings.len() - 1;
                    &mut self.bindings[last]
                }
            };
            match (&mut binding.used, field) {
                (Use::Whole, _) => {}
                (used @ Use::Fields(_), None) => *used = Use::Whole,
                (Use::Fields(fields), Some(field)) => {
                    if !fields.iter().any(|f| f == field) {
                        fields.push(field.to_owned());
                    }
                }
            }
            return;
        }
        if TYPE_NAMES.contains(&name) {
            return;
        }
        if !self.unknown.iter().any(|n| n == name) {
            self.unknown.push(name.to_owned());
        }
    }
}

/// A JSON value as a CEL value borrowing its strings.
fn json_to_val<'v>(v: &'v Json, depth: usize) -> Result<Box<dyn Val + 'v>, String> {
    if depth > MAX_VALUE_DEPTH {
        return Err(format!(
            "a value is nested more than {MAX_VALUE_DEPTH} levels deep"
        ));
    }
    Ok(match v {
        Json::Null => Box::new(CelNull),
        Json::Bool(b) => Box::new(CelBool::from(*b)),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                Box::new(CelInt::from(i))
            } else if let Some(u) = n.as_u64() {
                Box::new(CelUInt::from(u))
            } else {
                Box::new(CelDouble::from(n.as_f64().unwrap_or(f64::NAN)))
            }
        }
        Json::String(s) => Box::new(CelString::from(s.as_str())),
        Json::Array(items) => {
            let items = items
                .iter()
                .map(|item| json_to_val(item, depth + 1))
                .collect::<Result<Vec<_>, _>>()?;
            Box::new(CelList::from(items))
        }
        Json::Object(map) => {
            let mut entries = HashMap::with_capacity(map.len());
            for (k, v) in map {
                entries.insert(CelMapKey::from(k.as_str()), json_to_val(v, depth + 1)?);
            }
            Box::new(CelMap::from(entries))
        }
    })
}

/// The fields `fields` of the object `v` (those it has), or all of `v` when it
/// is not an object.
fn fields_to_val<'v>(v: &'v Json, fields: &[String]) -> Result<Box<dyn Val + 'v>, String> {
    let Json::Object(map) = v else {
        return json_to_val(v, 0);
    };
    let mut entries = HashMap::with_capacity(fields.len());
    for field in fields {
        if let Some((k, v)) = map.get_key_value(field.as_str()) {
            entries.insert(CelMapKey::from(k.as_str()), json_to_val(v, 1)?);
        }
    }
    Ok(Box::new(CelMap::from(entries)))
}

fn double_to_json(d: f64) -> Result<Json, String> {
    serde_json::Number::from_f64(d)
        .map(Json::Number)
        .ok_or_else(|| format!("the result {d} is not a finite number and has no JSON form"))
}

/// Converts JSON to a CEL value: integers to `Int` (signed, so
/// `state.count + 1` works), integers above `i64::MAX` to `UInt`, other
/// numbers to `Float` (CEL `double`), objects to maps with string keys.
pub fn json_to_cel(v: &Json) -> CelValue {
    match v {
        Json::Null => CelValue::Null,
        Json::Bool(b) => CelValue::Bool(*b),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                CelValue::Int(i)
            } else if let Some(u) = n.as_u64() {
                CelValue::UInt(u)
            } else {
                CelValue::Float(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Json::String(s) => CelValue::String(Arc::new(s.clone())),
        Json::Array(items) => CelValue::List(Arc::new(items.iter().map(json_to_cel).collect())),
        Json::Object(map) => CelValue::Map(Map {
            map: Arc::new(
                map.iter()
                    .map(|(k, v)| (Key::String(Arc::new(k.clone())), json_to_cel(v)))
                    .collect(),
            ),
        }),
    }
}

/// Converts a CEL value to JSON: `Int`/`UInt` to integers, `Float` to numbers
/// (NaN and infinities are errors), timestamps to RFC 3339 strings, durations
/// to CEL duration strings (`"1.5s"`), maps to objects (keys stringified).
/// Bytes, functions and other values are errors naming their type.
pub fn cel_to_json(v: &CelValue) -> Result<Json, String> {
    into_json(v.clone(), 0)
}

/// [`cel_to_json`] taking ownership: a freshly computed result holds its
/// strings, lists and maps alone, so they are moved rather than copied.
fn into_json(v: CelValue, depth: usize) -> Result<Json, String> {
    if depth > MAX_VALUE_DEPTH {
        return Err(format!(
            "the value is nested more than {MAX_VALUE_DEPTH} levels deep"
        ));
    }
    Ok(match v {
        CelValue::Null => Json::Null,
        CelValue::Bool(b) => Json::Bool(b),
        CelValue::Int(i) => Json::from(i),
        CelValue::UInt(u) => Json::from(u),
        CelValue::Float(d) => double_to_json(d)?,
        CelValue::String(s) => Json::String(Arc::unwrap_or_clone(s)),
        CelValue::List(items) => Json::Array(
            Arc::unwrap_or_clone(items)
                .into_iter()
                .map(|item| into_json(item, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        CelValue::Map(map) => {
            let map = Arc::unwrap_or_clone(map.map);
            let mut out = serde_json::Map::with_capacity(map.len());
            for (k, v) in map {
                let key = match k {
                    Key::String(s) => Arc::unwrap_or_clone(s),
                    Key::Int(i) => i.to_string(),
                    Key::Uint(u) => u.to_string(),
                    Key::Bool(b) => b.to_string(),
                };
                out.insert(key, into_json(v, depth + 1)?);
            }
            Json::Object(out)
        }
        CelValue::Timestamp(t) => Json::String(t.to_rfc3339()),
        CelValue::Duration(d) => Json::String(duration_string(d.num_seconds(), d.subsec_nanos())),
        other => {
            return Err(format!(
                "the result is a value of type {}, which has no JSON form",
                other.type_of()
            ));
        }
    })
}

/// A duration in CEL's string form: seconds with up to nine decimals, `"90s"`,
/// `"1.5s"`, `"-0.25s"`.
fn duration_string(seconds: i64, nanos: i32) -> String {
    let negative = seconds < 0 || nanos < 0;
    let seconds = seconds.unsigned_abs();
    let nanos = nanos.unsigned_abs();
    let sign = if negative { "-" } else { "" };
    if nanos == 0 {
        format!("{sign}{seconds}s")
    } else {
        let fraction = format!("{nanos:09}");
        format!("{sign}{seconds}.{}s", fraction.trim_end_matches('0'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NAMES: &[&str] = &[
        "input", "state", "output", "_branch", "_loop", "result", "item",
    ];

    /// A stack for evaluating expressions at the limits. Optimised, cel and
    /// antlr4rust need under 1 MiB there; unoptimised (a plain debug build)
    /// about 64 KiB per evaluation level and 250 KiB per bracket level.
    fn limit_stack() -> usize {
        if cfg!(debug_assertions) {
            64 << 20
        } else {
            2 << 20
        }
    }

    fn on_stack<T: Send + 'static>(bytes: usize, f: impl FnOnce() -> T + Send + 'static) -> T {
        std::thread::Builder::new()
            .stack_size(bytes)
            .spawn(f)
            .expect("spawn")
            .join()
            .expect("thread panicked")
    }

    fn eval_with(src: &str, state: &Json) -> Result<Json, String> {
        let expr = Expr::compile(src, NAMES).map_err(|e| format!("compile: {}", e.message))?;
        expr.eval(&Vars::new().with("state", state))
            .map_err(|e| e.message)
    }

    fn ok(src: &str, state: &Json) -> Json {
        eval_with(src, state).unwrap_or_else(|e| panic!("`{src}` failed: {e}"))
    }

    fn err(src: &str, state: &Json) -> String {
        match eval_with(src, state) {
            Ok(v) => panic!("`{src}` should fail, gave {v}"),
            Err(e) => e,
        }
    }

    fn compile_err(src: &str) -> String {
        match Expr::compile(src, NAMES) {
            Ok(_) => panic!("`{src}` should not compile"),
            Err(e) => {
                assert_eq!(e.expression, src);
                e.message
            }
        }
    }

    fn sample() -> Json {
        json!({
            "count": 1,
            "score": 0.85,
            "big": 18446744073709551615u64,
            "name": "Ada Lovelace",
            "votes": ["A", "B", "A"],
            "nums": [3, 1, 2],
            "nested": {"a": {"b": {"c": 42}}, "list": [{"x": 1}, {"x": 2}]},
            "empty": {},
            "nothing": null,
        })
    }

    #[test]
    fn evaluates_json_access_arithmetic_and_functions() {
        let s = sample();
        // nested access, integers stay integers
        assert_eq!(ok("state.nested.a.b.c", &s), json!(42));
        assert_eq!(ok("state.nested.list[1].x", &s), json!(2));
        let two = ok("state.count + 1", &s);
        assert_eq!(two, json!(2));
        assert!(two.is_i64(), "int + int must stay an integer, got {two}");
        assert_eq!(ok("state.count * 10 - 3", &s), json!(7));
        assert_eq!(ok("7 / 2", &s), json!(3));
        assert_eq!(ok("7 % 4", &s), json!(3));
        assert_eq!(ok("state.big", &s), json!(18446744073709551615u64));
        // doubles
        assert_eq!(ok("state.score * 2.0", &s), json!(1.7));
        assert_eq!(ok("1.5 + 1.5", &s), json!(3.0));
        assert!(ok("1.5 + 1.5", &s).is_f64());
        assert_eq!(ok("double(state.count) / 4.0", &s), json!(0.25));
        assert_eq!(ok("int(state.score * 100.0)", &s), json!(85));
        // int vs double comparison
        assert_eq!(ok("state.score > 0.8", &s), json!(true));
        assert_eq!(ok("state.count < 1.5", &s), json!(true));
        assert_eq!(ok("state.count == 1.0", &s), json!(true));
        // strings
        assert_eq!(ok("state.name.startsWith('Ada')", &s), json!(true));
        assert_eq!(ok("state.name.contains('Love')", &s), json!(true));
        assert_eq!(ok("state.name.endsWith('x')", &s), json!(false));
        assert_eq!(ok("size(state.name)", &s), json!(12));
        assert_eq!(ok("state.name.matches('^A.a')", &s), json!(true));
        assert_eq!(ok("state.name + '!'", &s), json!("Ada Lovelace!"));
        assert_eq!(ok("state.name.lowerAscii()", &s), json!("ada lovelace"));
        assert_eq!(ok("state.name.split(' ')", &s), json!(["Ada", "Lovelace"]));
        assert_eq!(ok("'  x '.trim()", &s), json!("x"));
        assert_eq!(ok("state.votes.join('-')", &s), json!("A-B-A"));
        assert_eq!(ok("string(state.count) + 'x'", &s), json!("1x"));
        // list macros and functions
        assert_eq!(ok("state.votes.filter(v, v == 'A').size()", &s), json!(2));
        assert_eq!(ok("state.nums.map(n, n * 2)", &s), json!([6, 2, 4]));
        assert_eq!(ok("state.nums.all(n, n > 0)", &s), json!(true));
        assert_eq!(ok("state.nums.exists(n, n > 2)", &s), json!(true));
        assert_eq!(ok("state.nums.exists_one(n, n > 1)", &s), json!(false));
        assert_eq!(ok("size(state.votes)", &s), json!(3));
        assert_eq!(ok("state.nums.sort()", &s), json!([1, 2, 3]));
        assert_eq!(ok("state.votes.distinct()", &s), json!(["A", "B"]));
        assert_eq!(
            ok("state.nested.list.map(e, e.x).filter(x, x > 1)", &s),
            json!([2])
        );
        assert_eq!(ok("math.greatest(state.nums)", &s), json!(3));
        assert_eq!(ok("math.abs(-3)", &s), json!(3));
        // in, ternary, literals
        assert_eq!(ok("'B' in state.votes", &s), json!(true));
        assert_eq!(ok("'a' in state.nested", &s), json!(true));
        assert_eq!(ok("'zzz' in state.nested", &s), json!(false));
        assert_eq!(ok("state.count > 0 ? 'yes' : 'no'", &s), json!("yes"));
        assert_eq!(ok("state.nothing == null", &s), json!(true));
        assert_eq!(
            ok("{'a': state.count, 'b': [1, 2.5, 'x', null, true]}", &s),
            json!({"a": 1, "b": [1, 2.5, "x", null, true]})
        );
        assert_eq!(
            ok("{1: 'one', true: 'yes'}", &s),
            json!({"1": "one", "true": "yes"})
        );
        assert_eq!(ok("state.nested.a", &s), json!({"b": {"c": 42}}));
        assert_eq!(ok("state", &s), s);
        // the spec's example
        let votes = json!({"votes": ["A", "A", "B"]});
        assert_eq!(
            ok(
                "state.votes.filter(v, v == 'A').size() >= 2 ? 'A' : 'B'",
                &votes
            ),
            json!("A")
        );
        // timestamps and durations become strings
        assert_eq!(
            ok("timestamp('2024-01-02T03:04:05Z')", &s),
            json!("2024-01-02T03:04:05+00:00")
        );
        assert_eq!(ok("duration('1m30s')", &s), json!("90s"));
        assert_eq!(ok("duration('-1.5s')", &s), json!("-1.5s"));
        assert_eq!(
            ok(
                "timestamp('2024-01-02T00:00:00Z') + duration('24h') > timestamp('2024-01-02T12:00:00Z')",
                &s
            ),
            json!(true)
        );
    }

    #[test]
    fn has_tests_presence_and_missing_fields_are_errors() {
        let s = sample();
        assert_eq!(ok("has(state.count)", &s), json!(true));
        assert_eq!(ok("has(state.missing)", &s), json!(false));
        assert_eq!(ok("has(state.nested.a.b)", &s), json!(true));
        assert_eq!(ok("has(state.nested.a.zzz)", &s), json!(false));
        assert_eq!(ok("has(state.empty.x)", &s), json!(false));
        // a present null is present
        assert_eq!(ok("has(state.nothing)", &s), json!(true));
        assert_eq!(
            ok("has(state.missing) ? state.missing : 'default'", &s),
            json!("default")
        );
        assert_eq!(ok("has(state.x) && state.x > 1", &s), json!(false));
        // optional field syntax
        assert_eq!(ok("state.?missing.orValue(5)", &s), json!(5));
        assert_eq!(ok("state.?count.orValue(5)", &s), json!(1));
        assert_eq!(ok("state.nested[?'zzz'].orValue('d')", &s), json!("d"));

        let e = err("state.missing", &s);
        assert!(
            e.contains("no such key `missing`") && e.contains("has()"),
            "{e}"
        );
        let e = err("state.nested.zzz.c == 1", &s);
        assert!(e.contains("zzz"), "{e}");
        // has() of a field under a missing one is an error, not false
        let e = err("has(state.missing.x)", &s);
        assert!(e.contains("missing"), "{e}");
        let e = err("state.nested.list[5]", &s);
        assert!(e.to_lowercase().contains("index") || e.contains("5"), "{e}");
        let e = err("state.nested['nope']", &s);
        assert!(e.contains("nope"), "{e}");
    }

    #[test]
    fn evaluation_errors_are_errors_not_panics() {
        let s = sample();
        let e = err("'a' + 1", &s);
        assert!(e.contains("string") && e.contains("int"), "{e}");
        let e = err("state.name - 1", &s);
        assert!(e.contains("string"), "{e}");
        assert_eq!(err("state.count / 0", &s), "division by zero");
        assert_eq!(err("state.count % 0", &s), "modulo by zero");
        let e = err("state.score / 0.0", &s);
        assert!(e.contains("finite"), "{e}");
        let e = err("9223372036854775807 + state.count", &s);
        assert!(e.to_lowercase().contains("overflow"), "{e}");
        let e = err("b'abc'", &s);
        assert!(e.contains("bytes"), "{e}");
        let e = err("state.count && true", &s);
        assert!(!e.is_empty());
        let e = err("state.nums.filter(n, n)", &s);
        assert!(!e.is_empty());
        let e = err("nosuchfunction(1)", &s);
        assert!(e.contains("nosuchfunction"), "{e}");
        let e = err("int('abc')", &s);
        assert!(!e.is_empty());
        let e = err("state.count.foo", &s);
        assert!(!e.is_empty());

        // a name allowed at compile time but not bound at evaluation
        let expr = Expr::compile("result.x", NAMES).unwrap();
        let e = expr.eval(&Vars::new()).unwrap_err();
        assert!(e.message.contains("result"), "{}", e.message);

        // eval_bool
        let vars_state = sample();
        let vars = Vars::new().with("state", &vars_state);
        assert!(
            Expr::compile("state.count == 1", NAMES)
                .unwrap()
                .eval_bool(&vars)
                .unwrap()
        );
        assert!(
            !Expr::compile("state.count > 1", NAMES)
                .unwrap()
                .eval_bool(&vars)
                .unwrap()
        );
        let e = Expr::compile("state.count", NAMES)
            .unwrap()
            .eval_bool(&vars)
            .unwrap_err();
        assert!(
            e.message.contains("bool") && e.message.contains("int"),
            "{}",
            e.message
        );
        let e = Expr::compile("state.missing", NAMES)
            .unwrap()
            .eval_bool(&vars)
            .unwrap_err();
        assert!(e.message.contains("missing"));

        // Display names the expression
        assert_eq!(
            e.to_string(),
            format!("expression `state.missing`: {}", e.message)
        );
    }

    #[test]
    fn variables_are_bound_lazily_and_partially() {
        let state = sample();
        let input = json!({"question": "why?"});
        let item = json!(5);
        let vars = Vars::new()
            .with("state", &state)
            .with("input", &input)
            .with("item", &item);
        let eval = |src: &str| Expr::compile(src, NAMES).unwrap().eval(&vars);

        // fields only, whole, both
        assert_eq!(eval("state.count + state.nums[0]").unwrap(), json!(4));
        assert_eq!(eval("size(state)").unwrap(), json!(9));
        assert_eq!(
            eval("state.count == 1 && 'votes' in state").unwrap(),
            json!(true)
        );
        assert_eq!(
            eval("has(state.count) && !has(state.zzz)").unwrap(),
            json!(true)
        );
        assert_eq!(
            eval("input.question + ' ' + string(item * 2)").unwrap(),
            json!("why? 10")
        );
        // a comprehension variable shadows a top-level name
        assert_eq!(
            eval("[1, 2].map(state, state * 10)").unwrap(),
            json!([10, 20])
        );
        assert_eq!(eval("[{'a': 1}].map(state, state.a)").unwrap(), json!([1]));
        assert_eq!(
            eval("state.nums.map(x, x + state.count)").unwrap(),
            json!([4, 2, 3])
        );
        // a field read of a non-object
        assert!(eval("item.x").is_err());

        // rebinding replaces
        let other = json!({"count": 7});
        let mut vars = vars.clone();
        vars.set("state", &other);
        assert_eq!(vars.get("state"), Some(&other));
        assert_eq!(vars.get("nope"), None);
        let expr = Expr::compile("state.count", NAMES).unwrap();
        assert_eq!(expr.eval(&vars).unwrap(), json!(7));

        // a compiled expression is reusable and shareable
        let expr = Expr::compile("state.count * 2", NAMES).unwrap();
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let expr = expr.clone();
                std::thread::spawn(move || {
                    let state = json!({"count": i});
                    expr.eval(&Vars::new().with("state", &state)).unwrap()
                })
            })
            .collect();
        let results: Vec<Json> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(results, vec![json!(0), json!(2), json!(4), json!(6)]);
        assert_eq!(expr.source(), "state.count * 2");
        assert_eq!(format!("{expr:?}"), "Expr(\"state.count * 2\")");
    }

    #[test]
    fn compile_rejects_malformed_expressions_and_unknown_names() {
        // parse errors carry line and column
        let e = compile_err("(state.count + 1");
        assert!(e.starts_with("syntax error: line 1, column "), "{e}");
        let e = compile_err("state.count +* 2");
        assert!(e.contains("line 1, column 14"), "{e}");
        let e = compile_err("state.count >\n  > 2");
        assert!(e.contains("line 2, column 3"), "{e}");
        let e = compile_err("state.count)");
        assert!(e.contains("syntax error"), "{e}");
        let e = compile_err("'unterminated");
        assert!(e.contains("syntax error"), "{e}");
        assert!(compile_err("").contains("empty"));
        assert!(compile_err("   ").contains("empty"));
        assert!(compile_err("has(state)").contains("syntax error"));

        // unknown identifiers are named, the allowed ones listed
        let e = compile_err("foo.bar > 1 && state.x > baz");
        assert!(e.contains("`foo`") && e.contains("`baz`"), "{e}");
        assert!(
            e.contains("_branch, _loop, input, item, output, result, state"),
            "{e}"
        );
        let e = Expr::compile("state.x", &["input"]).unwrap_err().message;
        assert!(
            e.contains("unknown identifier `state`; allowed here: input"),
            "{e}"
        );
        // a comprehension variable is not in scope outside its macro
        assert!(compile_err("state.votes.map(v, v) + [v]").contains("`v`"));
        // `lists.range` is not reachable
        assert!(compile_err("lists.range(10)").contains("`lists`"));

        // comprehension variables, type names and namespaces are fine
        for src in [
            "state.votes.filter(v, v == 'A')",
            "state.votes.map(v, v + 'x')",
            "state.votes.all(v, v != '')",
            "state.votes.exists(v, v == 'B')",
            "state.votes.exists_one(v, v == 'B')",
            "state.m.all(k, state.m[k] > 0)",
            "state.l.exists(x, x.items.all(y, y > x.min))",
            "state.votes.sortBy(v, v)",
            "type(state.x) == int || type(state.x) == string",
            "math.least(1, 2) < math.greatest([3, 4])",
            "strings.quote('a')",
            "optional.of(1).hasValue()",
            "_branch.index == 0 && _loop.retry < 3 && input.q != '' && result.v == output.v",
            "item + 1",
            "// a comment\nstate.x",
        ] {
            if let Err(e) = Expr::compile(src, NAMES) {
                panic!("`{src}` should compile: {}", e.message);
            }
        }
    }

    #[test]
    fn compile_enforces_length_and_depth_before_parsing() {
        // length: exactly 4096 bytes is fine, one more is not
        let at_limit = format!("'{}'", "a".repeat(MAX_LEN - 2));
        assert_eq!(at_limit.len(), MAX_LEN);
        assert!(Expr::compile(&at_limit, NAMES).is_ok());
        let over = format!("'{}'", "a".repeat(MAX_LEN - 1));
        assert!(compile_err(&over).contains("4096"));
        // brackets inside strings and comments don't count
        let quoted = format!(
            "'{}' + \"{}\" + '''{}''' // {}\n",
            "(".repeat(100),
            "[".repeat(100),
            "{".repeat(100),
            "(".repeat(100)
        );
        assert!(
            Expr::compile(&quoted, NAMES).is_ok(),
            "{:?}",
            Expr::compile(&quoted, NAMES)
        );
        let escaped = format!("'\\'{}' + r'\\'", "(".repeat(100));
        assert!(
            Expr::compile(&escaped, NAMES).is_ok(),
            "{:?}",
            Expr::compile(&escaped, NAMES)
        );
        // numbers with a fraction or an exponent are one token
        assert_eq!(nesting("1.5e-3 + 2.0"), (0, 1));
        assert_eq!(nesting("0x1e+5"), (0, 1));
        assert_eq!(nesting("a ? (b ? c : [d]) : e ? f : g"), (4, 4));
        let e = compile_err(&format!("{}1", "false ? 0 : ".repeat(MAX_DEPTH + 1)));
        assert!(e.contains("conditionals 33 deep"), "{e}");
        assert_eq!(nesting("a.b.c && x[0].y"), (1, 2));

        // deep expressions are rejected before cel parses them: a small stack
        // suffices, where cel itself would overflow
        let cases: Vec<String> = vec![
            "(".repeat(4000),
            format!("{}1{}", "(".repeat(2000), ")".repeat(2000)),
            format!("{}1{}", "[".repeat(40), "]".repeat(40)),
            format!("1{}", "+1".repeat(2000)),
            format!("1{}", " < 1".repeat(1000)),
            format!("{}true", "!".repeat(4000)),
            format!("{}1", "-".repeat(4000)),
            format!("state{}", ".b".repeat(2000)),
            format!("state{}", "[0]".repeat(1300)),
            format!("'a'{}", ".size()".repeat(580)),
            format!("{}2", "true ? 1 : ".repeat(350)),
            format!("{}1{}", "(1 + ".repeat(100), ")".repeat(100)),
        ];
        let messages = on_stack(256 << 10, move || {
            cases
                .iter()
                .map(|src| {
                    assert!(src.len() <= MAX_LEN, "{}", src.len());
                    Expr::compile(src, NAMES).map(|_| ()).unwrap_err().message
                })
                .collect::<Vec<_>>()
        });
        for message in messages {
            assert!(message.contains("deep"), "{message}");
        }
    }

    #[test]
    fn expressions_at_the_limits_evaluate() {
        let results = on_stack(limit_stack(), || {
            let chain = format!("1{}", "+1".repeat(MAX_AST_DEPTH - 1));
            let parens = format!("{}1{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
            let lists = format!("{}1{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
            let mut comprehensions = "true".to_owned();
            for i in 0..12 {
                comprehensions = format!("[1, 2].all(x{i}, {comprehensions})");
            }
            let fields = format!("state{}", ".a".repeat(100));
            // just within the estimate before parsing, and within (31) or
            // beyond (32) the exact depth checked after parsing
            let maps = |k: usize| {
                let mut src = format!("1{}", "+1".repeat(k));
                for i in 0..MAX_DEPTH {
                    src = format!("item.map(x{i}, {src})");
                }
                src
            };
            [
                chain,
                parens,
                lists,
                comprehensions,
                fields,
                maps(31),
                maps(32),
                format!("{}1", "false ? 0 : ".repeat(MAX_DEPTH)),
            ]
            .iter()
            .map(|src| {
                let expr = Expr::compile(src, NAMES).map_err(|e| e.message)?;
                let (state, item) = (json!({}), json!([0]));
                let vars = Vars::new().with("state", &state).with("item", &item);
                expr.eval(&vars).map_err(|e| e.message)
            })
            .collect::<Vec<_>>()
        });
        assert_eq!(results[0], Ok(json!(MAX_AST_DEPTH)));
        assert_eq!(results[1], Ok(json!(1)));
        let mut nested = json!(1);
        for _ in 0..MAX_DEPTH {
            nested = json!([nested]);
        }
        assert_eq!(results[2], Ok(nested));
        assert_eq!(results[3], Ok(json!(true)));
        assert!(results[4].as_ref().unwrap_err().contains("no such key"));
        let mut nested = json!(32);
        for _ in 0..MAX_DEPTH {
            nested = json!([nested]);
        }
        assert_eq!(results[5], Ok(nested));
        assert!(
            results[6]
                .as_ref()
                .unwrap_err()
                .contains("nested more than 128 levels"),
            "{:?}",
            results[6]
        );
        assert_eq!(results[7], Ok(json!(1)));
    }

    #[test]
    fn json_and_cel_values_convert_both_ways() {
        let v = json!({"i": -3, "u": 18446744073709551615u64, "f": 0.5, "s": "x", "b": true,
                       "n": null, "l": [1, "two"], "o": {"k": [{}]}});
        let cel = json_to_cel(&v);
        let CelValue::Map(map) = &cel else {
            panic!("not a map: {cel:?}")
        };
        assert_eq!(
            map.map.get(&Key::String(Arc::new("i".into()))),
            Some(&CelValue::Int(-3))
        );
        assert_eq!(
            map.map.get(&Key::String(Arc::new("u".into()))),
            Some(&CelValue::UInt(u64::MAX))
        );
        assert_eq!(
            map.map.get(&Key::String(Arc::new("f".into()))),
            Some(&CelValue::Float(0.5))
        );
        assert_eq!(json_to_cel(&json!(1)), CelValue::Int(1));
        assert_eq!(cel_to_json(&cel), Ok(v));

        assert!(cel_to_json(&CelValue::Float(f64::NAN)).is_err());
        assert!(cel_to_json(&CelValue::Float(f64::INFINITY)).is_err());
        assert!(
            cel_to_json(&CelValue::Bytes(Arc::new(vec![1])))
                .unwrap_err()
                .contains("bytes")
        );
        let keyed = CelValue::Map(Map {
            map: Arc::new(HashMap::from([
                (Key::Int(1), CelValue::Int(2)),
                (Key::Bool(false), CelValue::Null),
            ])),
        });
        assert_eq!(cel_to_json(&keyed), Ok(json!({"1": 2, "false": null})));
        assert_eq!(duration_string(90, 0), "90s");
        assert_eq!(duration_string(0, 1_500), "0.0000015s");
        assert_eq!(duration_string(-2, -250_000_000), "-2.25s");
    }

    #[test]
    fn random_input_never_panics() {
        use proptest::prelude::*;
        use proptest::test_runner::{Config, TestRunner};

        on_stack(limit_stack(), || {
            let state = sample();
            let vars = Vars::new().with("state", &state);
            let check = |src: &str| {
                if let Ok(expr) = Expr::compile(src, NAMES) {
                    let _ = expr.eval(&vars);
                    let _ = expr.eval_bool(&vars);
                }
                Ok(())
            };
            let mut runner = TestRunner::new(Config {
                cases: 256,
                failure_persistence: None,
                ..Config::default()
            });
            runner.run(&any::<String>(), |s| check(&s)).unwrap();
            // token soup: closer to CEL, so it gets past the parser more often
            let token = prop::sample::select(vec![
                "state",
                ".",
                "count",
                "votes",
                "nested",
                "a",
                "(",
                ")",
                "[",
                "]",
                "{",
                "}",
                "+",
                "-",
                "*",
                "/",
                "%",
                "==",
                "<",
                "&&",
                "||",
                "!",
                "?",
                ":",
                ",",
                "1",
                "0",
                "2.5",
                "'s'",
                "\"",
                "'",
                "in",
                "has(",
                "size(",
                ".map(x,",
                ".filter(x,",
                "x",
                "null",
                "true",
                "9223372036854775807",
                "-",
                "b'",
                "\\",
                " ",
                "\n",
                "u",
            ]);
            let soup = prop::collection::vec(token, 0..40).prop_map(|t| t.concat());
            runner.run(&soup, |s| check(&s)).unwrap();
        });
    }
}
