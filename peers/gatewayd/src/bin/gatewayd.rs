//! gatewayd 0.13.0 (fedimint's own gateway, crate `fedimint-gateway-server`) with its default
//! modules, started as the crate's own `src/bin/gatewayd.rs` starts it: a runtime shared with the
//! gateway, the seed channel, then run until shut down and unannounce from every federation.
//! Built only with the `gatewayd` feature (peers/fedimint/build-gatewayd.sh), for the benchmark.
use std::sync::Arc;

use fedimint_core::fedimint_build_code_version_env;
use fedimint_core::util::handle_version_hash_command;
use fedimint_gateway_server::Gateway;
use fedimint_logging::TracingSetup;
use tikv_jemallocator::Jemalloc;

#[global_allocator]
static GLOBAL: Jemalloc = Jemalloc;

fn main() -> anyhow::Result<()> {
    let runtime = Arc::new(tokio::runtime::Runtime::new()?);
    runtime.block_on(async {
        handle_version_hash_command(fedimint_build_code_version_env!());
        TracingSetup::default().init()?;
        let (seed_tx, seed_rx) = tokio::sync::broadcast::channel(4);
        let gateway = Gateway::new_with_default_modules(seed_tx).await?;
        let stopped = gateway.clone().run(runtime.clone(), seed_rx).await?;
        stopped.await;
        gateway.unannounce_from_all_federations().await;
        tracing::info!("gatewayd exiting");
        Ok(())
    })
}
