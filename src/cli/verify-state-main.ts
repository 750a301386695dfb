// The child process of verify-state.ts: opens the lmdb state store at argv[2], reads every value
// and checks its checksum, and says how it went on stdout as one JSON line. A crash of lmdb's native
// code on a damaged page ends only this process.
import { LmdbStateStore } from "../storage/index.js";

const path = process.argv[2];
if (path === undefined) {
  process.stdout.write(`${JSON.stringify({ error: "usage: verify-state-main <state dir>" })}\n`);
  process.exit(2);
}
try {
  const store = LmdbStateStore.open(path);
  const { pairs } = store.verify();
  await store.close();
  process.stdout.write(`${JSON.stringify({ ok: true, pairs })}\n`);
} catch (error) {
  const code = typeof error === "object" && error !== null && "code" in error ? String(error.code) : "";
  process.stdout.write(
    `${JSON.stringify({ ok: false, code, message: error instanceof Error ? error.message : String(error) })}\n`,
  );
  process.exit(3);
}
