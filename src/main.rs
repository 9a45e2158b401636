use clap::Parser;

fn main() {
    let cli = ferry::cli::Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("FERRY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal: logs in files stay greppable.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ERROR! cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = match rt.block_on(ferry::cli::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ERROR! {e}");
            e.exit_code()
        }
    };
    std::process::exit(code);
}
