/**
 * "Did you mean ...?" suggestions for misspelt names (config keys, enum values, layer types).
 */

/** Spelling-insensitive form: case, `_` and `-` are ignored, so `max_pooling2d` ~ `maxPooling2d`. */
function fold(s: string): string {
  return s.toLowerCase().replace(/[_-]/g, '');
}

/**
 * Optimal-string-alignment distance: insertions, deletions, substitutions and transpositions
 * of neighbours each cost 1 (so "adma" is 1 away from "adam").
 */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[][] = Array.from({ length: rows }, () => new Array<number>(cols).fill(0));
  for (let i = 0; i < rows; i++) d[i]![0] = i;
  for (let j = 0; j < cols; j++) d[0]![j] = j;
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        best = Math.min(best, d[i - 2]![j - 2]! + 1);
      }
      d[i]![j] = best;
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * The candidate closest to `input`, or undefined when none is plausibly what was meant.
 * A candidate equal up to case, `_` and `-` wins outright; otherwise the smallest edit distance
 * (ignoring case) within max(1, length/3) wins, the first listed on a tie.
 */
export function closestMatch(input: string, candidates: Iterable<string>): string | undefined {
  const list = [...candidates].filter((c) => c !== input);
  const folded = fold(input);
  const same = list.find((c) => fold(c) === folded);
  if (same !== undefined) return same;
  const limit = Math.max(1, Math.floor(input.length / 3));
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of list) {
    const distance = editDistance(folded, fold(c));
    if (distance < bestDistance) {
      best = c;
      bestDistance = distance;
    }
  }
  return bestDistance <= limit ? best : undefined;
}
