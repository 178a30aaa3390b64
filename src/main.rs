//! The `arclist` binary; everything lives in the library's `cli` module.

fn main() -> std::process::ExitCode {
    arclist::memory::tune_allocator();
    arclist::cli::main()
}
