//! fedimint-cli 0.13.0 with its default client modules, as the crate's own `main.rs` starts it.
use fedimint_cli::FedimintCli;
use fedimint_core::fedimint_build_code_version_env;
use tikv_jemallocator::Jemalloc;

#[global_allocator]
static GLOBAL: Jemalloc = Jemalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    FedimintCli::new(fedimint_build_code_version_env!())?
        .with_default_modules()
        .run()
        .await;
    Ok(())
}
