#!/usr/bin/env python3
"""Fixtures for bench/run.sh: files the helper (or a peer) reads, written
the way the benchmark needs them, plus the clock shift of the simulated day.

    fixtures.py field FILE NAME               print one field of a JSON file
    fixtures.py config OUT N URL              N-registry config, hit.bench.test first
    fixtures.py readme OUT N URL              N registries shaped like the README's example
                                              (N "max": as many as fit in 1 MiB)
    fixtures.py index TEMPLATE OUT N          index of N stored registries
    fixtures.py ecr HOME KEY_ID REGION ACCOUNT PASSWORD
                                              amazon-ecr-credential-helper 0.6.0 cache
    fixtures.py shift DIR SECONDS             move a cache directory SECONDS into the past
    fixtures.py census DIR                    "files bytes" of a directory (no recursion)

Standard library only, so the benchmark needs nothing but python3.
"""

import base64
import datetime
import hashlib
import json
import os
import sys


def field(path, name):
    with open(path) as f:
        print(json.load(f)[name])


def config(out, n, url):
    """`hit.bench.test` exactly as in the main config (so it shares the
    cache entry of the main rows), then N-1 more exchange registries with
    the least a real entry has: a token endpoint. Compact JSON, so 10,000
    entries stay under the helper's 1 MiB config limit."""
    registries = {
        "hit.bench.test": {
            "token_endpoint": url,
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        }
    }
    for i in range(1, n):
        registries[f"r{i:05d}.bench.test"] = {"token_endpoint": url}
    write_private(out, json.dumps({"registries": registries}, separators=(",", ":")))


MAX_CONFIG_BYTES = 1024 * 1024

# The README's example entry, every field, laid out as the README lays it
# out: about 420 bytes an entry, so 1000 entries are about 420 KB.
README_ENTRY = """\
    "{name}": {{
      "token_endpoint": "{url}",
      "subject_token": {{ "source": "keyring" }},
      "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
      "audience": "https://{name}",
      "scope": "repository:team/app:pull,push repository:team/lib:pull",
      "client_id": "docker",
      "client_secret": {{ "source": "env", "var": "STS_CLIENT_SECRET" }}
    }}"""


def readme(out, n, url):
    """A config as a person writes one: `hit.bench.test` (the row's
    registry, whose token endpoint is the local STS) and then registries
    shaped like the README's example, every field, pretty-printed. N "max"
    writes as many as the helper's 1 MiB config limit admits, for the
    memory budget. run.sh exports STS_CLIENT_SECRET for the one exchange
    that warms the cache."""
    entries = [README_ENTRY.format(name="hit.bench.test", url=url)]
    size = len('{\n  "registries": {\n') + len(entries[0]) + len("\n  }\n}\n")
    i = 1
    while n == "max" or i < int(n):
        entry = README_ENTRY.format(name=f"r{i:05d}.bench.test", url="https://sts.example.com/oauth2/token")
        if n == "max" and size + len(entry) + 2 > MAX_CONFIG_BYTES:
            break
        entries.append(entry)
        size += len(entry) + 2
        i += 1
    text = '{\n  "registries": {\n' + ",\n".join(entries) + "\n  }\n}\n"
    json.loads(text)  # the fixture is JSON
    assert len(text.encode()) <= MAX_CONFIG_BYTES, len(text)
    write_private(out, text)


def index(template, out, n):
    """An index of N stored registries, shaped like `template` (an index
    the helper wrote itself after one real `store`): `list` reads only the
    index, never the keyring, so the keyring items behind it need not
    exist. Each entry is the template's first entry with its own name
    (about 90 bytes an entry)."""
    with open(template) as f:
        doc = json.load(f)
    entries = doc["entries"]
    if not entries:
        sys.exit("fixtures: the template index is empty")
    sample = next(iter(entries.values()))
    made = {}
    for i in range(n):
        name = f"s{i:05d}.bench.test"
        entry = dict(sample)
        entry["server_url"] = name
        entry["username"] = f"user{i}"
        made[name] = entry
    doc["entries"] = made
    # Compact, as every earlier round measured it. The helper itself
    # writes the index pretty-printed (jsonfile.rs, since the first
    # commit); `list` reads both through the same fast path
    # (bench/RESULTS.md, issue 23).
    write_private(out, json.dumps(doc, separators=(",", ":")))


