"""The code-writing task set: functions to implement from a signature and a docstring.

Each problem's `prompt` is what the model sees: the signature and docstring, no body. Its
`body` completes the prompt into the reference solution; `tests` are the hidden tests, Python
expressions that must each be true (`raises(Error, f, *args)` checks an exception). They only
test what the docstring states, often the cases its examples do not show.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PROBLEMS", "Problem"]


@dataclass(frozen=True)
class Problem:
    id: str
    entry: str
    prompt: str
    body: str
    tests: tuple[str, ...]

    @property
    def reference(self) -> str:
        return self.prompt.rstrip() + "\n" + self.body.strip("\n") + "\n"


PROBLEMS = [
    Problem(
        "compress-ranges", "compress_ranges",
        '''
def compress_ranges(numbers: list[int]) -> str:
    """Describe a collection of integers as comma-separated runs.

    The numbers are sorted and duplicates dropped first. A run of two or more consecutive
    integers is written "start-end"; a number without neighbours is written alone. Negative
    numbers keep their minus sign, so the run from -3 to -1 is "-3--1". An empty input gives "".

    >>> compress_ranges([5, 1, 2, 3, 7, 8, 3])
    '1-3,5,7-8'
    """
''', '''
    values = sorted(set(numbers))
    parts, i = [], 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and values[j + 1] == values[j] + 1:
            j += 1
        parts.append(str(values[i]) if i == j else f"{values[i]}-{values[j]}")
        i = j + 1
    return ",".join(parts)
''',
        (
            'compress_ranges([]) == ""',
            'compress_ranges([4]) == "4"',
            'compress_ranges([2, 1]) == "1-2"',
            'compress_ranges([9, 9, 10, 12]) == "9-10,12"',
            'compress_ranges([-3, -2, -1, 1]) == "-3--1,1"',
            'compress_ranges([0, 2, 4]) == "0,2,4"',
            'compress_ranges(list(range(100))) == "0-99"',
        ),
    ),
    Problem(
        "roman-to-int", "roman_to_int",
        '''
def roman_to_int(numeral: str) -> int:
    """The value of a Roman numeral in standard form, from 1 to 3999.

    Letters: I=1, V=5, X=10, L=50, C=100, D=500, M=1000; the subtractive pairs IV, IX, XL, XC,
    CD and CM are the only places where a smaller letter precedes a larger one. Lower-case
    letters are accepted. Raise ValueError for an empty string, any other character, or a
    numeral not in standard form (the form that writing its value back produces), such as
    "IIII", "VX", "IC" or "MMMM".

    >>> roman_to_int("MCMXCIV")
    1994
    """
''', '''
    values = [(1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"), (90, "XC"),
              (50, "L"), (40, "XL"), (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I")]
    text = numeral.upper()
    if not text or set(text) - set("IVXLCDM"):
        raise ValueError(numeral)
    total, i = 0, 0
    for value, letters in values:
        while text.startswith(letters, i):
            total, i = total + value, i + len(letters)
    written, rest = "", total
    for value, letters in values:
        while rest >= value:
            written, rest = written + letters, rest - value
    if i != len(text) or written != text or not 1 <= total <= 3999:
        raise ValueError(numeral)
    return total
''',
        (
            'roman_to_int("XIV") == 14',
            'roman_to_int("mmxxvi") == 2026',
            'roman_to_int("MMMCMXCIX") == 3999',
            'roman_to_int("XL") == 40',
            'raises(ValueError, roman_to_int, "")',
            'raises(ValueError, roman_to_int, "IIII")',
            'raises(ValueError, roman_to_int, "IC")',
            'raises(ValueError, roman_to_int, "VX")',
            'raises(ValueError, roman_to_int, "MMMM")',
            'raises(ValueError, roman_to_int, "XIQ")',
        ),
    ),
    Problem(
        "parse-duration", "parse_duration",
        '''
def parse_duration(text: str) -> int:
    """The number of seconds in a duration such as "1h30m", "2d 4h", "90s" or "1h 0m 5s".

    A duration is one or more parts, each a non-negative whole number directly followed by a
    unit: d (days), h (hours), m (minutes) or s (seconds), in upper or lower case. Parts may be
    separated by spaces and come in any order, but each unit may appear only once. Raise
    ValueError for an empty string, a number without a unit, a unit without a number, an
    unknown unit or a repeated unit.

    >>> parse_duration("1h30m")
    5400
    """
''', '''
    import re

    seconds = {"d": 86400, "h": 3600, "m": 60, "s": 1}
    compact = text.replace(" ", "").lower()
    parts = re.findall(r"(\\d+)([a-z])", compact)
    units = [unit for _, unit in parts]
    if not parts or "".join(n + u for n, u in parts) != compact:
        raise ValueError(text)
    if len(set(units)) != len(units) or set(units) - set(seconds):
        raise ValueError(text)
    return sum(int(n) * seconds[u] for n, u in parts)
''',
        (
            'parse_duration("45s") == 45',
            'parse_duration("2d 4h") == 187200',
            'parse_duration("1H 0m 5S") == 3605',
            'parse_duration("30m1h") == 5400',
            'parse_duration("0s") == 0',
            'raises(ValueError, parse_duration, "")',
            'raises(ValueError, parse_duration, "10")',
            'raises(ValueError, parse_duration, "5w")',
            'raises(ValueError, parse_duration, "1h2h")',
            'raises(ValueError, parse_duration, "h")',
        ),
    ),
    Problem(
        "camel-to-snake", "camel_to_snake",
        '''
def camel_to_snake(name: str) -> str:
    """Convert a camelCase or PascalCase identifier to snake_case.

    A new word starts at an upper-case letter that follows a lower-case letter or a digit, and
    at the last capital of a run of capitals when a lower-case letter follows it (so acronyms
    stay together). Digits stay with the word before them. The result is lower case; a name
    already in snake_case comes back unchanged.

    >>> camel_to_snake("parseHTTPResponse2Json")
    'parse_http_response2_json'
    """
''', '''
    import re

    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()
''',
        (
            'camel_to_snake("HTTPServerError") == "http_server_error"',
            'camel_to_snake("getURL") == "get_url"',
            'camel_to_snake("simple") == "simple"',
            'camel_to_snake("already_snake") == "already_snake"',
            'camel_to_snake("ABC") == "abc"',
            'camel_to_snake("userID2Name") == "user_id2_name"',
            'camel_to_snake("Version2Beta") == "version2_beta"',
        ),
    ),
    Problem(
        "merge-intervals", "merge_intervals",
        '''
def merge_intervals(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Merge closed intervals (start, end), start <= end, that overlap or touch.

    Intervals touch when one ends where the next starts: (1, 3) and (3, 5) merge into (1, 5),
    but (1, 3) and (4, 5) stay apart. The input may be in any order; the result is sorted by
    start and made of tuples. An empty input gives [].

    >>> merge_intervals([(8, 10), (1, 3), (2, 6)])
    [(1, 6), (8, 10)]
    """
