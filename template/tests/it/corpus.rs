//! The broken-template corpus (`tests/broken-corpus/`): one bundle folder per deliberate
//! mistake, each with a `template.json` and an `expect` line
//! `schema | <part of validate's message> | <the rule>` (a mistake JSON Schema can express) or
//! `validate-only | ... | ...` (a rule across fields, objects or files).
//!
//! Every case goes through [`Bundle::load`] (parse and validate) and through a standard JSON
//! Schema validator, Python's `jsonschema`, with the generated schema. Validate must reject every
//! case with the expected message; the schema must reject every `schema` case, accept every
//! `validate-only` case (so the labels stay honest and each case holds one mistake), and accept
//! every valid manifest in the repository.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use template::{json_schema_pretty, Bundle, Manifest};

use crate::support::{full, minimal, TempDir};

/// One corpus case.
struct Case {
    name: String,
    dir: PathBuf,
    /// True when JSON Schema can express the rule the case breaks.
    expressible: bool,
    /// A part of the message `validate` must give.
    validate_says: String,
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/broken-corpus")
}

fn cases() -> Vec<Case> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .expect("read tests/broken-corpus")
        .map(|e| e.expect("corpus entry").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs.into_iter()
        .map(|dir| {
            let name = dir
                .file_name()
                .and_then(|n| n.to_str())
                .expect("case folder name")
                .to_owned();
            let expect = std::fs::read_to_string(dir.join("expect"))
                .unwrap_or_else(|e| panic!("{name}/expect: {e}"));
            let parts: Vec<&str> = expect.trim_end().split(" | ").collect();
            let [kind, says, _rule] = parts[..] else {
                panic!(
                    "{name}/expect: want `schema|validate-only | message | rule`, got {expect:?}"
                );
            };
            let expressible = match kind {
                "schema" => true,
                "validate-only" => false,
                other => panic!("{name}/expect: `{other}` is neither `schema` nor `validate-only`"),
            };
            Case {
                name,
                dir,
                expressible,
                validate_says: says.to_owned(),
            }
        })
        .collect()
}

/// A Python interpreter that can `import jsonschema`: `python3` on the path, else the system's.
fn python() -> &'static str {
    for candidate in ["python3", "/usr/bin/python3"] {
        let ok = Command::new(candidate)
            .args(["-c", "import jsonschema"])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return candidate;
        }
    }
    panic!(
        "no Python with the jsonschema module (tried `python3` and `/usr/bin/python3`); \
         install it with `apt-get install python3-jsonschema` (scripts/setup does)"
    );
}

/// Validates each document with the validator class the schema's `$schema` selects and prints
/// `{"validator": class name, "errors": {path: [reasons]}}`. A reason is the innermost error:
/// inside `oneOf`/`anyOf` it follows the alternative with the fewest errors (for a layer, the
/// kind its `type` names).
const CHECK_PY: &str = r#"
import json, sys
from jsonschema.validators import validator_for

def reasons(error):
    if not error.context:
        return ["/" + "/".join(map(str, error.absolute_path)) + ": " + error.message[:120]]
    branches = {}
    for sub in error.context:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    closest = min(branches.values(), key=len)
    return [r for sub in closest for r in reasons(sub)]

schema = json.load(open(sys.argv[1], encoding="utf-8"))
cls = validator_for(schema)
cls.check_schema(schema)
validator = cls(schema)
errors = {}
for path in sys.argv[2:]:
    doc = json.load(open(path, encoding="utf-8"))
    found = sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
    errors[path] = [r for e in found for r in reasons(e)]
print(json.dumps({"validator": cls.__name__, "errors": errors}))
"#;

/// Runs [`CHECK_PY`] on `docs` with the generated schema: the validator's class name and each
/// document's errors.
fn json_schema_errors(docs: &[PathBuf]) -> (String, BTreeMap<PathBuf, Vec<String>>) {
    let dir = TempDir::new("schema-check");
    dir.write("template.schema.json", json_schema_pretty().as_bytes());
    dir.write("check.py", CHECK_PY.as_bytes());
    let out = Command::new(python())
        .arg(dir.path().join("check.py"))
        .arg(dir.path().join("template.schema.json"))
        .args(docs)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "jsonschema check failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: Value = serde_json::from_slice(&out.stdout).expect("checker output is JSON");
    let validator = result["validator"].as_str().unwrap_or_default().to_owned();
    let errors = result["errors"]
        .as_object()
        .expect("errors object")
        .iter()
        .map(|(path, list)| {
            let list = list
                .as_array()
                .expect("error list")
                .iter()
                .map(|m| m.as_str().unwrap_or_default().to_owned())
                .collect();
            (PathBuf::from(path), list)
        })
        .collect();
    (validator, errors)
}

