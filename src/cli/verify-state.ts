// Verifies a node's lmdb state store before the node opens it, in a child process: lmdb's native
// code reads its B-tree pages without checksums, so a damaged page can crash the process that reads
// it (a SIGSEGV, not an error). The child reads every value and checks its checksum; a checksum
// that fails, or a child that dies, means the store is damaged, and the node discards it rather
// than open it (docs/faults.md, "Corruption").
import { spawn } from "node:child_process";
import { stat } from "node:fs/promises";
import { extname } from "node:path";
import { fileURLToPath } from "node:url";
import { StorageError } from "../storage/index.js";

/** The child's script: the sibling of this module, compiled or run through tsx alike. */
const childScript = fileURLToPath(new URL(`./verify-state-main${extname(import.meta.url)}`, import.meta.url));

/**
 * Undefined when the store at `stateDir` (absent counts as whole) passed; else ERR_STATE_CORRUPT
 * saying why. An error of the check itself (the child cannot start) is thrown.
 */
export async function verifyStateStore(stateDir: string): Promise<StorageError | undefined> {
  if ((await stat(stateDir).catch(() => undefined)) === undefined) return undefined;
  const child = spawn(process.execPath, [...process.execArgv, childScript, stateDir], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout.on("data", (chunk: Buffer) => {
    if (out.length < 64 * 1024) out += chunk.toString();
  });
  child.stderr.on("data", (chunk: Buffer) => {
    if (err.length < 64 * 1024) err += chunk.toString();
  });
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (c, s) => resolve([c, s]));
  });
  if (code === 0) return undefined;
  if (code === 3) {
    const line = out.trim().split("\n").at(-1) ?? "";
    let message = line;
    try {
      const parsed = JSON.parse(line) as { message?: string };
      message = parsed.message ?? line;
    } catch {
      // Not JSON: keep the line as it is.
    }
    return new StorageError("ERR_STATE_CORRUPT", `the state store fails verification: ${message}`);
  }
  if (signal !== null || (code !== null && code >= 128)) {
    return new StorageError(
      "ERR_STATE_CORRUPT",
      `reading the state store crashed lmdb (${signal ?? `exit ${code}`}): its files are damaged`,
    );
  }
  throw new Error(`the state store check failed to run (exit ${code}): ${err.trim().slice(0, 500)}`);
}
