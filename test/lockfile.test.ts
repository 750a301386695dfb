// The lockfile installs unchanged on any machine: every optional (platform) dependency that a locked
// package names has its own locked entry with a version and an integrity hash. A lockfile
// written on a machine whose registry listed only some platforms fails here, not on a new machine.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

interface LockEntry {
  readonly version?: string;
  readonly integrity?: string;
  readonly link?: boolean;
  readonly optionalDependencies?: Record<string, string>;
}

const lock = JSON.parse(readFileSync(new URL("../package-lock.json", import.meta.url), "utf8")) as {
  readonly lockfileVersion: number;
  readonly packages: Record<string, LockEntry>;
};

/** Where npm looks up `name` from the package at `path`: its own node_modules, then each parent's. */
function locate(path: string, name: string): LockEntry | undefined {
  let base = path;
  for (;;) {
    const found = lock.packages[base === "" ? `node_modules/${name}` : `${base}/node_modules/${name}`];
    if (found !== undefined) return found;
    if (base === "") return undefined;
    const cut = base.lastIndexOf("/node_modules/");
    base = cut < 0 ? "" : base.slice(0, cut);
  }
}

test("the lockfile is version 3", () => {
  assert.equal(lock.lockfileVersion, 3);
});

test("every optional dependency of every locked package has a locked entry", () => {
  const missing: string[] = [];
  for (const [path, entry] of Object.entries(lock.packages)) {
    for (const name of Object.keys(entry.optionalDependencies ?? {})) {
      if (locate(path, name) === undefined) missing.push(`${path || "(root)"} -> ${name}`);
    }
  }
  assert.deepEqual(missing, [], "run `npm install` where the registry lists every platform's build");
});

// No `resolved` addresses: this machine's npm writes none, and npm ci takes the configured registry.
test("every locked package has a version and an integrity hash", () => {
  const incomplete = Object.entries(lock.packages)
    .filter(([path, entry]) => path !== "" && entry.link !== true)
    .filter(([, entry]) => entry.version === undefined || entry.integrity === undefined)
    .map(([path]) => path);
  assert.deepEqual(incomplete, []);
});
