#!/usr/bin/python3
"""Writes tessera(1) in troff from the command's own --help, so the manual
cannot drift from the binary: every subcommand (recursively), its options,
and the Settings group with defaults and TESSERA_* variables.

  make-manpage.py PATH/TO/tessera VERSION > tessera.1
"""
import datetime
import re
import subprocess
import sys

ITEM = re.compile(r"^  (\S.*?)(?:\s{2,}(\S.*))?$")


def help_of(binary, words):
    out = subprocess.run([binary, *words, "--help"], capture_output=True, text=True, check=True)
    return out.stdout


def sections(text):
    """(preamble lines, {heading: [(term, description)]}, epilogue lines)"""
    pre, groups, epi = [], {}, []
    current = None
    for line in text.splitlines():
        if re.match(r"^[A-Z][A-Za-z ]*:$", line):
            current = line[:-1]
            groups[current] = []
            continue
        if current is None:
            pre.append(line)
            continue
        if line.startswith("  ") and not line.startswith(" " * 30):
            m = ITEM.match(line)
            groups[current].append([m.group(1).strip(), (m.group(2) or "").strip()])
        elif line.startswith(" " * 30) and groups[current]:
            desc = groups[current][-1][1]
            groups[current][-1][1] = (desc + " " + line.strip()).strip()
        elif line.strip():
            current = "__epilogue__"
            groups.setdefault(current, [])
            epi.append(line)
    groups.pop("__epilogue__", None)
    return pre, groups, epi


def esc(s):
    s = s.replace("\\", "\\e").replace("-", "\\-")
    return "\\&" + s if s.startswith((".", "'")) else s


def items(rows):
    out = []
    for term, desc in rows:
        out += [".TP", "\\fB" + esc(term) + "\\fR", esc(desc)]
    return out


def subcommands(binary, words, groups):
    out = []
    for name, _ in groups.get("Subcommands", []):
        path = [*words, name]
        pre, sub_groups, _ = sections(help_of(binary, path))
        desc = " ".join(line.strip() for line in pre if line.strip() and not line.startswith("Usage:"))
        usage = next((line[len("Usage: "):] for line in pre if line.startswith("Usage:")), "")
        out += [".SS " + esc(" ".join(path)), esc(desc)]
        if usage:
            out += [".PP", "Usage: \\fB" + esc(usage) + "\\fR"]
        options = [r for r in sub_groups.get("Options", []) if not r[0].startswith("-h,")]
        positionals = sub_groups.get("Positionals", [])
        out += items(positionals + options)
        out += subcommands(binary, path, sub_groups)
    return out


def main():
    binary, version = sys.argv[1], sys.argv[2]
    pre, groups, epi = sections(help_of(binary, []))
    summary = " ".join(line.strip() for line in pre if line.strip() and not line.startswith("Usage:"))
    date = datetime.date.fromtimestamp(int(subprocess.run(
        ["git", "log", "-1", "--format=%ct"], capture_output=True, text=True).stdout.strip() or 0) or
        86400).isoformat()
    lines = [
        '.TH TESSERA 1 "%s" "tessera %s" "User Commands"' % (date, version),
        ".SH NAME",
        "tessera \\- session lifecycle engine: the authority server and its operator commands",
        ".SH SYNOPSIS",
        "\\fBtessera\\fR [\\fISETTINGS\\fR] \\fISUBCOMMAND\\fR [\\fIARGS\\fR]",
        ".SH DESCRIPTION",
        esc(summary),
        ".SH SUBCOMMANDS",
    ]
    lines += subcommands(binary, [], groups)
    lines += [".SH SETTINGS",
              "Each setting is a flag, a \\fBTESSERA_\\fIKEY\\fR environment variable and a "
              "\\fIkey\\fR = \\fIvalue\\fR line of the \\fB\\-\\-config\\fR file; "
              "the flag wins over the variable, the variable over the file."]
    lines += items(groups.get("Settings", []))
    lines += [".SH OPTIONS"] + items(groups.get("Options", []))
    if epi:
        lines += [".SH EXIT STATUS AND ERRORS", esc(" ".join(line.strip() for line in epi))]
    lines += [".SH FILES",
              ".TP", "\\fI/etc/tessera/tessera.conf\\fR", "settings of the packaged service",
              ".TP", "\\fI/var/lib/tessera\\fR", "its keys, SQLite file and audit log",
              ".SH SEE ALSO", "The documentation in /usr/share/doc/tessera."]
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
