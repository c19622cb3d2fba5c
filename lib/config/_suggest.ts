/**
 * "Did you mean ...?" helpers: edit distance and the closest candidate.
 *
 * @module
 */

/** Levenshtein distance between two strings (insert, delete, substitute = 1). */
export function editDistance(a: string, b: string): number {
  if (a === b) return 0;
  if (a.length === 0) return b.length;
  if (b.length === 0) return a.length;
  let prev = new Array<number>(b.length + 1);
  let cur = new Array<number>(b.length + 1);
  for (let j = 0; j <= b.length; j++) prev[j] = j;
  for (let i = 1; i <= a.length; i++) {
    cur[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const sub = prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1);
      cur[j] = Math.min(sub, prev[j] + 1, cur[j - 1] + 1);
    }
    [prev, cur] = [cur, prev];
  }
  return prev[b.length];
}

/** How many edits still count as a typo of a word of this length. */
function tolerance(length: number): number {
  return Math.max(1, Math.min(3, Math.floor(length * 0.4)));
}

function leaf(key: string): string {
  const dot = key.lastIndexOf(".");
  return dot < 0 ? key : key.slice(dot + 1);
}

function section(key: string): string {
  const dot = key.indexOf(".");
  return dot < 0 ? "" : key.slice(0, dot);
}

/**
 * The candidate closest to `query`, or undefined when none is close enough.
 *
 * Dotted keys are compared both whole (`trian.epochs` → `train.epochs`) and
 * by their last part (`model.epochs` → `train.epochs`, `imgSize` →
 * `data.imageSize`); a leaf match in another section costs half an edit so a
 * same-section match wins ties. Case is ignored.
 */
export function closest(query: string, candidates: readonly string[]): string | undefined {
  const q = query.toLowerCase();
  const qLeaf = leaf(q);
  const qSection = section(q);
  let best: string | undefined;
  let bestScore = Infinity;
  for (const candidate of candidates) {
    const c = candidate.toLowerCase();
    const whole = editDistance(q, c);
    const byLeaf = editDistance(qLeaf, leaf(c)) + (section(c) === qSection ? 0 : 0.5);
    const score = Math.min(whole, byLeaf);
    if (score < bestScore) {
      bestScore = score;
      best = candidate;
    }
  }
  return bestScore <= tolerance(qLeaf.length) ? best : undefined;
}

/**
 * The candidate closest to `query` by plain edit distance (case ignored),
 * for values and file names rather than dotted keys; undefined when none is
 * close enough.
 */
export function closestWord(query: string, candidates: readonly string[]): string | undefined {
  const q = query.toLowerCase();
  let best: string | undefined;
  let bestScore = Infinity;
  for (const candidate of candidates) {
    const score = editDistance(q, candidate.toLowerCase());
    if (score < bestScore) {
      bestScore = score;
      best = candidate;
    }
  }
  return bestScore <= tolerance(q.length) ? best : undefined;
}
