//! The kubelet's request and the image in it: parsing never panics, and an
//! image the helper accepts is stable: its kubelet name parses back to the
//! same registry and repository, its repository satisfies the OCI grammar,
//! its config lookup is a server URL, and the response built from it is
//! JSON.
#![no_main]

use docker_credential_exchange::for_tests::kubelet::{Coverage, ImageRef};
use docker_credential_exchange::for_tests::kubelet::CredentialProviderRequest;
use docker_credential_exchange::for_tests::kubelet::{Issued, respond};
use docker_credential_exchange::for_tests::Secret;
use docker_credential_exchange::for_tests::server_url::is_repository_name;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Each input's secrets would otherwise pile up in the redaction list.
    docker_credential_exchange::for_tests::redact::forget_all();
    // Fuzz the image both inside a request and bare.
    let request = CredentialProviderRequest::parse(data).ok();
    let bare = std::str::from_utf8(data).ok();
    for image in request.as_ref().map(|r| r.image.as_str()).into_iter().chain(bare) {
        let Ok(parsed) = ImageRef::parse(image) else { continue };
        let again = ImageRef::parse(&parsed.name()).expect("a kubelet name parses");
        assert_eq!(
            (again.registry(), again.repository()),
            (parsed.registry(), parsed.repository()),
            "{image:?}"
        );
        assert!(is_repository_name(parsed.repository()), "{image:?}");
        let url = parsed.server_url().expect("the lookup of an image is a server URL");
        assert_eq!(url.repository(), Some(parsed.repository()), "{image:?}");
        if let Some(request) = &request {
            let issued = Issued {
                username: "u".into(),
                password: Secret::new("p".into()),
                coverage: Coverage::Repository,
                cache_for: None,
            };
            let line = respond(request, &parsed, issued).to_json_line();
            let _: serde_json::Value = serde_json::from_str(&line).expect("the response is JSON");
        }
    }
});
