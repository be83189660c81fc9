//! Starting a child process: a tiendo binary on a namespace (the settings it needs, as the
//! `TIENDO__…` environment variables it reads), and any child dying with its parent.

use std::net::SocketAddr;
use std::process::Command;

use tiendo_settings::{env_var, ExposeSecret as _, Settings};

/// The environment that points a tiendo process at `settings`' NATS server(s), prefix, replicas,
/// database, catalog and pipeline limits, with its HTTP endpoints on `http`.
pub fn env(settings: &Settings, http: SocketAddr) -> Vec<(String, String)> {
    let p = &settings.pipeline;
    let mut vars = vec![
        (env_var("nats.url"), settings.nats.url.expose().to_owned()),
        (env_var("nats.prefix"), settings.nats.prefix.clone()),
        (env_var("nats.replicas"), settings.nats.replicas.to_string()),
        (env_var("database.url"), settings.database.url.expose().to_owned()),
        (env_var("http.listen"), http.to_string()),
        (env_var("pipeline.batch_size"), p.batch_size.to_string()),
        (env_var("pipeline.ack_wait_secs"), p.ack_wait_secs.to_string()),
        (env_var("pipeline.max_deliver"), p.max_deliver.to_string()),
        (env_var("pipeline.retention_days"), p.retention_days.to_string()),
        (env_var("aggregation.partitioned"), settings.aggregation.partitioned.to_string()),
        (env_var("aggregation.instances"), settings.aggregation.instances.to_string()),
        (env_var("aggregation.instance"), settings.aggregation.instance.to_string()),
        (env_var("alerting.min_coverage"), settings.alerting.min_coverage.to_string()),
    ];
    if let Some(user) = &settings.nats.user {
        vars.push((env_var("nats.user"), user.clone()));
    }
    if let Some(password) = &settings.nats.password {
        vars.push((env_var("nats.password"), password.expose_secret().to_owned()));
    }
    if let Some(catalog) = &settings.catalog.path {
        vars.push((env_var("catalog.path"), catalog.display().to_string()));
    }
    vars
}

/// Makes the process `command` starts die with SIGKILL when the thread that starts it ends,
/// however it ends: with this process killed by SIGKILL or the OOM killer too, where
/// `kill_on_drop` and `Drop` never run. Without it a killed benchmark or test leaves its
/// private nats-server and service processes running. Linux only (`PR_SET_PDEATHSIG`);
/// elsewhere the command is unchanged. For a tokio command, pass `command.as_std_mut()`.
///
/// The signal follows the starting *thread*, not the process: start the child from a task on a
/// tokio runtime (its threads last as long as the runtime, which owns the child's handle too),
/// never from `spawn_blocking`, whose idle threads end after a few seconds and would take the
/// child with them.
pub fn dies_with_parent(command: &mut Command) -> &mut Command {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt as _;
        let parent = std::process::id();
        let die = move || {
            // Runs in the child between fork and exec: system calls only, no allocation.
            // SAFETY: prctl with PR_SET_PDEATHSIG and a signal number, and getppid, touch no
            // memory of the process.
            if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl: then no signal comes.
            if unsafe { libc::getppid() } as u32 != parent {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        };
        // SAFETY: `die` is async-signal-safe (above), as a closure run after fork must be.
        unsafe { command.pre_exec(die) };
    }
    command
}

/// True while process `pid` exists and is not a zombie (killed, but not yet reaped by its
/// parent). Reads `/proc`: Linux only, false elsewhere.
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        // `pid (name) state …`; the name may hold spaces, so read the state after its `)`.
        .and_then(|stat| stat.rsplit_once(") ").map(|(_, rest)| !rest.starts_with('Z')))
        .unwrap_or(false)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// Whether a `sleep` started by a thread that then ends (forgetting its handle) still runs
    /// once that thread is gone; with `die`, waits up to 5 s for it to die. Kills it after.
    async fn sleeper_outlives_its_thread(die: bool) -> bool {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                let mut command = tokio::process::Command::new("sleep");
                command.arg("30");
                if die {
                    dies_with_parent(command.as_std_mut());
                }
                let child = command.spawn().expect("sleep starts");
                tx.send(child.id().expect("a pid")).unwrap();
                // Neither waited for nor killed: the handle is forgotten as the thread ends.
                std::mem::forget(child);
            });
        })
        .join()
        .unwrap();
        let pid = rx.recv().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while alive(pid) && std::time::Instant::now() < deadline && die {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let outlived = alive(pid);
        let _ = std::process::Command::new("kill").args(["-KILL", &pid.to_string()]).status();
        outlived
    }

    #[tokio::test]
    async fn a_child_dies_when_the_thread_that_started_it_ends_and_only_if_asked_to() {
        assert!(!sleeper_outlives_its_thread(true).await, "the child ran on after its parent thread ended");
        assert!(sleeper_outlives_its_thread(false).await, "without it, the child runs on");
    }
}
