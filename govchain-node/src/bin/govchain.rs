//! `govchain`: the operator command line of a govchain department node.
//! See [`govchain_node::cli`] for the commands.

fn main() -> std::process::ExitCode {
    govchain_node::cli::main()
}
