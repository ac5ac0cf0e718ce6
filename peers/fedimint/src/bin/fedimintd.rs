//! fedimintd 0.13.0 with its default modules, exactly as the crate's own `main.rs` starts it.
use std::convert::Infallible;

use fedimint_core::fedimint_build_code_version_env;
use tikv_jemallocator::Jemalloc;

#[unsafe(no_mangle)]
pub static malloc_conf: &[u8] =
    b"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:1000,narenas:4\0";

#[global_allocator]
static GLOBAL: Jemalloc = Jemalloc;

#[tokio::main]
async fn main() -> anyhow::Result<Infallible> {
    fedimintd::run(fedimintd::default_modules(), fedimint_build_code_version_env!(), None).await
}
