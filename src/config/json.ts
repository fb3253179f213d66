/**
 * Locating JSON syntax errors. V8's JSON.parse messages do not always carry a position
 * ("Unexpected token '}', ... is not valid JSON"), so when it fails this small strict
 * RFC 8259 scanner walks the text again to find where and why, as line:column.
 */

export interface JsonSyntaxProblem {
  /** 0-based offset into the text. */
  offset: number;
  /** 1-based line and column (column counts UTF-16 code units). */
  line: number;
  column: number;
  /** What was expected and what was found, e.g. `expected "," or "}" after a property value, found "\"b\""`. */
  message: string;
}

class Stop extends Error {
  constructor(
    readonly offset: number,
    readonly reason: string,
  ) {
    super(reason);
  }
}

export function lineColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
}

/** What sits at `at`, for "found ..." (a whole token where that reads better than a character). */
function describeToken(text: string, at: number): string {
  if (at >= text.length) return 'the end of the file';
  const ch = text[at]!;
  const rest = text.slice(at, at + 40);
  if (ch === '"') {
    const str = /^"(?:[^"\\\n]|\\.)*"?/.exec(rest)![0];
    return `the string ${str}`;
  }
  if (/[A-Za-z_]/.test(ch)) {
    const word = /^[A-Za-z_][A-Za-z0-9_]*/.exec(rest)![0];
    return `${word} (unquoted text; strings and property names need double quotes)`;
  }
  if (/[-0-9]/.test(ch)) return `the number ${/^-?[0-9.eE+-]*/.exec(rest)![0]}`;
  if (ch === '/') return '"/" (comments are not allowed in JSON)';
  if (ch === "'") return `"'" (JSON strings need double quotes)`;
  return JSON.stringify(ch);
}

/**
 * Nesting the scanner follows (it recurses): far more than a config has (16 levels are allowed,
 * limits.ts), far less than would overflow the stack ("[" repeated 100,000 times did, and the CLI
 * printed a RangeError's stack).
 */
export const MAX_SCAN_DEPTH = 1000;

/**
 * Returns the first syntax error of `text`, or undefined when it is valid JSON. Nesting deeper
 * than MAX_SCAN_DEPTH is reported as a problem, valid or not.
 */
export function findJsonSyntaxError(text: string): JsonSyntaxProblem | undefined {
  let i = 0;
  let depth = 0;
  const enter = (): void => {
    if (++depth > MAX_SCAN_DEPTH) fail(`expected at most ${MAX_SCAN_DEPTH} levels of nesting (a config has a few), found deeper nesting`);
  };

  const fail = (reason: string, at = i): never => {
    throw new Stop(at, reason);
  };
  const expected = (what: string, at = i): never => fail(`expected ${what}, found ${describeToken(text, at)}`, at);

  const skipWhitespace = (): void => {
    while (i < text.length) {
      const c = text[i];
      if (c === ' ' || c === '\t' || c === '\n' || c === '\r') i++;
      else break;
    }
  };

  const isDigit = (c: string | undefined): boolean => c !== undefined && c >= '0' && c <= '9';

  const parseString = (): void => {
    i++; // opening quote
    for (;;) {
      if (i >= text.length) fail('unterminated string: expected a closing ", found the end of the file');
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        i++;
        return;
      }
      if (c < 0x20) fail(`expected a closing " or an escaped character in the string, found a raw control character (U+${c.toString(16).padStart(4, '0').toUpperCase()}; write it escaped, e.g. \\n)`);
      if (c === 0x5c) {
        const e = text[i + 1];
        if (e !== undefined && '"\\/bfnrt'.includes(e)) {
          i += 2;
        } else if (e === 'u') {
          const hex = text.slice(i + 2, i + 6);
          if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail('expected 4 hex digits after \\u in the string', i + 2);
          i += 6;
        } else {
          fail(`expected an escape such as \\n, \\" or \\\\ after "\\" in the string, found ${describeToken(text, i + 1)}`, i + 1);
        }
        continue;
      }
      i++;
    }
  };

  const parseNumber = (): void => {
    if (text[i] === '-') i++;
    if (text[i] === '0') {
      i++;
    } else if (isDigit(text[i])) {
      while (isDigit(text[i])) i++;
    } else {
      expected('a digit');
    }
    if (text[i] === '.') {
      i++;
      if (!isDigit(text[i])) expected('a digit after the decimal point');
      while (isDigit(text[i])) i++;
    }
    if (text[i] === 'e' || text[i] === 'E') {
      i++;
      if (text[i] === '+' || text[i] === '-') i++;
      if (!isDigit(text[i])) expected('a digit in the exponent');
      while (isDigit(text[i])) i++;
    }
  };

  const parseValue = (): void => {
    skipWhitespace();
    const c = text[i];
    if (c === '{') return parseObject();
    if (c === '[') return parseArray();
    if (c === '"') return parseString();
    if (c === '-' || isDigit(c)) return parseNumber();
    for (const word of ['true', 'false', 'null']) {
      if (text.startsWith(word, i)) {
        i += word.length;
        return;
      }
    }
    expected('a value (string, number, object, array, true, false or null)');
  };

  const parseObject = (): void => {
    enter();
    i++; // {
    skipWhitespace();
    if (text[i] === '}') {
      i++;
      depth--;
      return;
    }
    for (;;) {
      skipWhitespace();
      if (text[i] !== '"') {
        if (text[i] === '}') fail('expected a double-quoted property name after ",", found "}" (trailing commas are not allowed in JSON)');
        expected('a double-quoted property name');
      }
      parseString();
      skipWhitespace();
      if (text[i] !== ':') expected('":" after the property name');
      i++;
      parseValue();
      skipWhitespace();
      if (text[i] === ',') {
        i++;
        continue;
      }
      if (text[i] === '}') {
        i++;
        depth--;
        return;
      }
      expected('"," or "}" after a property value');
    }
  };

  const parseArray = (): void => {
    enter();
    i++; // [
    skipWhitespace();
    if (text[i] === ']') {
      i++;
      depth--;
      return;
    }
    for (;;) {
      skipWhitespace();
      if (text[i] === ']') fail('expected a value after ",", found "]" (trailing commas are not allowed in JSON)');
      parseValue();
      skipWhitespace();
      if (text[i] === ',') {
        i++;
        continue;
      }
      if (text[i] === ']') {
        i++;
        depth--;
        return;
      }
      expected('"," or "]" after an array element');
    }
  };

  try {
    skipWhitespace();
    if (i >= text.length) fail('expected a JSON value, found an empty file');
    parseValue();
    skipWhitespace();
    if (i < text.length) expected('the end of the file after the JSON value');
    return undefined;
  } catch (e) {
    if (!(e instanceof Stop)) throw e;
    const { line, column } = lineColumn(text, e.offset);
    return { offset: e.offset, line, column, message: e.reason };
  }
}
