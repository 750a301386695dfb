// Redis's glob patterns (KEYS, SCAN MATCH), matched byte by byte: `*`, `?`, `[abc]`, `[^a]`,
// `[a-z]` and `\x` escapes, as Redis's stringmatchlen.

/** Whether `subject` matches glob `pattern`. */
export function globMatch(pattern: Uint8Array, subject: Uint8Array): boolean {
  return matchAt(pattern, 0, subject, 0, 0);
}

function matchAt(p: Uint8Array, pi: number, s: Uint8Array, si: number, depth: number): boolean {
  // Bound the recursion that runs of stars could cause, as Redis does since 7.0.
  if (depth > 1000) return false;
  while (pi < p.length) {
    const c = p[pi] ?? 0;
    switch (c) {
      case 0x2a: {
        while (p[pi + 1] === 0x2a) pi++;
        if (pi + 1 === p.length) return true;
        for (let k = si; k <= s.length; k++) if (matchAt(p, pi + 1, s, k, depth + 1)) return true;
        return false;
      }
      case 0x3f:
        if (si >= s.length) return false;
        si++;
        break;
      case 0x5b: {
        if (si >= s.length) return false;
        pi++;
        const not = p[pi] === 0x5e;
        if (not) pi++;
        let matched = false;
        const b = s[si] ?? 0;
        while (pi < p.length && p[pi] !== 0x5d) {
          const x = p[pi] ?? 0;
          if (x === 0x5c && pi + 1 < p.length) {
            pi++;
            if (p[pi] === b) matched = true;
          } else if (p[pi + 1] === 0x2d && pi + 2 < p.length && p[pi + 2] !== 0x5d) {
            let lo = x;
            let hi = p[pi + 2] ?? 0;
            if (lo > hi) [lo, hi] = [hi, lo];
            if (b >= lo && b <= hi) matched = true;
            pi += 2;
          } else if (x === b) matched = true;
          pi++;
        }
        if (pi >= p.length) pi = p.length - 1;
        if (not) matched = !matched;
        if (!matched) return false;
        si++;
        break;
      }
      case 0x5c:
        if (pi + 1 < p.length) pi++;
        if (si >= s.length || p[pi] !== s[si]) return false;
        si++;
        break;
      default:
        if (si >= s.length || c !== s[si]) return false;
        si++;
    }
    pi++;
  }
  return si === s.length;
}
