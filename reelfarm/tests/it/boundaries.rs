//! The dependency rules of ARCHITECTURE.md, checked against `cargo metadata`: the table under
//! "Dependency rules" is read from the document itself, so the document and this test cannot
//! drift apart.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;

/// One row of the table: the workspace crates a crate may depend on directly, and the packages
/// that must not appear anywhere in its normal dependency tree.
#[derive(Debug)]
struct Rule {
    may: BTreeSet<String>,
    never: BTreeSet<String>,
}

/// The workspace root.
fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// The names in a table cell: backticked words; `—` for none.
fn names(cell: &str) -> BTreeSet<String> {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// The rules table of ARCHITECTURE.md's "Dependency rules" section.
fn rules(architecture: &str) -> BTreeMap<String, Rule> {
    let section = architecture
        .split("\n## Dependency rules\n")
        .nth(1)
        .expect("ARCHITECTURE.md has a `## Dependency rules` section");
    let section = section.split("\n## ").next().unwrap_or(section);
    let mut out = BTreeMap::new();
    for line in section.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.trim_matches('|').split('|').collect();
        assert_eq!(cells.len(), 3, "a rules row has three cells: {line}");
        let name = names(cells[0])
            .into_iter()
            .next()
            .expect("a crate name in the first cell");
        out.insert(
            name,
            Rule {
                may: names(cells[1]),
                never: names(cells[2]),
            },
        );
    }
    out
}

/// The resolved workspace on this host: package id → (name, normal dependencies' ids), and the
/// members.
struct Graph {
    name: BTreeMap<String, String>,
    deps: BTreeMap<String, Vec<String>>,
    members: BTreeMap<String, String>,
}

/// The host's target triple: dependencies of other platforms (e.g. wasm-only ones) do not count.
fn host() -> String {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let out = std::process::Command::new(rustc)
        .arg("-vV")
        .output()
        .expect("run rustc -vV");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .expect("rustc -vV names the host")
        .to_owned()
}

fn metadata() -> Graph {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = std::process::Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--offline",
            "--filter-platform",
        ])
        .arg(host())
        .current_dir(root())
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("cargo metadata JSON");
    let name: BTreeMap<String, String> = v["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| {
            (
                p["id"].as_str().expect("id").to_owned(),
                p["name"].as_str().expect("name").to_owned(),
            )
        })
        .collect();
    let mut deps = BTreeMap::new();
    for node in v["resolve"]["nodes"].as_array().expect("resolve nodes") {
        let normal = node["deps"]
            .as_array()
            .expect("deps")
            .iter()
            .filter(|d| {
                d["dep_kinds"]
                    .as_array()
                    .is_some_and(|k| k.iter().any(|k| k["kind"].is_null()))
            })
            .map(|d| d["pkg"].as_str().expect("pkg").to_owned())
            .collect();
        deps.insert(node["id"].as_str().expect("id").to_owned(), normal);
    }
    let members = v["workspace_members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|id| {
            let id = id.as_str().expect("member id").to_owned();
            (name[&id].clone(), id)
        })
        .collect();
    Graph {
        name,
        deps,
        members,
    }
}

impl Graph {
    /// Every package in `id`'s normal dependency tree, with the path that reaches it.
    fn tree(&self, id: &str) -> BTreeMap<String, Vec<String>> {
        let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut stack = vec![(id.to_owned(), vec![self.name[id].clone()])];
        while let Some((at, path)) = stack.pop() {
            for dep in self.deps.get(&at).into_iter().flatten() {
                let name = &self.name[dep];
                if seen.contains_key(name) {
                    continue;
                }
                let mut p = path.clone();
                p.push(name.clone());
                seen.insert(name.clone(), p.clone());
                stack.push((dep.clone(), p));
            }
        }
        seen
    }
}

/// What breaks the rules, one line each.
fn violations(rules: &BTreeMap<String, Rule>, graph: &Graph) -> Vec<String> {
    let mut out = Vec::new();
    for (member, id) in &graph.members {
        let Some(rule) = rules.get(member) else {
            out.push(format!(
                "`{member}` has no row in ARCHITECTURE.md's dependency rules"
            ));
            continue;
        };
        for dep in graph.deps.get(id).into_iter().flatten() {
            let name = &graph.name[dep];
            if graph.members.contains_key(name) && !rule.may.contains(name) {
                out.push(format!(
                    "`{member}` depends on `{name}`, which its row does not allow"
                ));
            }
        }
        let tree = graph.tree(id);
        for never in rule.never.iter().chain(["tts-espeak".to_owned()].iter()) {
            if let Some(path) = tree.get(never) {
                out.push(format!(
                    "`{member}` must never depend on `{never}`, but does: {}",
                    path.join(" → ")
                ));
            }
        }
    }
    for name in rules.keys() {
        if !graph.members.contains_key(name) {
            out.push(format!(
                "ARCHITECTURE.md has a row for `{name}`, which is not a workspace crate"
            ));
        }
    }
    out
}

#[test]
fn crates_keep_the_dependency_rules_of_architecture_md() {
    let text = std::fs::read_to_string(root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let rules = rules(&text);
    assert!(
        rules.len() >= 10,
        "the rules table was not found: {rules:?}"
    );
    let problems = violations(&rules, &metadata());
    assert!(
        problems.is_empty(),
        "dependency rules broken:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn only_farm_depends_on_both_coordinator_and_trigger() {
    let graph = metadata();
    let both: Vec<&String> = graph
        .members
        .iter()
        .filter(|(_, id)| {
            let direct: BTreeSet<&String> = graph.deps[id.as_str()]
                .iter()
                .map(|d| &graph.name[d])
                .collect();
            direct.contains(&"coordinator".to_owned()) && direct.contains(&"trigger".to_owned())
        })
        .map(|(name, _)| name)
        .collect();
    assert_eq!(both, vec!["farm"]);
}

#[test]
fn only_tts_espeak_links_libespeak_ng() {
    let mut linking = Vec::new();
    let mut stack = vec![root().to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read dir").flatten() {
            let path = entry.path();
            let name = entry.file_name();
            if path.is_dir() {
                if name != "target" && name != ".git" {
                    stack.push(path);
                }
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                if text.contains("#[link(name = \"espeak-ng\")]") {
                    linking.push(path.strip_prefix(root()).unwrap_or(&path).to_owned());
                }
            }
        }
    }
    assert!(
        !linking.is_empty() && linking.iter().all(|p| p.starts_with("tts-espeak")),
        "files linking libespeak-ng: {linking:?}"
    );
}

#[test]
fn a_forbidden_dependency_is_reported_with_its_path() {
    // The checker itself: a table that forbids what the workspace has must fail.
    let text = "\n## Dependency rules\n\n| crate | may | never |\n|---|---|---|\n\
                | `coordinator` | `proto`, `template` | `tokio` |\n";
    let rules = rules(text);
    let graph = metadata();
    let problems = violations(&rules, &graph);
    assert!(
        problems.iter().any(|p| p
            .starts_with("`coordinator` must never depend on `tokio`, but does: coordinator → ")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p == "`coordinator` depends on `sqlstore`, which its row does not allow"),
        "{problems:?}"
    );
}
