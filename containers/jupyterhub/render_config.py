"""Render a TOML template with values from the environment.

Usage: python3 render_config.py TEMPLATE OUTPUT

``${NAME}`` in the template is replaced with the value of the environment
variable NAME, escaped for a TOML basic string (the template puts the quotes
around it); ``${NAME:-DEFAULT}`` uses DEFAULT when NAME is unset or empty.
``$$`` is a literal ``$``. A variable that is not set is an error
naming the template, the line and the variable, so a deploy ConfigMap key
that is missing shows up at container start, not as a confusing bridge error.
"""
import os
import re
import sys

PATTERN = re.compile(r"\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\})")


def toml_escape(value: str) -> str:
    out = []
    for ch in value:
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append("\\u%04x" % ord(ch))
        else:
            out.append(ch)
    return "".join(out)


def render(template_path: str) -> str:
    lines = []
    with open(template_path, encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, 1):
            def substitute(match, lineno=lineno):
                if match.group(1):
                    return "$"
                name = match.group(2)
                default = match.group(3)
                if default is not None and not os.environ.get(name):
                    return toml_escape(default)
                if name not in os.environ:
                    raise SystemExit(
                        f"render_config: {template_path}:{lineno}: environment variable {name} is not set "
                        "(is the key present in the deploy ConfigMap?)"
                    )
                return toml_escape(os.environ[name])

            lines.append(PATTERN.sub(substitute, line))
    return "".join(lines)


def main(argv):
    if len(argv) != 3:
        raise SystemExit("usage: render_config.py TEMPLATE OUTPUT")
    text = render(argv[1])
    tmp = argv[2] + ".tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, argv[2])


if __name__ == "__main__":
    main(sys.argv)
