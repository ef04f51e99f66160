//! The Node-RED flow of the comparison benchmark (bench/nodered-flow.json) compiles: each
//! function node's body is compiled by node the way Node-RED wraps it (an async function of
//! msg, node, context, flow, global, env). A body that does not compile makes Node-RED drop
//! every message without a word on stdout, and the benchmark then waits for nothing (a duplicate
//! `const` once did exactly that).

use std::process::Command;

#[test]
fn every_function_node_of_the_bench_flow_compiles() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../bench/nodered-flow.json");
    let flow: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let bodies: Vec<(&str, &str)> = flow
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["type"] == "function")
        .map(|n| (n["name"].as_str().unwrap_or("?"), n["func"].as_str().unwrap()))
        .collect();
    assert!(bodies.len() >= 2, "the flow's function nodes: {bodies:?}");
    for (name, body) in bodies {
        let check = "const AsyncFunction = (async () => {}).constructor;\
                     new AsyncFunction('msg', 'node', 'context', 'flow', 'global', 'env', process.argv[1]);";
        let out =
            Command::new("node").args(["-e", check, body]).output().expect("node (scripts/test installs it)");
        assert!(
            out.status.success(),
            "function node `{name}` does not compile:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
