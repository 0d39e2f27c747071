#![no_main]
//! See `vicifast_core::fuzzing::message`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| vicifast_core::fuzzing::message(data));
