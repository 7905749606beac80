#![no_main]
//! Fuzz the ioctl parser(s): any input must give Ok or Err, never a panic.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = smb2::fuzzing::ioctl(data);
});
