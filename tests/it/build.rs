//! The build a newcomer meets: `cargo run -- serve` first, then the README's test command.
//! Both must resolve the same features for every dependency, or the second rebuilds DataFusion,
//! arrow and deltalake (minutes on two cores). Cargo resolves features per command, from the
//! packages it builds, so a feature only a Lambda function's dependency turns on splits them;
//! the root package turns those on too (see Cargo.toml), and this test keeps it so.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use crate::support::repo;

/// `cargo tree` as the command resolves it: package → features.
fn features(args: &[&str]) -> BTreeMap<String, BTreeSet<String>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(repo(""))
        .args(["tree", "--offline", "--prefix", "none", "-f", "{p}|{f}"])
        .args(args)
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut map: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let line = line.trim_end_matches(" (*)");
        let Some((package, features)) = line.split_once('|') else {
            continue;
        };
        // A local package prints its path after the version; the name and version suffice.
        let package: String = package.split(' ').take(2).collect::<Vec<_>>().join(" ");
        map.entry(package).or_default().extend(
            features
                .split(',')
                .filter(|f| !f.is_empty())
                .map(String::from),
        );
    }
    map
}

#[test]
fn cargo_run_and_the_test_command_build_dependencies_once() {
    // What `cargo run -- serve` builds: the root package and its normal dependencies.
    let run = features(&["-p", "jiazheng", "-e", "normal,build"]);
    // What `scripts/test` builds: every member, with dev-dependencies and the test feature.
    let test = features(&["--workspace", "--features", "jiazheng/failpoints"]);
    assert!(
        run.keys().any(|k| k.starts_with("datafusion ")),
        "the run builds DataFusion"
    );
    let mut differ = Vec::new();
    for (package, features) in &run {
        // Our own crates may differ (the failpoints feature); a dependency may not.
        if ["jiazheng ", "jiazheng-core ", "jiazheng-web "]
            .iter()
            .any(|own| package.starts_with(own))
        {
            continue;
        }
        if let Some(other) = test.get(package)
            && other != features
        {
            differ.push(format!(
                "{package}: run {:?}, test {:?}",
                features.difference(other).collect::<Vec<_>>(),
                other.difference(features).collect::<Vec<_>>()
            ));
        }
    }
    assert!(
        differ.is_empty(),
        "features differ between `cargo run` and the tests, so the tests rebuild these and \
         everything above them; turn the test-only ones on in the root Cargo.toml:\n{}",
        differ.join("\n")
    );
}
