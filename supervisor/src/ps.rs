//! `ps`: the host processes that make up a sandbox, as runc lists a
//! container's: the sentry (the container's init as the host sees it), its
//! descendants (the systrap platform's stub processes), the gofer, and
//! anything else placed in the container's cgroup.

use anyhow::{bail, Result};

use crate::container::{self, Status};
use crate::host::{Host, ProcessInfo};
use crate::state::ContainerState;

/// Every live host pid of the sandbox, the sentry first; none once it
/// stopped.
pub fn pids(host: &dyn Host, st: &ContainerState) -> Vec<i32> {
    if container::status_of(host, st) == Status::Stopped {
        return vec![];
    }
    let mut found = vec![st.pid];
    // Breadth-first over the sentry's tree; `found` doubles as the queue.
    let mut next = 0;
    while next < found.len() {
        for child in host.children(found[next]) {
            if !found.contains(&child) {
                found.push(child);
            }
        }
        next += 1;
    }
    if st.gofer_pid > 0 && matches!(host.process(st.gofer_pid), ProcessInfo::Alive { .. }) {
        push_new(&mut found, st.gofer_pid);
    }
    if let Some(cg) = &st.cgroup {
        for pid in cg.pids(host.cgroups()) {
            if matches!(host.process(pid), ProcessInfo::Alive { .. }) {
                push_new(&mut found, pid);
            }
        }
    }
    found
}

fn push_new(list: &mut Vec<i32>, pid: i32) {
    if !list.contains(&pid) {
        list.push(pid);
    }
}

/// runc's table form: the host's `ps` output (its header and the lines
/// whose PID column is one of `pids`).
pub fn table(ps_output: &str, pids: &[i32]) -> Result<String> {
    let mut lines = ps_output.lines();
    let Some(header) = lines.next() else {
        bail!("ps printed nothing");
    };
    let Some(column) = header.split_whitespace().position(|f| f == "PID") else {
        bail!("ps output has no PID column: {header:?}");
    };
    let mut out = format!("{header}\n");
    for line in lines {
        let pid = line
            .split_whitespace()
            .nth(column)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            out.push_str(line);
            out.push('\n');
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::{HostError, Launch};
    use std::cell::RefCell;
    use std::collections::HashMap;

    #[derive(Default)]
    struct Tree {
        alive: RefCell<HashMap<i32, u64>>,
        children: HashMap<i32, Vec<i32>>,
        cgroups: crate::cgroup::fake::FakeCgroupFs,
    }

    impl Host for Tree {
        fn spawn(&self, _: Launch) -> Result<i32, HostError> {
            unreachable!()
        }
        fn kill(&self, _: i32, _: i32) -> Result<bool, HostError> {
            unreachable!()
        }
        fn process(&self, pid: i32) -> ProcessInfo {
            match self.alive.borrow().get(&pid) {
                Some(&start) => ProcessInfo::Alive { start },
                None => ProcessInfo::Gone,
            }
        }
        fn children(&self, pid: i32) -> Vec<i32> {
            self.children.get(&pid).cloned().unwrap_or_default()
        }
        fn cgroups(&self) -> &dyn crate::cgroup::CgroupFs {
            &self.cgroups
        }
    }

    fn state() -> ContainerState {
        ContainerState {
            id: "c".into(),
            pid: 100,
            pid_start: 5,
            gofer_pid: 101,
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            created: crate::state::now_rfc3339(),
            annotations: HashMap::new(),
            started: true,
            cgroup: None,
        }
    }

    #[test]
    fn sentry_its_stubs_and_the_gofer() {
        let mut host = Tree::default();
        for (pid, start) in [(100, 5), (101, 6), (200, 7), (201, 8), (300, 9)] {
            host.alive.borrow_mut().insert(pid, start);
        }
        host.children.insert(100, vec![200, 201]);
        host.children.insert(201, vec![300]);
        assert_eq!(pids(&host, &state()), vec![100, 200, 201, 300, 101]);
        // The gofer gone: not listed.
        host.alive.borrow_mut().remove(&101);
        assert_eq!(pids(&host, &state()), vec![100, 200, 201, 300]);
        // A stopped container has no processes.
        host.alive.borrow_mut().remove(&100);
        assert!(pids(&host, &state()).is_empty());
    }

    #[test]
    fn table_keeps_the_header_and_our_lines() {
        let ps = "UID          PID    PPID  C STIME TTY          TIME CMD\n\
                  root           1       0  0 10:00 ?        00:00:01 init\n\
                  root         100       1  0 10:00 ?        00:00:00 sentry boot\n\
                  root         101       1  0 10:00 ?        00:00:00 gofer serve\n";
        let t = table(ps, &[100, 101]).unwrap();
        assert_eq!(t.lines().count(), 3);
        assert!(t.starts_with("UID") && t.contains("sentry boot") && !t.contains("init"));
        let e = table("USER COMMAND\nroot x\n", &[1])
            .unwrap_err()
            .to_string();
        assert!(e.contains("no PID column"), "{e}");
    }
}
