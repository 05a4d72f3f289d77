"""Stack traces and framework debug pages, recognised by several independent markers each.

One sentence is not enough: versions reword titles, typography changes quotes, and a page that
quotes one marker (documentation, a blog post) is not a debug page. A fingerprint matches when
at least `need` of its markers are found in the normalised text (HTML entities decoded, curly
quotes straightened, tags kept so attribute markers still count), whatever the status code.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

SCAN_CHARS = 65536
_BREAK = re.compile(r"(?i)<br\s*/?>")
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "`": "'"})


@dataclass(frozen=True)
class Fingerprint:
    """A kind of debug output: its name and the markers of which `need` must appear."""

    name: str
    markers: tuple[re.Pattern[str], ...]
    need: int = 2

    def matches(self, text: str) -> bool:
        found = 0
        for marker in self.markers:
            if marker.search(text):
                found += 1
                if found >= self.need:
                    return True
        return False


def _fp(name: str, *patterns: str, need: int = 2) -> Fingerprint:
    return Fingerprint(name, tuple(re.compile(p, re.MULTILINE) for p in patterns), need)


FINGERPRINTS: tuple[Fingerprint, ...] = (
    _fp(
        "Django debug page",
        r"You're seeing this error because you have\s+(<code>)?\s*DEBUG\s*=\s*True",
        r"Request Method:",
        r"Request URL:",
        r"Django Version:",
        r"Exception Value:",
        r"Using the URLconf defined in",
        r"Python Executable:",
        need=3,
    ),
    _fp(
        "Werkzeug debugger",
        r"Werkzeug Debugger",
        r"__debugger__",
        r"The debugger caught an exception in your WSGI application",
        r"(?i)console locked|debugger pin",
    ),
    _fp(
        "Starlette debug page",
        r"<title>Starlette Debugger</title>",
        r"class=\"traceback-title\"",
        r"class=\"frame-filename\"",
        r"500 Server Error",
    ),
    _fp(
        "Litestar debug page",
        r"<title>Litestar exception page</title>",
        r"class=\"frame-name\"",
        r"class=\"line_no\"",
        r"</span> in <span>[\w<>]+</span> at line",
    ),
    _fp(
        "Python traceback",
        r"Traceback \(most recent call last\):",
        r"File \"[^\"\n]+\", line \d+, in [\w<>]+",
        r"^\s*[\w.]*(Error|Exception|Exit|Interrupt|Warning)\b(: |$)",
    ),
    _fp(
        "PHP error or stack trace",
        r"(Fatal error|Parse error|Warning|Notice)(</b>)?:\s+(<b>)?\s*\S",
        r"Stack trace:",
        r"#\d+ \S+\.php\(\d+\)",
        r"thrown in (<b>)?\s*\S+\.php",
        r"on line (<b>)?\d+",
        r"(?i)whoops[!,]? (there was an error|looks like something went wrong)",
        r"Symfony\\Component\\(ErrorHandler|Debug)",
        r"Illuminate\\|vendor/laravel/framework",
    ),
    _fp(
        "phpinfo page",
        r"PHP Version \d",
        r"Zend Engine",
        r"Configuration File \(php\.ini\) Path",
        r"PHP License",
        r"phpinfo\(\)",
        need=3,
    ),
    _fp(
        "Ruby on Rails error page",
        r"Action Controller: Exception caught",
        r"\S+\.rb:\d+:in ['\w]",
        r"(Application|Framework|Full) Trace",
        r"Rails\.root:",
        r"actionpack|activesupport|activerecord",
    ),
    _fp(
        "Ruby backtrace",
        r"\S+\.rb:\d+:in ['\w<]",
        r"^\s*from \S+:\d+:in ['\w<]",
        r": .* \((\w+::)*\w*(Error|Exception)\)$",
        need=2,
    ),
    _fp(
        "Node.js stack trace",
        r"^\s*\w*(Error|Exception)(: |\s*$)",
        r"^\s+at (\S+ )?\(?(/|[A-Za-z]:\\|file:|node:)[^)\n]*:\d+:\d+\)?$",
        r"(node:internal|node_modules/)",
    ),
    _fp(
        "Java stack trace",
        r"^\s*at [\w$.<>/]+\([\w$]+\.(java|kt|scala|groovy):\d+\)",
        r"^\s*(Exception in thread \"[^\"]+\" )?[\w$]+(\.[\w$]+)+(Exception|Error)(: |\s*$)",
        r"^\s*(Caused by: |\.\.\. \d+ more)",
        r"(java|javax|jakarta|org\.springframework|org\.apache)\.[\w.$]+\(",
    ),
    _fp(
        "Go panic",
        r"^panic: ",
        r"^goroutine \d+ \[[\w ]+\]:",
        r"\.go:\d+ \+0x[0-9a-f]+",
        r"^(created by |runtime/debug\.Stack)",
    ),
    _fp(
        "ASP.NET error page",
        r"Server Error in '[^']*' Application",
        r"Stack Trace:",
        r"Version Information:\s*Microsoft \.NET",
        r"(?i)exception details:",
    ),
)


def normalise(body: bytes | str) -> str:
    """Decoded, entity-unescaped text with straight quotes, capped at `SCAN_CHARS`."""
    text = body[:SCAN_CHARS].decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = _BREAK.sub("\n", text[:SCAN_CHARS])  # stacks rendered as HTML lines keep their lines
    return html.unescape(text).replace("\xa0", " ").translate(_QUOTES)


def debug_output(body: bytes | str) -> str | None:
    """The name of the debug output `body` shows (a stack trace, a debug page), or None."""
    text = normalise(body)
    for fp in FINGERPRINTS:
        if fp.matches(text):
            return fp.name
    return None
