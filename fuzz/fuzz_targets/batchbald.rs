#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| bald_cli::fuzzing::fuzz_batchbald(data));
