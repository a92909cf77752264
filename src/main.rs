//! The `rvlf` command; see `rvlf --help`.

fn main() -> std::process::ExitCode {
    rvlf::cli::main()
}
