//! The code version gatewayd reports: the fedimint commit the 0.13.0 crates were published
//! from (their `.cargo_vcs_info.json`), not this repository's git hash.
fn main() {
    println!("cargo:rustc-env=FEDIMINT_BUILD_CODE_VERSION=264ebf22b698c158055bcdd80d5b586fdb48d1fc");
}
