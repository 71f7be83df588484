//! Stand-alone servers for the benchmarks and the e2e script:
//! `serve upstream PORT` runs the scripted upstream; `serve guard ARGS...`
//! runs the `aisec guard` command (the CLI module is compiled in from
//! crates/aisec/src/cmd/guard.rs, so this also checks that it builds).

#![allow(clippy::unwrap_used, clippy::print_stdout, unreachable_pub)] // Examples may unwrap and print.

#[path = "../../aisec/src/cmd/guard.rs"]
mod guard;

use clap::Parser;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: guard::GuardArgs,
}

fn main() -> anyhow::Result<()> {
    let mut argv: Vec<String> = std::env::args().collect();
    match argv.get(1).map(String::as_str) {
        Some("upstream") => {
            let port: u16 = argv.get(2).and_then(|p| p.parse().ok()).unwrap_or(0);
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            rt.block_on(async move {
                let up = aisec_guard::upstream::start_upstream(port).await?;
                eprintln!("scripted upstream on {}", up.url());
                let _ = tokio::signal::ctrl_c().await;
                Ok::<(), anyhow::Error>(())
            })
        }
        Some("guard") => {
            argv.remove(1);
            let cli = Cli::parse_from(argv);
            let code = guard::run(cli.args)?;
            std::process::exit(code)
        }
        _ => anyhow::bail!("usage: serve upstream PORT | serve guard [aisec guard args]"),
    }
}
