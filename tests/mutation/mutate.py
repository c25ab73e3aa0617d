"""The mutants of one C source file.

A small C-aware mutator: it tokenizes the file (skipping comments, string
and character literals and preprocessor lines, where a change would say
nothing about the tests) and lists every mutant of these kinds:

  relational   <  <=  >  >=  ==  !=   (each to its neighbour or negation)
  logical      &&  <->  ||
  arithmetic   binary + - * / % & | << >> and += -= ++ --
  constant     an integer literal: 0 to 1, 1 to 0, N to N+1, N-1 and 0
  check        if (cond): cond forced to 1, and to 0
  statement    an expression statement, return, break or continue deleted
  return       return EXPR; to return 0;

A mutant keeps the file's line count, so __LINE__ and the reviewed list of
equivalent mutants (equivalent.txt) stay valid.
"""

import re
from dataclasses import dataclass

TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<comment>/\*.*?\*/|//[^\n]*)
  | (?P<string>"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*')
  | (?P<number>(?:0[xX][0-9a-fA-F]+|\d+\.?\d*(?:[eE][+-]?\d+)?)[uUlLfF]*)
  | (?P<ident>[A-Za-z_]\w*)
  | (?P<op><<=|>>=|->|\+\+|--|<<|>>|<=|>=|==|!=|&&|\|\||[-+*/%&|^]=|\.\.\.|[^\s\w])
""", re.X | re.S)


@dataclass
class Token:
    kind: str
    text: str
    start: int
    end: int


@dataclass
class Mutant:
    kind: str
    start: int      # the span of the source that is replaced
    end: int
    new: str
    line: int       # 1-based, of start
    old: str = ""

    def apply(self, src):
        # Deleted text keeps its newlines, so line numbers do not move.
        keep = "\n" * self.old.count("\n")
        return src[:self.start] + self.new + keep + src[self.end:]


def tokenize(src):
    tokens, pos, at_line_start = [], 0, True
    while pos < len(src):
        if at_line_start:
            m = re.match(r"[ \t]*#(?:[^\n\\]|\\.)*", src[pos:], re.S)
            if m:               # a preprocessor line, continuations included
                pos += m.end()
                continue
        m = TOKEN.match(src, pos)
        kind = m.lastgroup
        if kind == "ws":
            if "\n" in m.group():
                at_line_start = True
        elif kind != "comment":
            at_line_start = False
            tokens.append(Token(kind, m.group(), m.start(), m.end()))
        pos = m.end()
    return tokens


RELATIONAL = {"<": ["<=", ">="], "<=": ["<", ">"], ">": [">=", "<="],
              ">=": [">", "<"], "==": ["!="], "!=": ["=="]}
LOGICAL = {"&&": ["||"], "||": ["&&"]}
ARITHMETIC = {"+": ["-"], "-": ["+"], "*": ["/"], "/": ["*"], "%": ["*"],
              "&": ["|"], "|": ["&"], "^": ["&"], "<<": [">>"], ">>": ["<<"],
              "+=": ["-="], "-=": ["+="], "|=": ["&="], "&=": ["|="],
              "++": ["--"], "--": ["++"]}
# + - * & are also unary: mutate them only after an operand.
BINARY_ONLY = {"+", "-", "*", "&"}
KEYWORDS_BEFORE_EXPR = {"return", "case", "sizeof", "if", "while", "for",
                        "switch", "else", "do"}
STATEMENT_START = {"(", "=", "->", ".", "[", "++", "--", "+=", "-=", "*=",
                   "/=", "|=", "&=", "^=", "<<=", ">>=", "%="}


def _after_operand(prev):
    if prev is None:
        return False
    if prev.kind == "number" or prev.kind == "string":
        return True
    if prev.kind == "ident":
        return prev.text not in KEYWORDS_BEFORE_EXPR
    return prev.text in (")", "]")


def _match_paren(tokens, i):
    """Index of the ')' closing tokens[i] == '('."""
    depth = 0
    for j in range(i, len(tokens)):
        if tokens[j].text == "(":
            depth += 1
        elif tokens[j].text == ")":
            depth -= 1
            if depth == 0:
                return j
    return None


def _statement_end(tokens, i):
    """Index of the ';' ending the statement at tokens[i], at depth 0."""
    depth = 0
    for j in range(i, len(tokens)):
        t = tokens[j].text
        if t in "([{":
            depth += 1
        elif t in ")]}":
            depth -= 1
            if depth < 0:
                return None
        elif t == ";" and depth == 0:
            return j
    return None


def mutants(src):
    tokens = tokenize(src)
    line_of = _line_index(src)
    out = []

    def add(kind, a, b, new):
        old = src[tokens[a].start:tokens[b].end]
        out.append(Mutant(kind, tokens[a].start, tokens[b].end, new,
                          line_of(tokens[a].start), old))

    depth = 0           # brace depth: 0 is file scope
    for i, tok in enumerate(tokens):
        prev = tokens[i - 1] if i else None
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        if tok.text == "{":
            depth += 1
        elif tok.text == "}":
            depth -= 1
        if tok.kind == "op":
            if tok.text in RELATIONAL and depth > 0:
                for new in RELATIONAL[tok.text]:
                    add("relational", i, i, new)
            elif tok.text in LOGICAL:
                add("logical", i, i, LOGICAL[tok.text][0])
            elif tok.text in ARITHMETIC and depth > 0:
                if tok.text in BINARY_ONLY and not _after_operand(prev):
                    continue
                add("arithmetic", i, i, ARITHMETIC[tok.text][0])
        elif tok.kind == "number" and depth > 0:
            m = re.fullmatch(r"(0[xX][0-9a-fA-F]+|\d+)([uUlL]*)", tok.text)
            if m and (prev is None or prev.text != "["):
                n, suffix = int(m.group(1), 0), m.group(2)
                fmt = "0x{:X}" if m.group(1)[:2] in ("0x", "0X") else "{}"
                news = {0: [1], 1: [0]}.get(n, [n + 1, n - 1, 0])
                for v in news:
                    add("constant", i, i, fmt.format(v) + suffix)
        elif tok.kind == "ident" and depth > 0:
            if tok.text in ("if", "while") and nxt and nxt.text == "(":
                close = _match_paren(tokens, i + 1)
                if close is not None and close > i + 2:
                    if tok.text == "if":
                        add("check", i + 2, close - 1, "1")
                    add("check", i + 2, close - 1, "0")
            elif tok.text == "return":
                end = _statement_end(tokens, i)
                if end is None:
                    continue
                add("statement", i, end, "")
                expr = src[tokens[i + 1].start:tokens[end - 1].end] \
                    if end > i + 1 else ""
                if expr and expr not in ("0", "NULL"):
                    add("return", i, end, "return 0;")
            elif tok.text in ("break", "continue") and nxt and nxt.text == ";":
                add("statement", i, i + 1, "")
            elif (prev is not None and prev.text in (";", "{", "}", ")", "else")
                  and nxt is not None and nxt.text in STATEMENT_START
                  and tok.text not in KEYWORDS_BEFORE_EXPR):
                # An expression statement (a call, an assignment); a ')'
                # before it is only taken when it closes if/for/while.
                if prev.text == ")" and not _closes_control(tokens, i - 1):
                    continue
                end = _statement_end(tokens, i)
                if end is not None:
                    add("statement", i, end, "")
    return out


def _closes_control(tokens, close):
    depth = 0
    for j in range(close, -1, -1):
        if tokens[j].text == ")":
            depth += 1
        elif tokens[j].text == "(":
            depth -= 1
            if depth == 0:
                return j > 0 and tokens[j - 1].text in ("if", "while", "for")
    return False


def _line_index(src):
    starts = [0] + [m.end() for m in re.finditer("\n", src)]
    import bisect
    return lambda pos: bisect.bisect_right(starts, pos)
