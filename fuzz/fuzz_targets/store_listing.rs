//! The keyring's index as `list` reads it: arbitrary bytes give a listing
//! or an error naming the file, never a panic. Under `cfg(fuzzing)`,
//! `listing_of` itself asserts that its fast read agrees with serde_json.
#![no_main]

use std::path::Path;

use docker_credential_exchange::for_tests::store::listing_of;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match listing_of(Path::new("/data/index.json"), data.to_vec()) {
        Ok(listing) => {
            let mut previous: Option<&str> = None;
            for listed in listing.iter() {
                assert!(previous.is_none_or(|p| p < listed.key), "keys are sorted and unique");
                assert!(listing.contains_key(listed.key));
                previous = Some(listed.key);
            }
        }
        Err(e) => assert!(e.to_string().contains("index.json")),
    }
});
