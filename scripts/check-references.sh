#!/usr/bin/env bash
# The repository stands alone: every tracked file must make sense in a fresh
# clone on another machine. Fails (exit 1, one "file:line: why" per finding)
# when a tracked file
#   (a) points outside the repository: an absolute path under a directory
#       where other checkouts or people's files live (home, root, tmp, work,
#       srv, mnt, ...; file URLs included; not the system's own /usr, /etc,
#       /lib, /var that the Debian package names), a
#       home-relative path, or a parent-relative path that leaves the
#       repository or names nothing tracked; or
#   (b) names a document the repository does not track: a Markdown file by
#       name or path, a YAML file by path, or the target of a relative
#       Markdown link.
# A short, explicit allow-list (ALLOWED below) admits the few such paths the
# tree really uses (mktemp templates, test fixtures). Reads only `git ls-files` and the files themselves, so it
# works in a clean clone; a new file must be `git add`ed before it counts.
#
# Run: scripts/check-references.sh   (ctest: repository_stands_alone)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
if ! root=$(git -C "$here" rev-parse --show-toplevel 2>/dev/null); then
  echo "check-references: $here is not inside a git checkout (the check reads git ls-files)" >&2
  exit 1
fi

exec /usr/bin/python3 - "$root" <<'PY'
import fnmatch
import os
import posixpath
import re
import subprocess
import sys
import urllib.parse

root = sys.argv[1]
SELF = "scripts/check-references.sh"

# Paths under those roots that the tree legitimately names: (path, files it
# may appear in, why). A path ending in "/" or "-" admits everything under or after it;
# otherwise the path itself and what lies below it. Each entry is also
# allowed in this script, which has to spell it.
ALLOWED = [
    ("/tmp/tessera-", "*", "mktemp templates of scripts and tests"),
    ("/srv/t", "tests/cli/config_test.cpp", "an absolute data_dir fixture"),
    ("/tmp/x.db", "tests/cli/config_test.cpp", "an absolute store path fixture"),
]

# First components of absolute paths that lie outside any installed system:
# homes, workspaces, mounts, scratch and temporary space, where another
# checkout, a shared folder or a person's files would be. (A route such as
# /v1/sessions is none of these.) The directories of the system itself
# (/usr, /etc, /lib, /var, /run, /bin, /proc, /dev) are not in this list: the
# Debian package, its unit and its scripts name them on purpose.
ROOTS = [
    "data", "home", "media", "mnt", "nix", "opt", "private", "root", "scratch",
    "shared", "snap", "srv", "tmp", "work", "workspace", "Users", "Volumes",
]
P = r"[\w.+@%*-]"  # a character of a path component
ABSOLUTE = re.compile(r"(?<![\w.~$}/-])(/(?:%s)(?![\w.-])(?:/%s*)*)" % ("|".join(ROOTS), P))
URL_PATH = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://(/%s*(?:/%s*)*)" % (P, P))
HOME_RELATIVE = re.compile(r"(?<![\w.}$-])~(?=/)|\$\{?HOME\b")
PARENT = re.compile(
    r"(?<![\w.+@%/-])((?:\$\{\w+\}/|\$\w+/)?(?:[\w.+@%-]+/)*\.\.(?:/[\w.+@%*-]*)+)")
DOCUMENT = re.compile(r"(?<![\w.+@%/$}*<>{~-])((?:[\w.+@%-]+/)*[\w.+@%-]+\.(md|yaml|yml))(?![\w-]|\.\w)")
MD_LINK = re.compile(r"\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+(?:\"[^\"]*\"|'[^']*'))?\s*\)")
MD_REFERENCE = re.compile(r"^\s{0,3}\[[^\]\n]+\]:\s*<?(\S+?)>?(?:\s|$)")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
HOSTNAME = re.compile(r"^[\w-]+(?:\.[\w-]+)+$")
ROOT_VARIABLES = {"PROJECT_SOURCE_DIR", "CMAKE_SOURCE_DIR"}
DIR_VARIABLES = {"CMAKE_CURRENT_SOURCE_DIR", "CMAKE_CURRENT_LIST_DIR"}

listing = subprocess.run(["git", "-C", root, "ls-files", "-z"], capture_output=True, check=True)
files = [f for f in listing.stdout.decode("utf-8", "surrogateescape").split("\0") if f]
tracked = set(files)
tracked_dirs = {"."}
suffixes = set()
for f in files:
    parts = f.split("/")
    for i in range(1, len(parts)):
        tracked_dirs.add("/".join(parts[:i]))
    for i in range(len(parts)):
        suffixes.add("/".join(parts[i:]))

findings = []


def report(path, line, why, text):
    findings.append(f"{path}:{line}: {why}: {text.strip()[:160]}")


def allowed(path, found):
    for prefix, scope, _why in ALLOWED:
        if found != SELF and not fnmatch.fnmatch(found, scope):
            continue
        under = prefix if prefix.endswith(("/", "-")) else prefix + "/"
        if path == prefix or path.startswith(under):
            return True
    return False


