//! The man page, docker-credential-exchange(1): clap_mangen's sections for
//! what clap knows (synopsis, options, each subcommand), and hand-written
//! ones for what it does not: the protocol Docker speaks, the config file,
//! exit status, environment, files on each system and examples.
//!
//! One page for the whole tool, like ssh(1) rather than git's page per
//! command: clap_mangen's own SUBCOMMANDS section points at a page per
//! subcommand (`docker-credential-exchange-login(1)`), which would be
//! dangling. So the top-level sections come from clap_mangen as they are,
//! and each visible subcommand, down to `cache clear`, gets a subsection
//! made of its own synopsis, description, options and example.

use std::io;

/// The page's `.TH` line, written here rather than by clap_mangen: it
/// leaves an empty date unquoted, which roff drops, so every later field
/// moved one place left (the source became the date and the macro
/// package's "General Commands Manual" the manual), and at 80 columns
/// man printed `docker-credential-exchange(1General Commands Manu…`. With
/// the date held by `""`, a short manual name and the bare version, the
/// header and the footer both fit. The `Aq` string is the preamble
/// clap_mangen's sections use for quotes.
fn title(out: &mut Vec<u8>, name: &str) {
    let title = format!(
        ".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n.TH {name} 1 \"\" \"{name} {version}\" \"User Commands\"\n",
        version = env!("CARGO_PKG_VERSION"),
    );
    out.extend_from_slice(title.as_bytes());
}

pub(super) fn render(mut command: clap::Command, out: &mut Vec<u8>) -> io::Result<()> {
    // Building sets every subcommand's full name (`docker-credential-exchange
    // cache clear`) for its synopsis.
    command.build();
    let top = clap_mangen::Man::new(command.clone());
    title(out, command.get_name());
    top.render_name_section(out)?;
    top.render_synopsis_section(out)?;
    top.render_description_section(out)?;
    top.render_options_section(out)?;
    out.extend_from_slice(PROTOCOL_SECTION.as_bytes());
    out.extend_from_slice(b".SH COMMANDS\n");
    for sub in visible_leaves(&command) {
        let man = clap_mangen::Man::new(sub.clone());
        let name = sub.get_bin_name().unwrap_or_else(|| sub.get_name());
        out.extend_from_slice(format!(".SS \"{}\"\n", name.replace('-', "\\-")).as_bytes());
        out.extend(section_body(|w| man.render_synopsis_section(w))?);
        out.extend_from_slice(b".PP\n");
        out.extend(section_body(|w| man.render_description_section(w))?);
        out.extend(section_body(|w| man.render_options_section(w))?);
        if sub.get_after_help().is_some() || sub.get_after_long_help().is_some() {
            // Examples keep their lines and indentation.
            out.extend_from_slice(b".PP\n.nf\n");
            out.extend(section_body(|w| man.render_extra_section(w))?);
            out.extend_from_slice(b".fi\n");
        }
    }
    for section in [CONFIGURATION_SECTION, EXIT_STATUS_SECTION, ENVIRONMENT_SECTION, FILES_SECTION] {
        out.extend_from_slice(section.as_bytes());
    }
    out.extend_from_slice(EXAMPLES_SECTION.as_bytes());
    out.extend_from_slice(SEE_ALSO_SECTION.as_bytes());
    top.render_version_section(out)
}

/// What Docker runs, which clap does not parse (see `crate::main`).
const PROTOCOL_SECTION: &str = r#".SH DOCKER CREDENTIAL HELPER PROTOCOL
Docker, BuildKit, skopeo, podman and other clients run
.B docker\-credential\-exchange get|store|erase|list|version
with the request on standard input, as for every docker\-credential\-* helper.
Point them at it with
.B configure\-docker
or by hand in Docker's config.json, for chosen registries or for all:
.PP
.nf
  { "credHelpers": { "registry.example.com": "exchange" } }
  { "credsStore": "exchange" }
.fi
.PP
For a registry configured for exchange, log in with
.BR "docker\-credential\-exchange login" ,
not
.BR "docker login" :
Docker checks the password against the registry before it hands it to the
helper, and a registry does not accept a login token meant for the token
exchange endpoint.
"#;

