#!/usr/bin/python3
"""The `code` enum of docs/openapi.yaml's Problem schema is exactly the set of
ErrorCode names (to_string of every kAllErrorCodes entry, as printed by the
print_error_codes helper), in the same order: a code added to the library
without the spec, or a spec code the library does not have, fails.

Run: /usr/bin/python3 check_problem_codes.py PRINT_ERROR_CODES OPENAPI_YAML
"""

import subprocess
import sys


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: check_problem_codes.py PRINT_ERROR_CODES OPENAPI_YAML")
    helper, spec_path = sys.argv[1:]
    import yaml  # python3-yaml, as the route-shape test uses

    names = subprocess.run([helper], check=True, capture_output=True, text=True,
                           timeout=30).stdout.split()
    with open(spec_path) as f:
        spec = yaml.safe_load(f)
    documented = spec["components"]["schemas"]["Problem"]["properties"]["code"]["enum"]

    problems = []
    if not names:
        problems.append("print_error_codes printed no code")
    for name in names:
        if name not in documented:
            problems.append(f"ErrorCode {name!r} is missing from the Problem code enum")
    for name in documented:
        if name not in names:
            problems.append(f"Problem code enum has {name!r}, which is no ErrorCode")
    if len(set(documented)) != len(documented):
        problems.append("the Problem code enum lists a code twice")
    if not problems and documented != names:
        problems.append("the Problem code enum is not in ErrorCode's declaration order")
    for p in problems:
        print(f"{spec_path}: {p}", file=sys.stderr)
    if problems:
        sys.exit(1)
    print(f"{len(names)} codes: the Problem code enum is the ErrorCode names")


if __name__ == "__main__":
    main()
