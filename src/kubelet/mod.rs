//! `docker-credential-exchange kubelet-credential-provider`: the same helper
//! as the kubelet's image credential provider plugin (DESIGN.md section 8).

pub mod image;