def ecr(home, key_id, region, account, password):
    """The on-disk cache of amazon-ecr-credential-helper 0.6.0, holding one
    valid token for ACCOUNT in REGION.

    The entry's key is `<region>-<checksum>-<registry id>`, where the
    0.6.0 checksum is the base64 of the access key id's bytes followed by
    the MD5 of nothing (its hash object is fed nothing and the key id is
    passed as the buffer its sum is appended to). An entry is served while
    now < ExpiresAt - (ExpiresAt - RequestedAt) / 2, so a token requested
    now and expiring in 12 hours is served for 6."""
    checksum = base64.b64encode(key_id.encode() + hashlib.md5(b"").digest()).decode()
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    stamp = lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ")
    entry = {
        "AuthorizationToken": base64.b64encode(f"AWS:{password}".encode()).decode(),
        "RequestedAt": stamp(now),
        "ExpiresAt": stamp(now + datetime.timedelta(hours=12)),
        "ProxyEndpoint": f"https://{account}.dkr.ecr.{region}.amazonaws.com",
        "Service": "ecr",
    }
    cache_dir = os.path.join(home, ".ecr")
    os.makedirs(cache_dir, mode=0o700, exist_ok=True)
    doc = {"Registries": {f"{region}-{checksum}-{account}": entry}, "Version": "1.0"}
    write_private(os.path.join(cache_dir, "cache.json"), json.dumps(doc, indent=2))


TIME_FIELDS = ("obtained_at", "expires_at", "refresh_at")


def shift(directory, seconds):
    """Moves every file of a cache directory SECONDS into the past, as if
    that much time had passed since it was written: the Unix-time fields of
    each cache entry and every file's modification time (which the
    helper's pruning of lock and temporary files goes by). Entries are
    rewritten in place, so their mode and owner stay the helper's.
    Prints how many entries were shifted; run.sh checks that every entry
    was, so a change of the entry format cannot silently stop the clock."""
    shifted = 0
    for name in os.listdir(directory):
        path = os.path.join(directory, name)
        st = os.lstat(path)
        if name.endswith(".json") and not os.path.islink(path):
            try:
                with open(path, "r+b") as f:
                    entry = json.load(f)
                    if isinstance(entry, dict) and all(isinstance(entry.get(k), int) for k in TIME_FIELDS):
                        for k in TIME_FIELDS:
                            entry[k] -= seconds
                        f.seek(0)
                        f.truncate()
                        f.write(json.dumps(entry, separators=(",", ":")).encode())
                        shifted += 1
            except (OSError, ValueError):
                pass
        delta = seconds * 1_000_000_000
        os.utime(path, ns=(st.st_atime_ns - delta, st.st_mtime_ns - delta), follow_symlinks=False)
    print(shifted)


def census(directory):
    files = 0
    size = 0
    for name in os.listdir(directory):
        st = os.lstat(os.path.join(directory, name))
        files += 1
        size += st.st_size
    print(files, size)


def write_private(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def main(argv):
    commands = {
        "field": (field, [str, str]),
        "config": (config, [str, int, str]),
        "readme": (readme, [str, str, str]),
        "index": (index, [str, str, int]),
        "ecr": (ecr, [str, str, str, str, str]),
        "shift": (shift, [str, int]),
        "census": (census, [str]),
    }
    if len(argv) < 2 or argv[1] not in commands:
        sys.exit(__doc__)
    fn, types = commands[argv[1]]
    args = argv[2:]
    if len(args) != len(types):
        sys.exit(__doc__)
    fn(*(t(a) for t, a in zip(types, args)))


if __name__ == "__main__":
    main(sys.argv)