const CONFIGURATION_SECTION: &str = r#".SH CONFIGURATION
One JSON file (see FILES), read on every run; no file means no exchange
registries. Unknown fields, duplicate keys and bad values are errors that
name the file, line, column and field.
.PP
.nf
{
  "registries": {
    "registry.example.com": {
      "token_endpoint": "https://sts.example.com/oauth2/token",
      "subject_token": { "source": "keyring" },
      "subject_token_type": "urn:ietf:params:oauth:token\-type:jwt",
      "audience": "https://registry.example.com",
      "scope": "repository:team/app:pull,push repository:team/lib:pull",
      "client_id": "docker",
      "client_secret": { "source": "env", "var": "STS_CLIENT_SECRET" }
    }
  }
}
.fi
.PP
A key is
.I host[:port]
or
.IR host[:port]/repository/prefix ;
a request uses the longest key that matches it. Docker, BuildKit and skopeo
pass only the host, so a host entry names its repositories in a fixed
.BR scope .
.TP
.B token_endpoint
The RFC 8693 endpoint:
.B https://
(plain
.B http://
only to a loopback host).
.TP
.B subject_token
Where the login token comes from:
.B keyring
(the default; stored by
.BR login ),
.BR env " (" var ),
.BR file " (" path ", re-read every time),"
.BR command " (" argv ", " timeout_seconds ),
.BR github\-actions " (" audience ),
or
.B kubelet
(the pod's service account token).
.TP
.BR audience ", " resource ", " scope
Sent with the exchange; a string or a list.
.B {registry}
and
.B {repository}
are filled from the request.
.TP
.BR client_id ", " client_secret ", " client_auth
Client authentication; the secret takes the same sources as
.BR subject_token .
.TP
.B username
Returned beside the token (default: the login's username, else
.BR oauth2accesstoken ).
.TP
.BR safety_margin_seconds ", " default_lifetime_seconds ", " ca_file
Refresh this long before expiry (default 60); the lifetime when the answer
gives none (60); extra PEM trust roots for the endpoint.
.TP
.B store
(top level)
.B keyring
(the default) or
.BR file :
where secrets are kept.
"#;

const EXIT_STATUS_SECTION: &str = r#".SH EXIT STATUS
.TP
.B 0
Success.
.TP
.B 1
Failure. For
.BR get ", " store ", " erase " and " list
the message is on standard output, as Docker expects
(\fBcredentials not found in native keychain\fR when there is nothing to
return); for every other command it is on standard error.
.B doctor
exits 1 when it found a problem that would make a pull fail, and
.B import
when it could not copy every credential.
.TP
.B 2
The command line could not be parsed.
"#;

const ENVIRONMENT_SECTION: &str = r#".SH ENVIRONMENT
.TP
.B DOCKER_CREDENTIAL_EXCHANGE_CONFIG
The config file, in place of the default (see FILES).
.B \-\-config
overrides it.
.TP
.B DOCKER_CREDENTIAL_EXCHANGE_STORE
.B file
keeps secrets in a 0600 file in the data directory instead of the OS
keyring (headless machines);
.B keyring
is the default.
.TP
.B DOCKER_CREDENTIAL_EXCHANGE_CACHE_DIR
The token cache directory.
.TP
.B DOCKER_CREDENTIAL_EXCHANGE_DATA_DIR
The data directory: the keyring index and the file store.
.TP
.B DOCKER_CREDENTIAL_EXCHANGE_NO_CACHE
.B 1
never caches exchanged tokens.
.TP
.B DOCKER_CREDENTIAL_EXCHANGE_TIMEOUT_SECONDS
One deadline for a whole
.BR get :
connects, slow answers, retries and waiting for another process's exchange
(default 30; a positive number of seconds).
.TP
.B DOCKER_CREDENTIAL_EXCHANGE_SECRET_SERVICE
Linux only.
.B trust\-unverified\-bus
uses a Secret Service on a session bus whose owner cannot be checked (a
.B tcp:
address), over the encrypted session. Without it such a bus is refused; a
bus or keyring that belongs to another user is always refused.
.TP
.B DOCKER_CREDENTIAL_EXCHANGE_LOG
.B debug
logs to standard error, as
.B \-v
does. Tokens appear only as
.B sha256:
fingerprints.
.TP
.B DOCKER_CREDENTIAL_EXCHANGE_LOG_FILE
Appends log lines to this file (created 0600; a symlink, or a file others
may write, is refused). Docker hides a helper's standard error.
.TP
.B DOCKER_CONFIG
The directory of Docker's config.json (default
.BR ~/.docker ),
which
.BR configure\-docker ,
.B doctor
and
.B import
read and write.
.TP
.BR REGISTRY_AUTH_FILE ", " XDG_RUNTIME_DIR ", " XDG_CONFIG_HOME
Where
.B doctor
looks for the containers auth.json that skopeo, podman and buildah read.
.TP
.BR XDG_CONFIG_HOME ", " XDG_CACHE_HOME ", " XDG_DATA_HOME
On Linux, the base of the default config, cache and data directories.
.TP
.BR ACTIONS_ID_TOKEN_REQUEST_URL ", " ACTIONS_ID_TOKEN_REQUEST_TOKEN
Set by GitHub Actions for jobs with
.BR "id\-token: write" ;
the
.B github\-actions
subject source fetches the job's OIDC token with them.
.TP
.BR HTTPS_PROXY ", " HTTP_PROXY ", " ALL_PROXY ", " NO_PROXY
Proxies for the token endpoint (lower-case names too). A loopback endpoint
is always reached directly.
.TP
.B DBUS_SESSION_BUS_ADDRESS
The session bus of the Secret Service (Linux).
.TP
.B PATH
Where
.B import \-\-from
and
.B doctor
find other credential helpers and this one.
.TP
.B COLUMNS
The width of
.BR status 's
table on a terminal.
"#;

