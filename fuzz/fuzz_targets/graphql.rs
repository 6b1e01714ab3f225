//! cargo-fuzz target: [`tabflow_fuzz::graphql`] (see its docs for what it exercises).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tabflow_fuzz::graphql(data));
