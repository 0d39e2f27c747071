#![no_main]
//! See `vicifast_engine::fuzzing::stream`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| vicifast_engine::fuzzing::stream(data));
