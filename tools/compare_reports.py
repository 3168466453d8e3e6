"""Compare two folders of reports (and terminal outputs) made from the same stored runs, as
tools/render_views.sh writes them: `python tools/compare_reports.py BEFORE AFTER`.

HTML is compared as a stream of normalised tokens: tags with their attributes (pandas'
`border`, `dataframe` class and header style dropped: markup of the table generator, not of
the report), and text with whitespace collapsed. The generation time is masked. Prints a
unified diff per file that differs, and a summary line.
"""

import difflib
import re
import sys
from html.parser import HTMLParser
from pathlib import Path

TIMESTAMP = re.compile(r"Generated \d{4}-\d\d-\d\d \d\d:\d\d")
TABLE_GENERATOR_ATTRS = {("table", "border"), ("tr", "style")}


class Tokens(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tokens = []

    def handle_starttag(self, tag, attrs):
        kept = []
        for name, value in attrs:
            if (tag, name) in TABLE_GENERATOR_ATTRS:
                continue
            if name == "class":
                value = " ".join(c for c in (value or "").split() if c != "dataframe")
                if not value:
                    continue
            kept.append(f'{name}="{value}"')
        self.tokens.append(f"<{tag} {' '.join(kept)}>".replace(" >", ">"))

    def handle_endtag(self, tag):
        self.tokens.append(f"</{tag}>")

    def handle_data(self, data):
        text = " ".join(data.split())
        if text:
            self.tokens.append(text)


def normalised(path: Path) -> list[str]:
    text = TIMESTAMP.sub("Generated <time>", path.read_text(encoding="utf-8"))
    if path.suffix != ".html":
        return text.splitlines()
    parser = Tokens()
    parser.feed(text)
    return parser.tokens


def main(before: str, after: str) -> int:
    before_dir, after_dir = Path(before), Path(after)
    differing = 0
    files = sorted(p.relative_to(before_dir) for p in before_dir.rglob("*") if p.is_file())
    for relative in files:
        if relative.name.startswith("latest."):
            continue
        old, new = before_dir / relative, after_dir / relative
        if not new.is_file():
            print(f"== {relative}: missing after")
            differing += 1
            continue
        diff = list(
            difflib.unified_diff(
                normalised(old), normalised(new), str(old), str(new), lineterm="", n=2
            )
        )
        if diff:
            differing += 1
            print(f"== {relative}: {sum(line.startswith('+') for line in diff) - 1} changed")
            print("\n".join(diff))
        else:
            print(f"== {relative}: identical")
    print(f"{len(files)} files, {differing} differ")
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
