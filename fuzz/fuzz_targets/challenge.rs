#![no_main]
//! See `vicifast_core::fuzzing::challenge`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| vicifast_core::fuzzing::challenge(data));
