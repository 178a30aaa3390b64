//! The `arclist` binary; everything lives in the library's `cli` module.

fn main() -> std::process::ExitCode {
    arclist::base::memory::tune_allocator();
    arclist::assembly::cli::main()
}
