//! The `pop3` binary: parse the command line, set up logging, run, and turn the outcome
//! into an exit code. Everything else lives in the library.

use std::process::ExitCode;

use clap::FromArgMatches;

fn main() -> ExitCode {
    let parsed = pop3::cli::command()
        .try_get_matches()
        .and_then(|m| pop3::cli::Cli::from_arg_matches(&m));
    let cli = match parsed {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // Help and version are not errors; bad usage is EX_USAGE (DESIGN.md exit codes).
            return if e.use_stderr() {
                ExitCode::from(pop3::ErrorKind::Usage.exit_code())
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    init_logging(cli.quiet, cli.verbose);
    // A file-size limit (ulimit -f) must make writes fail with EFBIG, which the delivery
    // reports and rolls back, instead of killing the process with SIGXFSZ.
    let _ = signal_hook::flag::register(
        signal_hook::consts::SIGXFSZ,
        std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)),
    );
    match pop3::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("pop3: {e:#}");
            ExitCode::from(pop3::error::exit_code(&e))
        }
    }
}

/// stderr logging: errors only with -q, warnings by default, `info` with -v, the protocol
/// trace with -vv. `RUST_LOG` refines it.
fn init_logging(quiet: bool, verbose: u8) {
    let level = match (quiet, verbose) {
        (true, _) => log::LevelFilter::Error,
        (false, 0) => log::LevelFilter::Warn,
        (false, 1) => log::LevelFilter::Info,
        (false, _) => log::LevelFilter::Debug,
    };
    // ureq's own debug lines describe the OAuth requests, whose bodies hold secrets: keep
    // them out of -vv (RUST_LOG can still ask for them).
    let http = level.min(log::LevelFilter::Warn);
    env_logger::Builder::new()
        .filter_level(level)
        // rustls's own debug lines ("No cached session for ...") are not ours to show;
        // RUST_LOG=rustls=debug still brings them back.
        .filter_module("rustls", level.min(log::LevelFilter::Warn))
        .filter_module("ureq", http)
        .filter_module("ureq_proto", http)
        .parse_env("RUST_LOG")
        .format(|buf, record| {
            use std::io::Write;
            match record.level() {
                log::Level::Error | log::Level::Warn => writeln!(
                    buf,
                    "pop3: {}: {}",
                    record.level().as_str().to_lowercase(),
                    record.args()
                ),
                // With --jobs the trace of several sessions interleaves: name the account.
                _ => match pop3::ui::log_context::current() {
                    Some(a) if record.target() == "pop3::wire" => {
                        writeln!(buf, "pop3: {a}: {}", record.args())
                    }
                    _ => writeln!(buf, "pop3: {}", record.args()),
                },
            }
        })
        .init();
}
