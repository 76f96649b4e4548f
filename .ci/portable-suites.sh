# shellcheck shell=bash
# The suites that start no Linux service, so they run on every OS: the
# `macos` and `windows` jobs of .github/workflows/ci.yml and .ci/wine.sh
# (the Windows build under Wine) source this list. docs/platforms.md says
# what each OS runs.
# shellcheck disable=SC2034 # used by the scripts that source it
portable_suites=(
  --lib
  --test protocol
  --test exchange
  --test cli
  --test cli_configure_docker
  --test cli_configure_docker_files
  --test cli_configure_docker_keys
  --test cli_configure_docker_remove
  --test cli_configure_docker_warnings
  --test cli_doctor
  --test cli_doctor_endpoint
  --test cli_import
  --test cli_login
  --test cli_status
  --test client_auth
  --test client_auth_doctor
  --test client_auth_mtls
  --test failures
  --test providers
)