''', '''
    merged: list[tuple[int, int]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged
''',
        (
            'merge_intervals([]) == []',
            'merge_intervals([(1, 3), (3, 5)]) == [(1, 5)]',
            'merge_intervals([(4, 5), (1, 3)]) == [(1, 3), (4, 5)]',
            'merge_intervals([(1, 10), (2, 3)]) == [(1, 10)]',
            'merge_intervals([(5, 5), (5, 5)]) == [(5, 5)]',
            'merge_intervals([(7, 9), (0, 1), (2, 4), (3, 7)]) == [(0, 1), (2, 9)]',
            'all(type(x) is tuple for x in merge_intervals([[1, 2], [2, 3]]))',
        ),
    ),
    Problem(
        "wrap-text", "wrap_text",
        '''
def wrap_text(text: str, width: int) -> list[str]:
    """Split text into lines of at most `width` characters, filling each line greedily.

    Words are separated by any whitespace; a line joins its words with single spaces. A word
    that fits on the current line goes there, else it starts a new line. A word longer than
    `width` starts a new line and is cut into pieces of `width` characters, each on its own
    line, except that its last piece starts a line that later words may join. No text gives
    []. Raise ValueError if width is less than 1.

    >>> wrap_text("the quick brown fox", 10)
    ['the quick', 'brown fox']
    >>> wrap_text("a abcdefgh b", 3)
    ['a', 'abc', 'def', 'gh', 'b']
    """
''', '''
    if width < 1:
        raise ValueError(width)
    lines: list[str] = []
    line = ""
    for word in text.split():
        while len(word) > width:
            if line:
                lines.append(line)
                line = ""
            lines.append(word[:width])
            word = word[width:]
        if not line:
            line = word
        elif len(line) + 1 + len(word) <= width:
            line += " " + word
        else:
            lines.append(line)
            line = word
    if line:
        lines.append(line)
    return lines
''',
        (
            'wrap_text("", 5) == []',
            'wrap_text("   ", 5) == []',
            'wrap_text("one two three", 7) == ["one two", "three"]',
            'wrap_text("a  b\\tc\\nd", 3) == ["a b", "c d"]',
            'wrap_text("abcdefg xy", 3) == ["abc", "def", "g", "xy"]',
            'wrap_text("ab abcdef", 3) == ["ab", "abc", "def"]',
            'wrap_text("exactly", 7) == ["exactly"]',
            'raises(ValueError, wrap_text, "x", 0)',
        ),
    ),
    Problem(
        "compare-versions", "compare_versions",
        '''
def compare_versions(a: str, b: str) -> int:
    """Compare two version strings: -1 if a < b, 0 if they are equal, 1 if a > b.

    A version is dot-separated non-negative integers, compared number by number ("1.10" is
    greater than "1.9"); missing trailing numbers count as 0 ("1.0" equals "1"). It may end
    with a pre-release tag after a hyphen ("2.0.0-rc1"): a version with a tag is lower than the
    same version without one, and two tags compare as strings ("1.0-alpha" < "1.0-beta").

    >>> compare_versions("1.2.10", "1.2.9")
    1
    """
''', '''
    def key(version: str) -> tuple[list[int], int, str]:
        number, _, tag = version.partition("-")
        parts = [int(p) for p in number.split(".")]
        while parts and parts[-1] == 0:
            parts.pop()
        return parts, 0 if tag else 1, tag

    ka, kb = key(a), key(b)
    return (ka > kb) - (ka < kb)
''',
        (
            'compare_versions("1.0", "1") == 0',
            'compare_versions("1.0.0-rc1", "1.0.0") == -1',
            'compare_versions("2.0", "10.0") == -1',
            'compare_versions("1.0-beta", "1.0-alpha") == 1',
            'compare_versions("1.0-rc1", "1-rc1") == 0',
            'compare_versions("0.0.1", "0.0.1") == 0',
            'compare_versions("1.2", "1.1.9") == 1',
            'compare_versions("3", "3.0.0.1") == -1',
        ),
    ),
    Problem(
        "luhn", "luhn_valid",
        '''
def luhn_valid(number: str) -> bool:
    """Whether a card number passes the Luhn checksum.

    Spaces are ignored. What remains must be at least two characters long and all digits 0-9;
    otherwise the answer is False. Starting from the rightmost digit, double every second digit
    (subtracting 9 when the double exceeds 9) and add up all the digits: the number is valid
    when the sum is a multiple of 10.

    >>> luhn_valid("4539 3195 0343 6467")
    True
    """
''', '''
    digits = number.replace(" ", "")
    if len(digits) < 2 or any(c not in "0123456789" for c in digits):
        return False
    total = 0
    for i, c in enumerate(reversed(digits)):
        d = int(c) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0
''',
        (
            'luhn_valid("8273 1232 7352 0569") is False',
            'luhn_valid("0") is False',
            'luhn_valid(" 0 0 ") is True',
            'luhn_valid("059") is True',
            'luhn_valid("091") is True',
            'luhn_valid("055a 444 285") is False',
            'luhn_valid("4539-3195-0343-6467") is False',
            'luhn_valid("79927398713") is True',
        ),
    ),
    Problem(
        "to-base", "to_base",
        '''
def to_base(n: int, base: int) -> str:
    """Write the integer n in a base from 2 to 36, with digits 0-9 then lower-case a-z.

    Negative numbers get a leading "-", zero is "0". Raise ValueError for a base outside 2..36.

    >>> to_base(255, 16)
    'ff'
    """
''', '''
    if not 2 <= base <= 36:
        raise ValueError(base)
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    sign, n = ("-", -n) if n < 0 else ("", n)
    out = ""
    while True:
        n, r = divmod(n, base)
        out = digits[r] + out
        if n == 0:
            return sign + out
''',
        (
            'to_base(0, 2) == "0"',
            'to_base(-255, 16) == "-ff"',
            'to_base(35, 36) == "z"',
            'to_base(36, 36) == "10"',
            'to_base(5, 2) == "101"',
            'to_base(10**20, 36) == "l3r41ifs0q5ts"',
            'raises(ValueError, to_base, 5, 1)',
            'raises(ValueError, to_base, 5, 37)',
        ),
    ),
    Problem(
        "evaluate", "evaluate",
        '''
def evaluate(expression: str) -> int:
    """Evaluate an integer arithmetic expression.

    It is made of non-negative integer literals, the operators + - * /, parentheses, unary
    minus (as in "-(2+3)" or "4*-2") and spaces anywhere between tokens. * and / bind tighter
    than + and -; operators of equal precedence apply left to right. / is integer division
    rounding toward zero: 7/2 is 3 and -7/2 is -3. Raise ZeroDivisionError when dividing by
    zero and ValueError for a malformed expression.

    >>> evaluate("2 + 3 * (4 - 1)")
    11
    """
''', '''
    import re

    tokens = re.findall(r"\\d+|[-+*/()]|\\S", expression)
    pos = 0

    def peek() -> str:
        return tokens[pos] if pos < len(tokens) else ""

    def take() -> str:
        nonlocal pos
        pos += 1
        return tokens[pos - 1]

    def atom() -> int:
        token = take() if peek() else ""
        if token == "-":
            return -atom()
        if token == "(":
            value = expr()
            if (take() if peek() else "") != ")":
                raise ValueError(expression)
            return value
        if token.isdigit():
            return int(token)
        raise ValueError(expression)

    def term() -> int:
        value = atom()
        while peek() in ("*", "/"):
            op, right = take(), atom()
            if op == "*":
                value *= right
            else:
                quotient = abs(value) // abs(right)
                value = quotient if (value >= 0) == (right > 0) else -quotient
        return value

    def expr() -> int:
        value = term()
        while peek() in ("+", "-"):
            value = value + term() if take() == "+" else value - term()
        return value

    result = expr()
    if pos != len(tokens):
        raise ValueError(expression)
    return result
''',
        (
            'evaluate("7/2") == 3',
            'evaluate("-7/2") == -3',
            'evaluate("7 / -2") == -3',
            'evaluate("10-4-3") == 3',
            'evaluate("2*-(3+1)") == -8',
            'evaluate("100/10/5") == 2',
            'evaluate("((1))") == 1',
            'raises(ZeroDivisionError, evaluate, "1/0")',
            'raises(ValueError, evaluate, "2+")',
            'raises(ValueError, evaluate, "(1")',
            'raises(ValueError, evaluate, "1 2")',
        ),
    ),
    Problem(
        "parse-csv-line", "parse_csv_line",
        '''
def parse_csv_line(line: str) -> list[str]:
    """Split one line of CSV into its fields.

    Fields are separated by commas. A field that starts with a double quote is quoted: it ends
    at the next lone quote, commas inside it are literal and a doubled quote "" stands for one
    quote character. A quote anywhere else is an ordinary character. Spaces are kept as they
    are. An empty line is one empty field. Raise ValueError for a quoted field that is never
    closed.

    >>> parse_csv_line('a,"b,c",,"x""y"')
    ['a', 'b,c', '', 'x"y']
    """
''', '''
    fields, i = [], 0
    while True:
        if line.startswith('"', i):
            value, i = "", i + 1
            while True:
                end = line.find('"', i)
                if end < 0:
                    raise ValueError(line)
                value += line[i:end]
                if line.startswith('""', end):
                    value, i = value + '"', end + 2
                else:
                    i = end + 1
                    break
            comma = line.find(",", i)
            stop = len(line) if comma < 0 else comma
            fields.append(value + line[i:stop])
        else:
            comma = line.find(",", i)
            stop = len(line) if comma < 0 else comma
            fields.append(line[i:stop])
        if stop == len(line):
            return fields
        i = stop + 1
''',
        (
            'parse_csv_line("") == [""]',
            'parse_csv_line("a,b") == ["a", "b"]',
            'parse_csv_line(",") == ["", ""]',
            """parse_csv_line('x, "y"') == ['x', ' "y"']""",
            """parse_csv_line('a"b,c') == ['a"b', 'c']""",
            """parse_csv_line('"",x') == ['', 'x']""",
            """parse_csv_line('"a,b",,') == ['a,b', '', '']""",
            """raises(ValueError, parse_csv_line, '"abc')""",
        ),
    ),
    Problem(
        "number-to-words", "number_to_words",
        '''
def number_to_words(n: int) -> str:
    """Spell out an integer from 0 to 999,999 in English, in lower case.

    Tens and units are joined by a hyphen ("forty-two"); "hundred" and "thousand" follow their
    count ("three hundred"); there is no "and"; words are separated by single spaces and zero
    parts are left out ("one thousand five"). Raise ValueError outside 0 to 999,999.

    >>> number_to_words(123405)
    'one hundred twenty-three thousand four hundred five'
    """
''', '''
    if not 0 <= n <= 999_999:
        raise ValueError(n)
    ones = ("zero one two three four five six seven eight nine ten eleven twelve thirteen "
            "fourteen fifteen sixteen seventeen eighteen nineteen").split()
    tens = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()

    def below_thousand(k: int) -> list[str]:
        words = [ones[k // 100], "hundred"] if k >= 100 else []
        k %= 100
        if k >= 20:
            words.append(tens[k // 10] + (f"-{ones[k % 10]}" if k % 10 else ""))
        elif k:
            words.append(ones[k])
        return words

    if n == 0:
        return "zero"
    words = below_thousand(n // 1000) + ["thousand"] if n >= 1000 else []
    return " ".join(words + below_thousand(n % 1000))
''',
        (
            'number_to_words(0) == "zero"',
            'number_to_words(13) == "thirteen"',
            'number_to_words(40) == "forty"',
            'number_to_words(100) == "one hundred"',
            'number_to_words(1000) == "one thousand"',
            'number_to_words(1010) == "one thousand ten"',
            'number_to_words(70000) == "seventy thousand"',
            'number_to_words(999999) == "nine hundred ninety-nine thousand nine hundred ninety-nine"',
            'raises(ValueError, number_to_words, -1)',
            'raises(ValueError, number_to_words, 1000000)',
        ),
    ),
    Problem(
        "business-days", "business_days",
        '''
def business_days(start: str, end: str) -> int:
    """The number of weekdays (Monday to Friday) from date `start` up to but not including
    date `end`, both written YYYY-MM-DD. The answer is 0 when end is on or before start.

    >>> business_days("2026-03-02", "2026-03-09")
    5
    """
''', '''
    import datetime

    day, stop = datetime.date.fromisoformat(start), datetime.date.fromisoformat(end)
    count = 0
    while day < stop:
        count += day.weekday() < 5
        day += datetime.timedelta(days=1)
    return count
''',
        (
            'business_days("2026-03-06", "2026-03-09") == 1',
            'business_days("2026-03-07", "2026-03-09") == 0',
            'business_days("2026-03-09", "2026-03-09") == 0',
            'business_days("2026-03-09", "2026-03-02") == 0',
            'business_days("2026-01-01", "2027-01-01") == 261',
            'business_days("2028-02-28", "2028-03-02") == 3',
        ),
    ),
    Problem(
        "flatten-dict", "flatten_dict",
        '''
def flatten_dict(data: dict, sep: str = ".") -> dict:
    """Flatten nested dictionaries into one level, joining keys with `sep`.

    {"a": {"b": 1}} becomes {"a.b": 1}. Keys become strings. An empty nested dict stays as the
    value {} under its joined key. Values that are not dicts (lists included) are kept as they
    are. The keys come out in the input's order, depth first.

    >>> flatten_dict({"a": {"b": 1, "c": {"d": 2}}, "e": 3})
    {'a.b': 1, 'a.c.d': 2, 'e': 3}
    """
''', '''
    flat: dict = {}
    for key, value in data.items():
        if isinstance(value, dict) and value:
            for inner, item in flatten_dict(value, sep).items():
                flat[f"{key}{sep}{inner}"] = item
        else:
            flat[str(key)] = value
    return flat
''',
        (
            'flatten_dict({}) == {}',
            'flatten_dict({"a": {}}) == {"a": {}}',
            'flatten_dict({"a": {"b": {"c": 1}}}, sep="/") == {"a/b/c": 1}',
            'flatten_dict({1: {2: "x"}}) == {"1.2": "x"}',
            'flatten_dict({"a": [1, {"b": 2}]}) == {"a": [1, {"b": 2}]}',
            'list(flatten_dict({"z": 1, "a": {"y": 2, "b": 3}, "m": 4})) == ["z", "a.y", "a.b", "m"]',
        ),
    ),
    Problem(
        "spiral-order", "spiral_order",
        '''
def spiral_order(matrix: list[list[int]]) -> list[int]:
    """The elements of a rectangular matrix in clockwise spiral order, starting at the top-left
    corner and going right first. An empty matrix, or one whose rows are empty, gives [].

    >>> spiral_order([[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    [1, 2, 3, 6, 9, 8, 7, 4, 5]
    """
''', '''
    rows = [list(row) for row in matrix if row]
    out: list[int] = []
    while rows:
        out += rows.pop(0)
        rows = [list(row) for row in zip(*rows)][::-1]
    return out
''',
        (
            'spiral_order([]) == []',
            'spiral_order([[], []]) == []',
            'spiral_order([[7]]) == [7]',
            'spiral_order([[1, 2, 3]]) == [1, 2, 3]',
            'spiral_order([[1], [2], [3]]) == [1, 2, 3]',
            'spiral_order([[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]])'
            ' == [1, 2, 3, 4, 8, 12, 11, 10, 9, 5, 6, 7]',
            'spiral_order([[1, 2], [3, 4], [5, 6], [7, 8]]) == [1, 2, 4, 6, 8, 7, 5, 3]',
        ),
    ),
    Problem(
        "top-words", "top_words",
        '''
def top_words(text: str, k: int) -> list[tuple[str, int]]:
    """The k most frequent words of a text, with their counts.

    The text is lower-cased; words are then the longest runs of the letters a-z and the
    apostrophe, and every other character separates words. Order by count, highest first, then
    alphabetically. With fewer than k distinct words, all of them are returned.

    >>> top_words("the cat and the hat and THE bat", 2)
    [('the', 3), ('and', 2)]
    """
''', '''
    import re
    from collections import Counter

    counts = Counter(re.findall(r"[a-z']+", text.lower()))
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:k]
''',
        (
            'top_words("", 3) == []',
            'top_words("b a c", 2) == [("a", 1), ("b", 1)]',
            """top_words("Don't stop, don't!", 1) == [("don't", 2)]""",
            'top_words("abc123def abc", 5) == [("abc", 2), ("def", 1)]',
            'top_words("x y", 0) == []',
            'top_words("café cafe caf", 1) == [("caf", 2)]',
        ),
    ),
    Problem(
        "valid-ipv4", "valid_ipv4",
        '''
def valid_ipv4(address: str) -> bool:
    """Whether a string is a dotted-decimal IPv4 address: exactly four parts separated by dots,
    each a number from 0 to 255 written with the digits 0-9 only, without leading zeros ("0" is
    fine, "01" is not), signs or spaces.

    >>> valid_ipv4("192.168.0.1")
    True
    """
''', '''
    parts = address.split(".")
    if len(parts) != 4:
        return False
    for part in parts:
        if not part or any(c not in "0123456789" for c in part):
            return False
        if (part[0] == "0" and len(part) > 1) or int(part) > 255:
            return False
    return True
''',
        (
            'valid_ipv4("255.255.255.255") is True',
            'valid_ipv4("0.0.0.0") is True',
            'valid_ipv4("256.1.1.1") is False',
            'valid_ipv4("1.2.3") is False',
            'valid_ipv4("1.2.3.4.5") is False',
            'valid_ipv4("01.2.3.4") is False',
            'valid_ipv4("1.2.3.-4") is False',
            'valid_ipv4(" 1.2.3.4") is False',
            'valid_ipv4("1..3.4") is False',
            'valid_ipv4("1.2.3.4\\n") is False',
            'valid_ipv4("\\u0661.2.3.4") is False',
        ),
    ),
    Problem(
        "next-palindrome", "next_palindrome",
        '''
def next_palindrome(n: int) -> int:
    """The smallest integer greater than n whose decimal digits read the same reversed. For a
    negative n that is 0. It must answer within a second for n up to 10**15.

    >>> next_palindrome(123)
    131
    """
''', '''
    if n < 0:
        return 0
    digits = str(n + 1)
    half = digits[: (len(digits) + 1) // 2]
    tail = half[: len(digits) // 2][::-1]
    candidate = int(half + tail)
    if candidate > n:
        return candidate
    bigger = str(int(half) + 1)
    if len(bigger) > len(half):
        return 10 ** len(digits) + 1
    return int(bigger + bigger[: len(digits) // 2][::-1])
''',
        (
            'next_palindrome(9) == 11',
            'next_palindrome(99) == 101',
            'next_palindrome(808) == 818',
            'next_palindrome(1991) == 2002',
            'next_palindrome(0) == 1',
            'next_palindrome(-5) == 0',
            'next_palindrome(123456) == 124421',
            'next_palindrome(10**15 + 2) == 1000000110000001',
        ),
    ),
    Problem(
        "topo-order", "topo_order",
        '''
def topo_order(prerequisites: dict[str, list[str]]) -> list[str]:
    """Order tasks so that each comes after all of its prerequisites.

    `prerequisites` maps a task to the tasks that must come before it; a task that appears only
    as a prerequisite is a task too. Whenever several tasks are ready, the alphabetically
    smallest goes first. Raise ValueError if the prerequisites form a cycle.

    >>> topo_order({"deploy": ["build", "test"], "test": ["build"]})
    ['build', 'test', 'deploy']
    """
''', '''
    import heapq

    needs = {task: set(before) for task, before in prerequisites.items()}
    for before in list(needs.values()):
        for task in before:
            needs.setdefault(task, set())
    ready = [task for task, before in needs.items() if not before]
    heapq.heapify(ready)
    order = []
    while ready:
        task = heapq.heappop(ready)
        order.append(task)
        for other, before in needs.items():
            if task in before:
                before.discard(task)
                if not before:
                    heapq.heappush(ready, other)
    if len(order) != len(needs):
        raise ValueError("cycle")
    return order
''',
        (
            'topo_order({}) == []',
            'topo_order({"b": [], "a": []}) == ["a", "b"]',
            'topo_order({"c": ["a"], "b": ["a"], "d": ["b", "c"], "e": []}) == ["a", "b", "c", "d", "e"]',
            'topo_order({"z": ["y"], "a": ["y"]}) == ["y", "a", "z"]',
            'raises(ValueError, topo_order, {"a": ["b"], "b": ["a"]})',
            'raises(ValueError, topo_order, {"a": ["a"]})',
        ),
    ),
    Problem(
        "rle-encode", "rle_encode",
        '''
def rle_encode(text: str) -> str:
    """Run-length encode a string: each run of one repeated character becomes the run's length
    followed by the character, except that a run of length 1 is the character alone. Case
    matters ("aA" is two runs). Raise ValueError if the text contains a digit.

    >>> rle_encode("aaabccdddd")
    '3ab2c4d'
    """
''', '''
    import itertools

    if any(c.isdigit() for c in text):
        raise ValueError(text)
    runs = ((char, len(list(group))) for char, group in itertools.groupby(text))
    return "".join(char if count == 1 else f"{count}{char}" for char, count in runs)
''',
        (
            'rle_encode("") == ""',
            'rle_encode("a") == "a"',
            'rle_encode("aA") == "aA"',
            'rle_encode("z" * 12) == "12z"',
            'rle_encode("  a") == "2 a"',
            'rle_encode("abba") == "a2ba"',
            'raises(ValueError, rle_encode, "a1")',
        ),
    ),
    Problem(
        "osa-distance", "osa_distance",
        '''
def osa_distance(a: str, b: str) -> int:
    """The optimal string alignment distance between two strings: the fewest insertions,
    deletions, substitutions and swaps of two adjacent characters that turn a into b, where no
    part of the string is edited more than once (so "ca" to "abc" takes 3 edits, not 2).

    >>> osa_distance("kitten", "sitting")
    3
    """
''', '''
    d = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[len(a)][len(b)]
''',
        (
            'osa_distance("", "") == 0',
            'osa_distance("abc", "") == 3',
            'osa_distance("ca", "ac") == 1',
            'osa_distance("ca", "abc") == 3',
            'osa_distance("abcdef", "abdcef") == 1',
            'osa_distance("flaw", "lawn") == 2',
            'osa_distance("same", "same") == 0',
        ),
    ),
    Problem(
        "balanced", "balanced",
        '''
def balanced(text: str) -> bool:
    """Whether the brackets (), [] and {} in a text are balanced and properly nested.

    Other characters are ignored, and so are brackets inside double-quoted strings: a double
    quote opens a string that the next double quote closes. A string never closed makes the
    text unbalanced.

    >>> balanced('f(a[1], {"x": ")"})')
    True
    """
''', '''
    pairs = {")": "(", "]": "[", "}": "{"}
    stack: list[str] = []
    quoted = False
    for char in text:
        if char == '"':
            quoted = not quoted
        elif quoted:
            continue
        elif char in "([{":
            stack.append(char)
        elif char in pairs and (not stack or stack.pop() != pairs[char]):
            return False
    return not stack and not quoted
''',
        (
            'balanced("") is True',
            'balanced("([)]") is False',
            'balanced("((") is False',
            'balanced("())") is False',
            """balanced('"(" + ")"') is True""",
            """balanced('("') is False""",
            'balanced("{[()()]}") is True',
            """balanced('x = "]"') is True""",
        ),
    ),
    Problem(
        "running-median", "running_median",
        '''
def running_median(values: list[float]) -> list[float]:
    """The median of each prefix of values: element i of the result is the median of
    values[0], ..., values[i]. The median of an even count is the mean of the two middle
    values. The result holds floats. It must handle 100,000 values within a second.

    >>> running_median([5, 15, 1, 3])
    [5.0, 10.0, 5.0, 4.0]
    """
''', '''
    import heapq

    low: list[float] = []  # max-heap of the lower half, negated
    high: list[float] = []
    out = []
    for value in values:
        heapq.heappush(low, -heapq.heappushpop(high, value))
        if len(low) > len(high) + 1:
            heapq.heappush(high, -heapq.heappop(low))
        if len(low) > len(high):
            out.append(float(-low[0]))
        else:
            out.append((-low[0] + high[0]) / 2)
    return out
''',
        (
            'running_median([]) == []',
            'running_median([2]) == [2.0]',
            'running_median([1, 2, 3, 4]) == [1.0, 1.5, 2.0, 2.5]',
            'running_median([4, 4, 4]) == [4.0, 4.0, 4.0]',
            'running_median([-1, -3]) == [-1.0, -2.0]',
            'running_median(list(range(100000, 0, -1)))[-1] == 50000.5',
        ),
    ),
]  # fmt: skip