const FILES_SECTION: &str = r#".SH FILES
Each path can be moved with the variable named in ENVIRONMENT.
.TP
.B Linux
.nf
~/.config/docker\-credential\-exchange/config.json    the config
~/.cache/docker\-credential\-exchange/                token cache, last failures
~/.local/share/docker\-credential\-exchange/          keyring index, file store
.fi
.TP
.B macOS
.nf
~/Library/Application Support/docker\-credential\-exchange/config.json
~/Library/Caches/docker\-credential\-exchange/
~/Library/Application Support/docker\-credential\-exchange/    (data)
.fi
.TP
.B Windows
.nf
%APPDATA%\(rsdocker\-credential\-exchange\(rsconfig\(rsconfig.json
%LOCALAPPDATA%\(rsdocker\-credential\-exchange\(rscache\(rs
%LOCALAPPDATA%\(rsdocker\-credential\-exchange\(rsdata\(rs
.fi
.TP
.B Log
None by default; see
.BR DOCKER_CREDENTIAL_EXCHANGE_LOG_FILE .
.TP
.B ~/.docker/config.json
Docker's config, whose
.B credHelpers
or
.B credsStore
send registries to this helper.
"#;

const EXAMPLES_SECTION: &str = r#".SH EXAMPLES
Send one registry to the helper, log in, and see what a pull would get:
.PP
.nf
  docker\-credential\-exchange configure\-docker registry.example.com
  docker\-credential\-exchange login registry.example.com
  docker\-credential\-exchange token registry.example.com \-\-decode
.fi
.PP
In CI, log in from a token in a pipe instead of a prompt:
.PP
.nf
  printf '%s' "$LOGIN_TOKEN" | docker\-credential\-exchange login registry.example.com \-\-token\-stdin
.fi
.PP
When a pull fails:
.PP
.nf
  docker\-credential\-exchange doctor
  docker\-credential\-exchange status
  DOCKER_CREDENTIAL_EXCHANGE_LOG_FILE=~/dce.log docker pull registry.example.com/team/app
.fi
.PP
Ask the helper as Docker does:
.PP
.nf
  echo registry.example.com | docker\-credential\-exchange get
.fi
"#;

const SEE_ALSO_SECTION: &str = r#".SH SEE ALSO
.BR docker (1),
.BR skopeo (1),
RFC 8693 (OAuth 2.0 Token Exchange)
"#;

/// Every subcommand a person runs, depth first, without the groups that
/// only hold others (`cache`) and without hidden ones.
fn visible_leaves(command: &clap::Command) -> Vec<&clap::Command> {
    let mut leaves = Vec::new();
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set() && s.get_name() != "help") {
        if sub.has_subcommands() {
            leaves.extend(visible_leaves(sub));
        } else {
            leaves.push(sub);
        }
    }
    leaves
}

/// A section rendered by clap_mangen without its `.SH` heading and the
/// preamble every render repeats, to be placed under a subsection.
fn section_body(render: impl FnOnce(&mut Vec<u8>) -> io::Result<()>) -> io::Result<Vec<u8>> {
    let mut rendered = Vec::new();
    render(&mut rendered)?;
    let text = String::from_utf8_lossy(&rendered);
    let mut body = String::new();
    for line in text.lines() {
        let preamble = line.starts_with(".ie \\n(.g .ds Aq") || line.starts_with(".el .ds Aq");
        if !preamble && !line.starts_with(".SH ") {
            body.push_str(line);
            body.push('\n');
        }
    }
    Ok(body.into_bytes())
}
