#!/usr/bin/env python3
"""Regenerates the configuration reference from dpsd's directive table.

Usage: gen-config-docs.py PATH/TO/dpsd. Writes docs/configuration.md and the
text between README.md's config-reference markers; tests/unit/test_config.c
fails when either drifts from `dpsd --config-reference`.
"""
import os
import subprocess
import sys

BEGIN = "<!-- config-reference:begin -->\n"
END = "<!-- config-reference:end -->"


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ref = subprocess.run([sys.argv[1], "--config-reference"], check=True,
                         capture_output=True, text=True).stdout
    with open(os.path.join(root, "docs", "configuration.md"), "w") as f:
        f.write(ref)
    readme_path = os.path.join(root, "README.md")
    with open(readme_path) as f:
        readme = f.read()
    head, rest = readme.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    with open(readme_path, "w") as f:
        f.write(head + BEGIN + ref + END + tail)


if __name__ == "__main__":
    main()
