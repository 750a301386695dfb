// Small presentation helpers: durations, byte counts, times, and the advice shown with an error.

/** "3 s", "4 min 2 s", "2 h 5 min", "3 d 1 h". */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

/** "512 B", "1.5 KiB", "3.2 MiB". */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  if (bytes < 1024 ** 3) return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
  return `${(bytes / 1024 ** 3).toFixed(1)} GiB`;
}

/** A wall-clock time as HH:MM:SS. */
export function formatTime(ms: number): string {
  return new Date(ms).toLocaleTimeString([], { hour12: false });
}

/** A limit where 0 means none. */
export function formatLimit(value: number, unit: (v: number) => string = String): string {
  return value === 0 ? "none" : unit(value);
}

/** What to tell the user about an error: its message and, for known codes, what to do. */
export function describeError(error: unknown): string {
  const code = typeof error === "object" && error !== null && "code" in error ? String(error.code) : "";
  const message = error instanceof Error ? error.message : String(error);
  const advice: Record<string, string> = {
    ERR_UNAVAILABLE: "No node answered in time. Start or resume nodes on the Cluster tab, then retry.",
    ERR_TIMEOUT: "The cluster did not answer in time; it may be electing a leader. Retry in a moment.",
    ERR_WRITE_CONCERN:
      "Stored on a majority, but not every voting node confirmed it in time: start the stopped nodes.",
    ERR_NOT_FOUND: "It does not exist (any more).",
    ERR_CONFLICT: "The condition did not hold: reload to see the current state, then retry.",
    ERR_BREAKS_MAJORITY: "Start the stopped voters first, or remove a stopped voter instead.",
    ERR_BAD_REQUEST: "Check the fields and try again.",
    ERR_UNAUTHENTICATED: "The cluster asks for a token: enter one at the top of the page.",
    ERR_FORBIDDEN: "Your token's role lacks that permission; use a token with more grants.",
  };
  const hint = advice[code];
  return hint === undefined ? message : `${message}. ${hint}`;
}
