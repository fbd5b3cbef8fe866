//! `semble-shim`: parse the command line, run the command, turn failures into one line.

use std::process::ExitCode;

use clap::Parser;
use semble_shim::cli::{Cli, Command};
use semble_shim::log::Logger;
use semble_shim::ops::{self, Failure, Mode};
use semble_shim::settings::Settings;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let usage = e.use_stderr();
            let _ = e.print();
            return ExitCode::from(if usage { 2 } else { 0 });
        }
    };
    if cli.version {
        println!("semble-shim version {}\nspec: 1.1.0", env!("CARGO_PKG_VERSION"));
        if let Some(runc) = semble_shim::backend::runc::binary(&Settings::from_cli(&cli)) {
            if let Ok(out) = std::process::Command::new(runc).arg("--version").output() {
                print!("backend {}", String::from_utf8_lossy(&out.stdout));
            }
        }
        return ExitCode::SUCCESS;
    }
    let Some(command) = &cli.command else {
        eprintln!("semble-shim: error: no command given; see `semble-shim --help`");
        return ExitCode::from(2);
    };
    let settings = Settings::from_cli(&cli);
    if cli.debug {
        // The embedded runtime (libcontainer) reports its steps through `tracing`.
        let _ = tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_max_level(tracing_subscriber::filter::LevelFilter::DEBUG)
            .try_init();
    }
    let mut log = Logger::new(cli.log.clone(), cli.log_format, cli.debug);
    let result = match command {
        Command::Create(a) => ops::create(&settings, &mut log, a, Mode::Create),
        Command::Run(a) => ops::create(&settings, &mut log, &a.create, Mode::Run { detach: a.detach, keep: a.keep }),
        Command::Start(a) => ops::start(&settings, &a.id),
        Command::State(a) => ops::passthrough(&settings, "state", &a.id, vec![]),
        Command::Kill(a) => ops::kill(&settings, &a.id, a.all, a.signal.as_deref()),
        Command::Delete(a) => ops::delete(&settings, &mut log, &a.id, a.force),
        Command::Exec(a) => ops::exec(&settings, &mut log, a),
        Command::Ps(a) => ops::ps(&settings, &a.id, &a.format, &a.ps_args),
        Command::Pause(a) => ops::passthrough(&settings, "pause", &a.id, vec![]),
        Command::Resume(a) => ops::passthrough(&settings, "resume", &a.id, vec![]),
        Command::Update(a) => ops::update(&settings, &mut log, a),
        Command::Events(a) => {
            let mut args: Vec<std::ffi::OsString> = Vec::new();
            if let Some(i) = &a.interval {
                args.push(format!("--interval={i}").into());
            }
            if a.stats {
                args.push("--stats".into());
            }
            ops::passthrough(&settings, "events", &a.id, args)
        }
        Command::Features => ops::features(&settings),
        Command::Spec(a) => ops::spec(&settings, a.bundle.as_deref(), a.rootless),
        Command::List(a) => ops::list(&settings, &a.format, a.quiet),
        Command::ExplainBundle(a) => semble_shim::explain_bundle::explain(&settings, &a.bundle, &a.id, &a.format),
        Command::Doctor(a) => {
            let opts = semble_shim::doctor::Options {
                run: a.run,
                containerd_config: a.containerd_config.clone(),
                busybox: a.busybox.clone(),
                cdi_dirs: a.cdi_spec_dirs.clone(),
            };
            let checks = semble_shim::doctor::run(&settings, &opts);
            if a.format == "json" {
                let v = serde_json::json!({"checks": checks, "ok": semble_shim::doctor::exit_status(&checks) == 0});
                println!("{v}");
                Ok(semble_shim::doctor::exit_status(&checks))
            } else {
                Ok(semble_shim::doctor::print_text(&checks))
            }
        }
        Command::Denials(a) => semble_shim::supervisor::denials(&settings, a.id.as_deref(), &a.format, a.patch),
        Command::Supervise(a) => semble_shim::supervisor::serve(&settings, &a.id, a.record.as_deref()),
        Command::Hold(a) => {
            let paths = semble_shim::state::Paths::new(&settings.records_dir(), &a.id);
            semble_shim::subcontainer::serve(&paths, &a.id, a.listen_fd, &a.runsc)
        }
        Command::Checkpoint(_) => ops::refuse_checkpoint("checkpoint"),
        Command::Restore(_) => ops::refuse_checkpoint("restore"),
    };
    match result {
        Ok(code) => ExitCode::from(u8::try_from(code & 0xff).unwrap_or(1)),
        Err(Failure(msg)) => {
            let msg = msg.replace('\n', " ");
            if log.to_file() {
                log.error(&msg);
            }
            eprintln!("semble-shim: error: {msg}");
            ExitCode::from(1)
        }
    }
}
