#![no_main]
//! See `vicifast_core::fuzzing::registration`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| vicifast_core::fuzzing::registration(data));
