//! The config file: JSON of the documented shape, then validation of every
//! value. Arbitrary bytes give a config or an error naming the file, never
//! a panic.
#![no_main]

use std::path::Path;

use docker_credential_exchange::for_tests::config::Config;
use docker_credential_exchange::for_tests::server_url::{ServerUrl, is_under};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("/etc/docker-credential-exchange/config.json");
    match Config::parse(path, data.to_vec()) {
        Ok(config) => {
            // Lookups over whatever was accepted stay panic-free, each key
            // finds its own entry, and each entry parses or says why.
            for id in config.ids() {
                let key = config.key(id);
                let found = config.lookup(key).expect("a key finds its own entry");
                assert!(is_under(key.as_str(), config.key(found).as_str()));
                if let Err(e) = config.registry(id) {
                    assert!(e.to_string().contains("config.json"));
                }
            }
            let _ = config.lookup(&ServerUrl::parse("registry.example.com/team/app").unwrap());
        }
        Err(e) => assert!(e.to_string().contains("config.json")),
    }
});
