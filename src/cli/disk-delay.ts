// The slow-disk testing facility behind `--disk-delay-file`: the file holds a whole number of
// milliseconds that every log write and sync waits in memory first (DelayedFileSystem); the node
// re-reads it when it changes, so the fault suite slows one node's disk and heals it at run time.
import { unwatchFile, watchFile } from "node:fs";
import { readFile } from "node:fs/promises";
import type { DiskDelay } from "../storage/index.js";
import type { Logger } from "../util/index.js";

/** The largest delay the file may ask for. */
export const diskDelayMsMax = 60_000;

/** A delay read from a file, and how to stop watching it. */
export interface WatchedDiskDelay {
  readonly delay: DiskDelay;
  close(): void;
}

/**
 * Parses the file's text: an integer from 0 to {@link diskDelayMsMax}, blank meaning 0. Anything
 * else is refused with a message, and the delay stays as it was.
 */
export function parseDiskDelay(text: string): { ok: true; delayMs: number } | { ok: false; error: string } {
  const trimmed = text.trim();
  if (trimmed === "") return { ok: true, delayMs: 0 };
  const n = /^\d{1,6}$/.test(trimmed) ? Number(trimmed) : Number.NaN;
  if (!(n >= 0 && n <= diskDelayMsMax)) {
    return {
      ok: false,
      error: `expected milliseconds from 0 to ${diskDelayMsMax}, got ${JSON.stringify(trimmed.slice(0, 40))}`,
    };
  }
  return { ok: true, delayMs: n };
}

/** Reads `path` now (missing: no delay) and again whenever it changes (polled every 100 ms). */
export async function watchDiskDelay(path: string, log: Logger): Promise<WatchedDiskDelay> {
  let delayMs = 0;
  const reread = async (): Promise<void> => {
    let text = "";
    try {
      text = await readFile(path, "utf8");
    } catch {
      // No file: no delay.
    }
    const parsed = parseDiskDelay(text);
    if (!parsed.ok) {
      log.warn(`disk-delay-file ${path}: ${parsed.error}; keeping ${delayMs} ms`);
      return;
    }
    if (parsed.delayMs !== delayMs) log.warn(`disk delay ${parsed.delayMs} ms (testing facility)`);
    delayMs = parsed.delayMs;
  };
  await reread();
  const onChange = () => void reread();
  watchFile(path, { interval: 100, persistent: false }, onChange);
  return {
    delay: {
      delayMs: () => delayMs,
      sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
    },
    close: () => unwatchFile(path, onChange),
  };
}
