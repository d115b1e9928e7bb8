//! The control socket server: the supervisor's `start`, `kill` and `state`
//! reach a running sentry here. The supervisor binds the socket (its path
//! lives in the container's state directory) and hands the listener over in
//! the boot message; one request and one reply per connection.

use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::{Arc, Condvar, Mutex};

use ipc::{ControlRequest, ControlResponse, SandboxStatus};

use crate::kernel::Kernel;

/// What the control server and the boot sequence share.
#[derive(Debug)]
pub struct Control {
    kernel: Arc<Kernel>,
    status: Mutex<SandboxStatus>,
    changed: Condvar,
}

/// Signals whose default action is to be ignored: sending one to an
/// application that has no handler for it changes nothing.
const IGNORED_BY_DEFAULT: &[i32] = &[libc::SIGCHLD, libc::SIGURG, libc::SIGWINCH, libc::SIGCONT];

impl Control {
    pub fn new(kernel: Arc<Kernel>, status: SandboxStatus) -> Arc<Self> {
        Arc::new(Self {
            kernel,
            status: Mutex::new(status),
            changed: Condvar::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SandboxStatus> {
        self.status.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn status(&self) -> SandboxStatus {
        *self.lock()
    }

    pub fn set_status(&self, status: SandboxStatus) {
        *self.lock() = status;
        self.changed.notify_all();
    }

    /// Blocks until a `Start` request arrives.
    pub fn wait_for_start(&self) {
        let mut status = self.lock();
        while *status == SandboxStatus::Created {
            status = self.changed.wait(status).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Answers one request.
    pub fn handle(&self, request: &ControlRequest) -> ControlResponse {
        match *request {
            ControlRequest::Start => {
                let mut status = self.lock();
                if *status != SandboxStatus::Created {
                    return ControlResponse::Error(format!("sandbox is {status:?}, not created"));
                }
                *status = SandboxStatus::Running;
                self.changed.notify_all();
                ControlResponse::Ok
            }
            ControlRequest::Signal { signo, all: _ } => {
                if !(1..=64).contains(&signo) {
                    return ControlResponse::Error(format!("invalid signal {signo}"));
                }
                // Signal handlers in the application are not served yet: a
                // signal either does nothing or ends every task, as its
                // default action would.
                if !IGNORED_BY_DEFAULT.contains(&signo) {
                    self.kernel.kill_all(signo);
                }
                ControlResponse::Ok
            }
            ControlRequest::State => ControlResponse::State {
                status: self.status(),
                pid: 1,
            },
        }
    }

    /// Serves `listener` on a thread of its own for the sentry's lifetime.
    pub fn serve(self: &Arc<Self>, listener: UnixListener) -> std::io::Result<()> {
        let control = Arc::clone(self);
        std::thread::Builder::new()
            .name("control".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    match conn {
                        Ok(stream) => control.serve_one(&stream),
                        Err(e) => tracing::warn!("control socket accept: {e}"),
                    }
                }
            })?;
        Ok(())
    }

    fn serve_one(&self, stream: &UnixStream) {
        let request: ControlRequest = match ipc::recv(stream) {
            Ok((request, _fds)) => request,
            Err(e) => {
                tracing::warn!("control request: {e}");
                return;
            }
        };
        tracing::debug!(?request, "control request");
        let response = self.handle(&request);
        if let Err(e) = ipc::send(stream, &response, &[]) {
            tracing::warn!("control reply: {e}");
        }
    }
}
