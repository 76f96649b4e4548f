//! The `docker-credential-exchange` binary; everything lives in the library.

fn main() -> std::process::ExitCode {
    docker_credential_exchange::main()
}
