//! `parse_str` never panics: garbled, truncated and random inputs only ever give `Err` (or a
//! plan that survives writing back), and every error renders as `FILE...: MESSAGE` lines.

use std::panic::{catch_unwind, AssertUnwindSafe};

const SMOKE: &str = include_str!("plans/good/smoke.yaml");
const FULL: &str = include_str!("plans/good/full.yaml");
const SEVERAL: &str = include_str!("plans/bad/several.yaml");

/// Parse `text`; panic with the input if parsing panics or breaks an invariant.
fn check(text: &str) {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        match smbchaos_plan::parse_str("f.yaml", text) {
            Ok(plan) => {
                // Anything accepted can be written back and read again to the same plan.
                let _ = smbchaos_plan::addresses(&plan);
                let yaml = serde_saphyr::to_string(&plan).expect("serialize");
                let again = smbchaos_plan::parse_str("again.yaml", &yaml)
                    .unwrap_or_else(|e| panic!("written plan does not read back: {e}\n{yaml}"));
                assert_eq!(plan, again);
            }
            Err(e) => {
                let shown = e.to_string();
                assert!(!e.problems().is_empty());
                assert_eq!(shown.lines().count(), e.problems().len(), "{shown}");
                for line in shown.lines() {
                    assert!(line.starts_with("f.yaml:"), "{line:?}");
                    assert!(line.len() > "f.yaml: ".len(), "{line:?}");
                }
            }
        }
    }));
    if outcome.is_err() {
        panic!("parse_str panicked on input {text:?}");
    }
}

fn char_boundaries(s: &str) -> impl Iterator<Item = usize> + '_ {
    (0..=s.len()).filter(|&i| s.is_char_boundary(i))
}

#[test]
fn valid_plans_with_one_character_replaced() {
    let replacements = [
        " ", "", "\n", "\t", ":", "-", "[", "]", "{", "}", "\"", "'", "&a", "*a", "!", "!!str ",
        "#", "|", ">", "%", "@", "?", ",", "0", "x", "é", "\u{0}", "\u{feff}", "\r", "\\", "<<: ",
        "~",
    ];
    // Every position gets 5 of the replacements, rotating, so each replacement lands on
    // positions of every kind (keys, values, indentation, punctuation) without 60k parses.
    for base in [SMOKE, FULL] {
        for (n, i) in char_boundaries(base)
            .filter(|&i| i < base.len())
            .enumerate()
        {
            let end = (i + 1..=base.len())
                .find(|&j| base.is_char_boundary(j))
                .unwrap();
            for k in 0..5 {
                let r = replacements[(n * 7 + k) % replacements.len()];
                check(&format!("{}{r}{}", &base[..i], &base[end..]));
            }
        }
    }
}

#[test]
fn valid_plans_truncated_everywhere() {
    for base in [SMOKE, FULL, SEVERAL] {
        for i in char_boundaries(base) {
            check(&base[..i]);
            check(&base[i..]);
        }
    }
}

#[test]
fn valid_plans_with_lines_dropped_duplicated_or_reindented() {
    for base in [SMOKE, FULL] {
        let lines: Vec<&str> = base.lines().collect();
        for i in 0..lines.len() {
            let mut dropped = lines.clone();
            dropped.remove(i);
            check(&dropped.join("\n"));
            let mut doubled = lines.clone();
            doubled.insert(i, lines[i]);
            check(&doubled.join("\n"));
            let mut indented = lines.clone();
            let more = format!("  {}", lines[i]);
            indented[i] = &more;
            check(&indented.join("\n"));
            let mut less = lines.clone();
            less[i] = lines[i].trim_start();
            check(&less.join("\n"));
        }
    }
}

/// xorshift64*: a fixed-seed generator, so failures repeat.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn random_token_soup() {
    let tokens = [
        "version",
        "name",
        "topology",
        "servers",
        "clients",
        "shares",
        "address",
        "global",
        "options",
        "workload",
        "steps",
        "exec",
        "client",
        "run",
        "timeout",
        "expect_exit",
        "faults",
        "kind",
        "node",
        "at",
        "for",
        "expect",
        "pause",
        "kill",
        "1",
        "-1",
        "1s",
        "-5s",
        "0ms",
        "198.18.0.1",
        "fs1",
        "c1",
        ": ",
        ":",
        "- ",
        "-",
        "\n",
        "\n  ",
        "\n    ",
        "  ",
        "[",
        "]",
        "{",
        "}",
        ", ",
        "\"",
        "'",
        "&x ",
        "*x",
        "!!map ",
        "!tag ",
        "# c",
        "|\n",
        ">-\n",
        "---\n",
        "...\n",
        "? ",
        "<<: *x",
        "null",
        "~",
        "true",
        "1e999",
        ".nan",
        "0x1F",
        "é",
        "\t",
        "\u{0}",
        "\r\n",
        "%YAML 1.2\n",
    ];
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    for _ in 0..4000 {
        let n = 1 + rng.below(60);
        let text: String = (0..n).map(|_| tokens[rng.below(tokens.len())]).collect();
        check(&text);
    }
}

#[test]
fn random_bytes_in_valid_plans() {
    let mut rng = Rng(0xdead_beef_0bad_f00d);
    for _ in 0..3000 {
        let base = if rng.below(2) == 0 { SMOKE } else { FULL };
        let mut bytes = base.as_bytes().to_vec();
        for _ in 0..1 + rng.below(4) {
            let i = rng.below(bytes.len());
            match rng.below(3) {
                0 => bytes[i] = rng.next() as u8,
                1 => {
                    bytes.remove(i);
                }
                _ => bytes.insert(i, rng.next() as u8),
            }
        }
        check(&String::from_utf8_lossy(&bytes));
    }
}

#[test]
fn pathological_inputs() {
    let laughs = {
        let mut s = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = i - 1;
            s.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        s
    };
    let inputs = [
        "[".repeat(100_000),
        "{a: ".repeat(20_000),
        "- ".repeat(20_000),
        format!("version: 1\nname: {}\ntopology: {{servers: [{{name: a}}]}}\n", "x".repeat(1_000_000)),
        format!("version: 1\nname: x\ntopology:\n  servers:\n{}", "    - name: a\n".repeat(5_000)),
        laughs.clone(),
        format!("{laughs}version: 1\nname: x\ntopology: {{servers: [{{name: a}}]}}\nseed: *a11\n"),
        "version: 1\nname: x\ntopology: {servers: [{name: &n a}, {name: *n}]}\n".to_string(),
        "version: 99999999999999999999999\n".to_string(),
        "version: 1\nname: x\ntopology: {servers: [{name: a}]}\nfaults: [{kind: pause, node: a, at: 99999999999999999999h}]\n"
            .to_string(),
        "\u{feff}version: 1\nname: x\ntopology: {servers: [{name: a}]}\n".to_string(),
    ];
    for input in &inputs {
        check(input);
    }
}
