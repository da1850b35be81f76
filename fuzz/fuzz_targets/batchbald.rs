#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| bald_testing::fuzzing::fuzz_batchbald(data));
