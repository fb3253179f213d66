/**
 * A message as one line: line breaks and other control characters (tab aside) shown escaped
 * (`\n`, `\r`, `\x1b`). Messages quote what users and other programs wrote (names in a
 * model.json, an error of TensorFlow.js), and ringtrain promises one line per error.
 */
export function oneLine(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u0008\u000a-\u001f\u007f]/g, (c) =>
    c === '\n' ? '\\n' : c === '\r' ? '\\r' : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`,
  );
}
