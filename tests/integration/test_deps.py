#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""`make deps` (scripts/deps.sh) on a copy of the scripts with stand-ins for
dpkg-query, id, apt-get and npm: as a user it prints the exact apt-get command
for what is missing and exits non-zero without installing anything; as root it
installs only what is missing; a second run with everything present does
nothing and prints nothing; a changed npm lock file installs the npm packages
again."""
import os
import shutil
import stat
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SRC, Runner, scratch  # noqa: E402

BASE = scratch("test_deps")
TREE = os.path.join(BASE, "tree")
FAKE = os.path.join(BASE, "bin")
LOG = os.path.join(BASE, "calls.log")

STANDINS = {
    # Installed unless named in FAKE_MISSING.
    "dpkg-query": """#!/bin/sh
for p; do :; done
case " $FAKE_MISSING " in *" $p "*) exit 1 ;; esac
printf 'install ok installed'
""",
    "id": """#!/bin/sh
[ "$1" = "-u" ] && echo "$FAKE_UID" && exit 0
exec /usr/bin/id "$@"
""",
    "apt-get": """#!/bin/sh
echo "apt-get $*" >> "$FAKE_LOG"
""",
    "npm": """#!/bin/sh
echo "npm $* in $(basename "$PWD")" >> "$FAKE_LOG"
mkdir -p node_modules && touch node_modules/.package-lock.json
""",
}


def setup():
    os.makedirs(os.path.join(TREE, "scripts"))
    os.makedirs(os.path.join(TREE, "tests"))
    shutil.copy(os.path.join(SRC, "scripts", "deps.sh"), os.path.join(TREE, "scripts"))
    shutil.copy(os.path.join(SRC, "tests", "package-lock.json"), os.path.join(TREE, "tests"))
    os.makedirs(FAKE)
    for name, text in STANDINS.items():
        p = os.path.join(FAKE, name)
        with open(p, "w") as f:
            f.write(text)
        os.chmod(p, stat.S_IRWXU)


def deps(uid, missing=()):
    """Runs deps.sh; returns (exit code, stdout, stderr, the stand-ins' calls)."""
    if os.path.exists(LOG):
        os.unlink(LOG)
    env = dict(os.environ, PATH=FAKE + os.pathsep + os.environ.get("PATH", ""),
               FAKE_UID=str(uid), FAKE_MISSING=" ".join(missing), FAKE_LOG=LOG)
    p = subprocess.run([os.path.join(TREE, "scripts", "deps.sh")], capture_output=True,
                       text=True, env=env, timeout=60)
    calls = open(LOG).read().splitlines() if os.path.exists(LOG) else []
    return p.returncode, p.stdout, p.stderr, calls


def test_user_gets_the_exact_command():
    code, out, err, calls = deps(1000, ("sqlite3", "libwslay-dev"))
    assert code != 0, (out, err)
    assert "\n  apt-get update && apt-get install -y sqlite3 libwslay-dev\n" in "\n" + err, err
    assert calls == [], calls


def test_root_installs_only_what_is_missing():
    code, out, err, calls = deps(0, ("libwslay-dev",))
    assert code == 0, (out, err)
    assert calls[:2] == ["apt-get update -qq",
                         "apt-get install -y -qq --no-install-recommends libwslay-dev"], calls
    assert calls[2:] == ["npm ci --no-audit --no-fund --loglevel=error in tests"], calls


def test_second_run_does_nothing():
    for uid in (0, 1000):
        code, out, err, calls = deps(uid)
        assert code == 0 and calls == [] and out == "" and err == "", (uid, out, err, calls)


def test_changed_lock_reinstalls_npm_packages():
    with open(os.path.join(TREE, "tests", "package-lock.json"), "a") as f:
        f.write("\n")
    code, out, err, calls = deps(1000)
    assert code == 0 and calls == ["npm ci --no-audit --no-fund --loglevel=error in tests"], calls
    assert deps(1000)[3] == []


def main():
    setup()
    run = Runner()
    run.run_all([test_user_gets_the_exact_command, test_root_installs_only_what_is_missing,
                 test_second_run_does_nothing, test_changed_lock_reinstalls_npm_packages])
    return run.finish(base=BASE)


if __name__ == "__main__":
    sys.exit(main())
