#!/usr/bin/env python3
"""Keeps the house walkable: fails when a product source file passes 1,000
lines or a function passes 150.

Counted: every `.rs` file under `crates/*/src`. A file's inline test module (a
`#[cfg(test)]` line at the start of a line followed by `mod <name> {`, to the
end of the file: test modules sit at the bottom by convention) is not counted.
Integration tests (`crates/*/tests`) are not product source. A file may go
over only if one of its first 20 lines says `size-exception:` and why; a
function only if one of the three lines above it says `long-function:` and
why, so every exception is visible where the code is read.
"""
import pathlib
import re
import sys

FILE_LIMIT = 1000
FN_LIMIT = 150
root = pathlib.Path(__file__).resolve().parent.parent


def strip(src):
    """The source with strings, chars and comments blanked (newlines kept),
    so that braces inside them do not count."""
    out=[];i=0;n=len(src)
    while i<n:
        c=src[i]
        if src.startswith('//',i):
            j=src.find('\n',i); j=n if j<0 else j; out.append(' '*(j-i)); i=j; continue
        if src.startswith('/*',i):
            j=src.find('*/',i+2); j=n if j<0 else j+2; out.append(re.sub(r'[^\n]',' ',src[i:j])); i=j; continue
        m=re.match(r'r(#*)"',src[i:i+10])
        if m and (i==0 or not (src[i-1].isalnum() or src[i-1]=='_')):
            end='"'+m.group(1); j=src.find(end,i+len(m.group(0))); j=n if j<0 else j+len(end)
            out.append(re.sub(r'[^\n]',' ',src[i:j])); i=j; continue
        if c=='"':
            j=i+1
            while j<n and src[j]!='"':
                j+= 2 if src[j]=='\\' else 1
            out.append(re.sub(r'[^\n]',' ',src[i:j+1])); i=j+1; continue
        if c=="'":
            m=re.match(r"'(\\.|[^\\'])'",src[i:i+12]) or re.match(r"'\\u\{[0-9a-fA-F]+\}'",src[i:i+12])
            if m: out.append(' '*len(m.group(0))); i+=len(m.group(0)); continue
        out.append(c); i+=1
    return ''.join(out)

def product_lines(lines):
    for n, line in enumerate(lines[:-1]):
        if line.startswith("#[cfg(test)]") and re.match(r"(pub(\(crate\))? )?mod \w+ \{", lines[n + 1]):
            return n
    return len(lines)


problems = []
for path in sorted(root.glob("crates/*/src/**/*.rs")):
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    rel = path.relative_to(root)
    counted = product_lines(lines)
    if counted > FILE_LIMIT and "size-exception:" not in "\n".join(lines[:20]):
        problems.append(f"{rel}: {counted} lines of product code (limit {FILE_LIMIT}); split it by job")
    code = strip(text)
    for m in re.finditer(r"\bfn\s+(\w+)[^;{]*\{", code):
        first = code.count("\n", 0, m.start())
        if first >= counted:
            break
        depth, j = 0, m.end() - 1
        while j < len(code):
            if code[j] == "{":
                depth += 1
            elif code[j] == "}":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        length = code.count("\n", m.start(), j) + 1
        above = "\n".join(lines[max(0, first - 3):first])
        if length > FN_LIMIT and "long-function:" not in above:
            problems.append(f"{rel}:{first + 1}: fn {m.group(1)} is {length} lines (limit {FN_LIMIT}); split it")

for problem in problems:
    print(problem)
if problems:
    sys.exit(1)
print(f"sizes: every product file within {FILE_LIMIT} lines, every function within {FN_LIMIT}")
