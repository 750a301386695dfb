// The tidy test: reads every source file and fails when an import points the wrong way, when src/raft
// reaches for time, randomness, I/O or asynchrony, or when `any` appears in src/. Its second half
// plants violations in fixture strings to show each rule can fail.
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, it } from "node:test";
import { spaceCodes } from "../src/service/index.js";
import { checkRaftUtilPurity, checkSource, stripSource } from "./tidy-rules.js";

const root = new URL("..", import.meta.url).pathname;

function sourcesBelow(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...sourcesBelow(path));
    else if (name.endsWith(".ts")) out.push(relative(root, path));
  }
  return out;
}

describe("tidy: the real tree", () => {
  const files = new Map(sourcesBelow(join(root, "src")).map((p) => [p, readFileSync(join(root, p), "utf8")]));

  it("finds sources to check", () => {
    assert.ok(files.size > 0);
  });

  it("breaks no layer, purity or any rule", () => {
    const violations = [...files].flatMap(([path, text]) => checkSource(path, text));
    violations.push(...checkRaftUtilPurity(files));
    assert.deepEqual(violations, []);
  });

  // Key kinds are opaque bytes to src/storage: what each keyspace means lives in src/service.
  it("has src/storage name none of the service's keyspaces", () => {
    const named = [...files]
      .filter(([path]) => path.startsWith("src/storage/"))
      .flatMap(([path, text]) =>
        Object.keys(spaceCodes)
          .filter((space) => stripSource(text, true).includes(`"${space}"`))
          .map((space) => `${path} names "${space}"`),
      );
    assert.deepEqual(named, []);
  });

  it("has no source outside test/ importing test code", () => {
    const benchAndScripts = ["bench", "scripts"].flatMap((d) => {
      try {
        return sourcesBelow(join(root, d));
      } catch {
        return [];
      }
    });
    const violations = benchAndScripts.flatMap((p) =>
      checkSource(p, readFileSync(join(root, p), "utf8")).filter((v) => v.rule === "test-import"),
    );
    assert.deepEqual(violations, []);
  });
});

describe("tidy: planted violations are caught", () => {
  const rulesOf = (path: string, text: string) => checkSource(path, text).map((v) => v.rule);

  it("catches a wrong-way import (raft importing node)", () => {
    assert.deepEqual(rulesOf("src/raft/log.ts", 'import { Runtime } from "../node/runtime.js";\n'), [
      "layer",
    ]);
  });

  it("catches storage importing transport (siblings do not import each other)", () => {
    assert.deepEqual(rulesOf("src/storage/wal.ts", 'import { x } from "../transport/peer.js";\n'), ["layer"]);
  });

  it("catches a re-export and a dynamic import pointing the wrong way", () => {
    assert.deepEqual(rulesOf("src/service/kv.ts", 'export { y } from "../server/http/app.js";\n'), ["layer"]);
    assert.deepEqual(rulesOf("src/node/a.ts", 'const m = await import("../cli/main.js");\n'), ["layer"]);
  });

  it("allows an import that points the right way, through the layer's index", () => {
    assert.deepEqual(rulesOf("src/node/runtime.ts", 'import { Raft } from "../raft/index.js";\n'), []);
    assert.deepEqual(rulesOf("src/cli/run.ts", 'import { app } from "../server/http/index.js";\n'), []);
  });

  it("catches a deep import into another layer, and allows one inside a layer", () => {
    assert.deepEqual(rulesOf("src/node/runtime.ts", 'import { Raft } from "../raft/raft.js";\n'), [
      "deep-import",
    ]);
    assert.deepEqual(rulesOf("src/cli/run.ts", 'export { app } from "../server/http/app.js";\n'), [
      "deep-import",
    ]);
    assert.deepEqual(rulesOf("src/service/kv/kv.ts", 'import { s } from "../streams/codec.js";\n'), []);
  });

  it("catches src importing test code", () => {
    assert.deepEqual(rulesOf("src/util/x.ts", 'import { h } from "../../test/sim/harness.js";\n'), [
      "test-import",
    ]);
  });

  it("catches Math.random in src/raft", () => {
    assert.deepEqual(rulesOf("src/raft/raft.ts", "const r = Math.random();\n"), ["raft-purity"]);
  });

  it("catches each banned word in src/raft", () => {
    for (const snippet of [
      "const t = Date.now();",
      "setTimeout(f, 1);",
      "setInterval(f, 1);",
      "process.exit(1);",
      "const b = Buffer.alloc(1);",
      "async function f() {}",
      "const v = await g;",
      "const p = Promise.resolve();",
    ]) {
      assert.deepEqual(rulesOf("src/raft/raft.ts", `${snippet}\n`), ["raft-purity"], snippet);
    }
  });

  it("catches a node: import and a package import in src/raft", () => {
    assert.deepEqual(rulesOf("src/raft/raft.ts", 'import { x } from "node:fs";\n'), ["raft-purity"]);
    assert.deepEqual(rulesOf("src/raft/raft.ts", 'import { x } from "lmdb";\n'), ["raft-purity"]);
  });

  it("ignores banned words in comments and strings, and outside src/raft", () => {
    assert.deepEqual(rulesOf("src/raft/raft.ts", '// the process may crash\nconst s = "Date";\n'), []);
    assert.deepEqual(rulesOf("src/node/clock.ts", "const t = Date.now();\n"), []);
  });

  it("catches any in src/", () => {
    for (const snippet of ["let x: any;", "const y = z as any;", "f<any>();", "let a: any[] = [];"]) {
      assert.deepEqual(rulesOf("src/service/kv.ts", `${snippet}\n`), ["any"], snippet);
    }
    assert.deepEqual(rulesOf("src/service/kv.ts", "// any of them\nconst many = 1;\n"), []);
  });

  it("catches src/raft importing an impure util module, directly or transitively", () => {
    const files = new Map([
      ["src/raft/log.ts", 'import { crc32 } from "../util/index.js";\n'],
      ["src/util/index.ts", 'export { crc32 } from "./crc.js";\n'],
      ["src/util/crc.ts", 'import { crc32 } from "node:zlib";\n'],
    ]);
    assert.equal(checkRaftUtilPurity(files).length, 1);
    const pure = new Map([
      ["src/raft/log.ts", 'import { assert } from "../util/assert.js";\n'],
      ["src/util/assert.ts", "export function assert() {}\n"],
    ]);
    assert.deepEqual(checkRaftUtilPurity(pure), []);
  });

  it("reports the line of a violation", () => {
    const [violation] = checkSource("src/raft/x.ts", "const a = 1;\n\nconst r = Math.random();\n");
    assert.equal(violation?.line, 3);
  });

  it("strips comments but keeps line numbers", () => {
    assert.equal(stripSource("a /* x\ny */ b // c\nd", false), "a \n b \nd");
  });
});