def unpunctuated(token):
    # A sentence may end right after a path: its full stop is not part of it.
    if token[-1:] in ",;:" or (token.endswith(".") and not token.endswith("..")):
        return token[:-1]
    return token


def inside(rel):
    return rel != ".." and not rel.startswith("../") and not rel.startswith("/")


def is_tracked(rel):
    return rel in tracked or rel in tracked_dirs


def check_line(f, n, line, is_markdown):
    base = posixpath.dirname(f)

    # (a) absolute paths and file URLs.
    if posixpath.basename(f) not in (".gitignore", ".gitattributes"):  # "/x" there is the repo's
        for m in ABSOLUTE.finditer(line):
            path = unpunctuated(m.group(1))
            if not allowed(path, f):
                report(f, n, f"absolute path outside the repository ({path})", line)
        for m in URL_PATH.finditer(line):
            path = unpunctuated(m.group(1))
            first = path.split("/")[1] if path.count("/") >= 1 else ""
            if first in ROOTS and not allowed(path, f):
                report(f, n, f"file URL outside the repository ({path})", line)
    if HOME_RELATIVE.search(line):
        report(f, n, "home-relative path (outside the repository)", line)

    # (a) parent-relative paths: fine only when they land on something tracked.
    for m in PARENT.finditer(line):
        shown = token = unpunctuated(m.group(1))
        start = base
        var = re.match(r"^\$\{?(\w+)\}?/", token)
        if var:
            token = token[var.end():]
            if var.group(1) in ROOT_VARIABLES:
                start = ""
            elif var.group(1) not in DIR_VARIABLES:
                report(f, n, f"parent-relative path from ${var.group(1)}, which this check "
                       "cannot place inside the repository", line)
                continue
        rel = posixpath.normpath(posixpath.join(start, token.rstrip("/")) or ".")
        if not inside(rel):
            report(f, n, f"path leaves the repository ({shown})", line)
        elif "*" not in rel and not is_tracked(rel):
            report(f, n, f"parent-relative path to nothing tracked ({shown})", line)

    # (b) documents named by path or by bare name.
    for m in DOCUMENT.finditer(line):
        token, ext = m.group(1), m.group(2)
        if ext != "md" and "/" not in token:
            continue  # a bare YAML name (e.g. an example config) is not a reference
        first = token.split("/")[0]
        if "/" in token and HOSTNAME.match(first) and first not in tracked_dirs:
            continue  # host/path of a URL written without its scheme
        rel = posixpath.normpath(token)
        candidates = [rel, posixpath.normpath(posixpath.join(base, token))]
        if any(inside(c) and c in tracked for c in candidates):
            continue
        if ".." not in rel.split("/") and rel in suffixes:
            continue
        report(f, n, f"names a document that is not tracked ({token})", line)

    # (b) relative Markdown link targets.
    if is_markdown:
        prose = re.sub(r"(`+)(?:(?!\1).)+?\1", "", line)
        targets = [m.group(1) for m in MD_LINK.finditer(prose)]
        ref = MD_REFERENCE.match(prose)
        if ref:
            targets.append(ref.group(1))
        for target in targets:
            if SCHEME.match(target) or target.startswith("#"):
                continue
            path = urllib.parse.unquote(target.split("#", 1)[0].split("?", 1)[0])
            if not path:
                continue
            start = "" if path.startswith("/") else base
            rel = posixpath.normpath(posixpath.join(start, path.lstrip("/")) or ".")
            if not inside(rel):
                report(f, n, f"link leaves the repository ({target})", line)
            elif not is_tracked(rel):
                report(f, n, f"link to a file that is not tracked ({target})", line)


for f in files:
    full = os.path.join(root, f)
    if os.path.islink(full):
        target = os.readlink(full)
        rel = posixpath.normpath(posixpath.join(posixpath.dirname(f), target))
        if target.startswith("/") or not inside(rel):
            report(f, 0, "symbolic link out of the repository", target)
        continue
    if not os.path.isfile(full):
        continue  # deleted in the work tree; nothing to read
    with open(full, "rb") as fh:
        data = fh.read()
    if b"\0" in data:
        continue  # binary
    is_markdown = f.endswith((".md", ".markdown", ".yaml", ".yml"))
    fenced = False
    for n, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
        if is_markdown and re.match(r"^\s*(```|~~~)", line):
            fenced = not fenced
            check_line(f, n, line, False)
            continue
        check_line(f, n, line, is_markdown and not fenced)

if findings:
    print("\n".join(findings), flush=True)
    print(f"check-references: {len(findings)} reference(s) to something the repository does not "
          "hold; the repository must stand alone", file=sys.stderr)
    sys.exit(1)
print(f"check-references: {len(files)} tracked files, every reference stays inside the repository")
PY
