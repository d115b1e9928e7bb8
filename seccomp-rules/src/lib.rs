//! Seccomp allowlists as data, shared by the gofer (`gofer/src/seccomp.rs`)
//! and the sentry (`sentry/src/filter.rs`): each keeps its own table of
//! [`Rule`]s, one row per host system call with the reason it is needed;
//! this crate compiles a table into BPF and installs it.
//!
//! Every allowlist is installed as two filters: first `clone3` → ENOSYS (its
//! flags live in memory, out of a filter's sight, so libc falls back to
//! `clone`, whose flags a rule can check), then the allowlist itself, whose
//! mismatch action kills the process.

#![forbid(unsafe_code)]

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};
use thiserror::Error;

/// A constraint on one argument.
#[derive(Debug, Clone, Copy)]
pub enum ArgRule {
    /// Any arguments.
    Any,
    /// Argument `arg` must have every bit of `mask` set.
    BitsSet { arg: u8, mask: u64 },
}

/// One allowed system call.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub name: &'static str,
    pub nr: i64,
    pub args: ArgRule,
    pub why: &'static str,
}

/// A call allowed with any arguments.
pub const fn any(name: &'static str, nr: i64, why: &'static str) -> Rule {
    Rule {
        name,
        nr,
        args: ArgRule::Any,
        why,
    }
}

/// `clone` for new threads only: never a new process.
pub const fn clone_threads_only() -> Rule {
    Rule {
        name: "clone",
        nr: libc::SYS_clone,
        args: ArgRule::BitsSet {
            arg: 0,
            mask: libc::CLONE_THREAD as u64,
        },
        why: "new threads only, never new processes",
    }
}

/// `clone3`, which the first filter answers with ENOSYS.
pub const fn clone3_refused() -> Rule {
    any(
        "clone3",
        libc::SYS_clone3,
        "reaches only the ENOSYS filter, so libc falls back to clone",
    )
}

#[derive(Debug, Error)]
pub enum FilterError {
    #[error("building seccomp filter: {0}")]
    Build(#[from] seccompiler::BackendError),
    #[error("compiling seccomp filter: {0}")]
    Compile(#[from] seccompiler::Error),
}

fn program(
    rules: BTreeMap<i64, Vec<SeccompRule>>,
    mismatch: SeccompAction,
    matched: SeccompAction,
) -> Result<BpfProgram, FilterError> {
    Ok(SeccompFilter::new(rules, mismatch, matched, TargetArch::x86_64)?.try_into()?)
}

/// The compiled filters for `rules`, in installation order.
pub fn compile(rules: &[Rule]) -> Result<Vec<BpfProgram>, FilterError> {
    let clone3 = program(
        BTreeMap::from([(libc::SYS_clone3, vec![])]),
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
    )?;
    let mut allow: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for rule in rules {
        let conditions = match rule.args {
            ArgRule::Any => vec![],
            ArgRule::BitsSet { arg, mask } => vec![SeccompRule::new(vec![SeccompCondition::new(
                arg,
                SeccompCmpArgLen::Qword,
                SeccompCmpOp::MaskedEq(mask),
                mask,
            )?])?],
        };
        allow.insert(rule.nr, conditions);
    }
    let allowlist = program(allow, SeccompAction::KillProcess, SeccompAction::Allow)?;
    Ok(vec![clone3, allowlist])
}

/// Locks every thread of the process into `rules` (and sets no_new_privs).
pub fn install(rules: &[Rule]) -> Result<(), FilterError> {
    for prog in compile(rules)? {
        seccompiler::apply_filter_all_threads(&prog)?;
    }
    Ok(())
}

/// One line per rule, for a `seccomp-rules` style listing.
pub fn describe(rules: &[Rule]) -> Vec<String> {
    rules
        .iter()
        .map(|r| {
            let cond = match r.args {
                ArgRule::Any => String::new(),
                ArgRule::BitsSet { arg, mask } => format!(" [arg{arg} & {mask:#x}]"),
            };
            format!("{:<18} {}{}", r.name, r.why, cond)
        })
        .collect()
}

/// Checks a table: each call listed once, each with a reason, none of
/// `forbidden` present. Returns what is wrong.
pub fn check_table(rules: &[Rule], forbidden: &[i64]) -> Result<(), String> {
    let mut seen = std::collections::HashSet::new();
    for r in rules {
        if !seen.insert(r.nr) {
            return Err(format!("{} listed twice", r.name));
        }
        if r.why.is_empty() {
            return Err(format!("{} has no reason", r.name));
        }
        if forbidden.contains(&r.nr) {
            return Err(format!("{} must not be allowed", r.name));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &[Rule] = &[
        any("read", libc::SYS_read, "input"),
        clone_threads_only(),
        clone3_refused(),
    ];

    #[test]
    fn a_table_compiles_into_two_filters() {
        let progs = compile(TABLE).unwrap();
        assert_eq!(progs.len(), 2);
        assert!(progs[1].len() > TABLE.len());
    }

    #[test]
    fn table_checks_find_duplicates_missing_reasons_and_forbidden_calls() {
        assert!(check_table(TABLE, &[libc::SYS_execve]).is_ok());
        let dup = [TABLE[0], TABLE[0]];
        assert!(check_table(&dup, &[]).unwrap_err().contains("twice"));
        let unexplained = [any("write", libc::SYS_write, "")];
        assert!(check_table(&unexplained, &[])
            .unwrap_err()
            .contains("reason"));
        assert!(check_table(TABLE, &[libc::SYS_read])
            .unwrap_err()
            .contains("must not"));
    }

    #[test]
    fn listing_names_the_argument_condition() {
        let lines = describe(TABLE);
        assert!(lines[1].contains("[arg0 & 0x10000]"), "{}", lines[1]);
    }
}
