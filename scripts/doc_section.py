"""The benchmark scripts' one way to write their tables into a Markdown file:
the text between `<!-- NAME:begin -->` and `<!-- NAME:end -->` is replaced,
or the section is appended when the file has no such markers yet."""


def write_section(doc, name, body):
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    section = f"{begin}\n{body}{end}"
    with open(doc) as f:
        text = f.read()
    if begin in text:
        text = text[:text.index(begin)] + section + text[text.index(end) + len(end):]
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    with open(doc, "w") as f:
        f.write(text)