#[test]
fn broken_corpus_is_caught_by_validate_and_by_the_schema_where_expressible() {
    let cases = cases();
    assert!(cases.len() >= 33, "only {} corpus cases", cases.len());

    // Valid manifests the schema must accept: the shipped templates and the test examples.
    let examples = TempDir::new("schema-valid");
    let mut valid: Vec<PathBuf> =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/templates"))
            .expect("read assets/templates")
            .map(|e| e.expect("template entry").path().join("template.json"))
            .filter(|p| p.is_file())
            .collect();
    assert!(!valid.is_empty(), "no shipped templates found");
    for (name, doc) in [("full.json", full()), ("minimal.json", minimal())] {
        dir_write_json(&examples, name, &doc);
        valid.push(examples.path().join(name));
    }

    let mut docs: Vec<PathBuf> = cases.iter().map(|c| c.dir.join("template.json")).collect();
    docs.extend(valid.iter().cloned());
    let (validator, schema_errors) = json_schema_errors(&docs);
    assert_eq!(
        validator, "Draft202012Validator",
        "the schema's $schema should select draft 2020-12"
    );

    let mut failures = Vec::new();
    for path in &valid {
        let errors = &schema_errors[path];
        if !errors.is_empty() {
            failures.push(format!(
                "schema rejects valid {}: {errors:?}",
                path.display()
            ));
        }
    }

    let mut table = String::from(
        "case                                    validate  schema   expressible  schema's reason\n",
    );
    let (mut by_validate, mut by_schema, mut expressible) = (0, 0, 0);
    for case in &cases {
        let validate = match Bundle::load(&case.dir) {
            Ok(_) => {
                failures.push(format!("{}: validate accepts it", case.name));
                false
            }
            Err(e) => {
                let message = e.to_string();
                if !message.contains(&case.validate_says) {
                    failures.push(format!(
                        "{}: validate's message lacks {:?}: {message}",
                        case.name, case.validate_says
                    ));
                }
                true
            }
        };
        let errors = &schema_errors[&case.dir.join("template.json")];
        let schema = !errors.is_empty();
        if case.expressible && !schema {
            failures.push(format!("{}: the schema accepts it", case.name));
        }
        if !case.expressible && schema {
            failures.push(format!(
                "{}: marked validate-only but the schema rejects it: {errors:?}",
                case.name
            ));
        }
        by_validate += usize::from(validate);
        by_schema += usize::from(schema);
        expressible += usize::from(case.expressible);
        let mark = |b: bool| if b { "rejects" } else { "-" };
        let reason: String = errors
            .first()
            .map_or("", String::as_str)
            .chars()
            .take(70)
            .collect();
        table.push_str(&format!(
            "{:<40}{:<10}{:<9}{:<13}{reason}\n",
            case.name,
            mark(validate),
            mark(schema),
            if case.expressible { "yes" } else { "no" }
        ));
    }
    table.push_str(&format!(
        "{} cases: validate rejects {by_validate}, the schema rejects {by_schema} \
         ({expressible} expressible in JSON Schema)\n",
        cases.len()
    ));
    println!("{table}");
    assert!(failures.is_empty(), "{}\n{table}", failures.join("\n"));
}

fn dir_write_json(dir: &TempDir, name: &str, doc: &Value) {
    let text = serde_json::to_string_pretty(doc).expect("serialize");
    dir.write(name, text.as_bytes());
}

#[test]
fn dollar_schema_key_is_accepted_and_ignored() {
    let mut doc = minimal();
    let plain = Manifest::from_json(doc.to_string().as_bytes()).expect("minimal loads");
    doc["$schema"] = Value::from("../template.schema.json");
    let with = Manifest::from_json(doc.to_string().as_bytes()).expect("$schema is accepted");
    with.validate(None).expect("$schema passes validation");
    assert_eq!(with.json_schema.as_deref(), Some("../template.schema.json"));
    assert_eq!(
        Manifest {
            json_schema: None,
            ..with
        },
        plain
    );

    doc["$schema"] = Value::from(7);
    let err = Manifest::from_json(doc.to_string().as_bytes()).expect_err("$schema is a string");
    assert!(err.to_string().contains("$schema"), "{err}");
}
