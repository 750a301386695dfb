// The architecture rules that test/tidy.test.ts enforces on the sources, as pure functions over
// (path, text) so the test can also show them catching planted violations.

/** The layers of src/, by folder. */
export type Layer =
  | "api"
  | "util"
  | "raft"
  | "storage"
  | "transport"
  | "node"
  | "service"
  | "node-assembly"
  | "server"
  | "client"
  | "cli"
  | "dashboard";

/**
 * Which layers each layer may import. Imports point one way:
 * raft <- storage, transport <- node <- service <- node-assembly <- cli; client and dashboard stand
 * apart. node-assembly (CairnNode) sits above service because it wires storage, the runtime and the
 * services together; the services must not know how a node is built, and the protocol adapters in
 * server need only the services, so server does not import it either: only the composition root
 * (cli) and the tests start nodes.
 * api (the HTTP API's shapes) imports nothing of ours; the services (for the shapes they answer
 * as they are), the protocol adapters, the client, the dashboard and the CLI share it.
 */
export const allowedImports: Record<Layer, readonly Layer[]> = {
  api: ["api"],
  util: ["util"],
  raft: ["raft", "util"],
  storage: ["storage", "raft", "util"],
  transport: ["transport", "raft", "util"],
  node: ["node", "storage", "transport", "raft", "util"],
  service: ["service", "api", "node", "storage", "transport", "raft", "util"],
  "node-assembly": ["node-assembly", "api", "service", "node", "storage", "transport", "raft", "util"],
  server: ["server", "api", "service", "node", "storage", "transport", "raft", "util"],
  client: ["client", "api", "util"],
  cli: [
    "cli",
    "node-assembly",
    "api",
    "server",
    "service",
    "node",
    "storage",
    "transport",
    "raft",
    "util",
    "client",
    "dashboard",
  ],
  dashboard: ["dashboard", "api", "client", "util"],
};

/** One broken rule, with where it was found. */
export interface Violation {
  readonly file: string;
  readonly line: number;
  readonly rule: "layer" | "deep-import" | "test-import" | "raft-purity" | "any" | "unknown-layer";
  readonly detail: string;
}

/** Identifiers src/raft must not mention: time, randomness, the process, Node buffers, asynchrony. */
const raftBannedWords = [
  "Date",
  "Math.random",
  "setTimeout",
  "setInterval",
  "setImmediate",
  "queueMicrotask",
  "process",
  "Buffer",
  "async",
  "await",
  "Promise",
];

/**
 * Blanks out comments, and (unless `keepStrings`) the contents of string and template literals,
 * keeping line breaks so line numbers stay right.
 */
export function stripSource(text: string, keepStrings: boolean): string {
  let out = "";
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text[i];
    const next = text[i + 1];
    if (c === "/" && next === "/") {
      while (i < n && text[i] !== "\n") i++;
    } else if (c === "/" && next === "*") {
      i += 2;
      while (i < n && !(text[i] === "*" && text[i + 1] === "/")) {
        if (text[i] === "\n") out += "\n";
        i++;
      }
      i += 2;
    } else if (c === '"' || c === "'" || c === "`") {
      const quote = c;
      out += quote;
      i++;
      while (i < n && text[i] !== quote) {
        if (text[i] === "\\") {
          if (keepStrings) out += text.slice(i, i + 2);
          i += 2;
          continue;
        }
        if (text[i] === "\n") out += "\n";
        else if (keepStrings) out += text[i];
        i++;
      }
      out += quote;
      i++;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

/** The module specifiers a source imports or re-exports (static and dynamic), with their lines. */
export function importsOf(text: string): { specifier: string; line: number }[] {
  const code = stripSource(text, true);
  const found: { specifier: string; line: number }[] = [];
  const pattern =
    /\b(?:import|export)\b[^;"'`]*?\bfrom\s*["']([^"']+)["']|\bimport\s*\(?\s*["']([^"']+)["']/g;
  for (const match of code.matchAll(pattern)) {
    const specifier = match[1] ?? match[2];
    if (specifier === undefined) continue;
    const line = code.slice(0, match.index).split("\n").length;
    found.push({ specifier, line });
  }
  return found;
}

/** The layer a path under src/ belongs to, or undefined for a path outside src/. */
export function layerOf(path: string): Layer | "unknown" | undefined {
  const match = /(?:^|\/)src\/([^/]+)\//.exec(path);
  if (!match) return undefined;
  const folder = match[1] ?? "";
  return folder in allowedImports ? (folder as Layer) : "unknown";
}

/** Resolves a relative specifier against the importing file's path ("src/a/b.ts" + "../c/d.js"). */
export function resolveRelative(from: string, specifier: string): string {
  const parts = from.split("/").slice(0, -1);
  for (const piece of specifier.split("/")) {
    if (piece === "..") parts.pop();
    else if (piece !== ".") parts.push(piece);
  }
  return parts.join("/").replace(/\.js$/, ".ts");
}

/**
 * src/raft imports util modules one by one, not through util's index: the purity rule checks each
 * module it reaches, and the index also carries impure ones (crc uses node:zlib).
 */
function raftReachingUtil(layer: Layer, target: Layer): boolean {
  return layer === "raft" && target === "util";
}

/** Every rule broken by the source `text` at `path` (a path relative to the repo root). */
export function checkSource(path: string, text: string): Violation[] {
  const violations: Violation[] = [];
  const layer = layerOf(path);
  for (const { specifier, line } of importsOf(text)) {
    if (!specifier.startsWith(".")) {
      if (layer === "raft") {
        violations.push({ file: path, line, rule: "raft-purity", detail: `imports package "${specifier}"` });
      }
      continue;
    }
    const target = resolveRelative(path, specifier);
    if (/(?:^|\/)test\//.test(target) && !/(?:^|\/)test\//.test(path)) {
      violations.push({ file: path, line, rule: "test-import", detail: `imports test code "${specifier}"` });
    }
    const targetLayer = layerOf(target);
    if (layer === undefined || layer === "unknown" || targetLayer === undefined) continue;
    if (targetLayer === "unknown" || !allowedImports[layer].includes(targetLayer)) {
      violations.push({ file: path, line, rule: "layer", detail: `${layer} may not import ${target}` });
    } else if (
      targetLayer !== layer &&
      !/\/index\.ts$/.test(target) &&
      !raftReachingUtil(layer, targetLayer)
    ) {
      violations.push({
        file: path,
        line,
        rule: "deep-import",
        detail: `imports ${target}: another layer is reached through its index.ts`,
      });
    }
  }
  if (layer === "unknown") {
    violations.push({ file: path, line: 1, rule: "unknown-layer", detail: "src/ folder with no layer rule" });
  }
  if (layer !== undefined) {
    const code = stripSource(text, false);
    const lines = code.split("\n");
    lines.forEach((content, index) => {
      if (layer === "raft") {
        for (const word of raftBannedWords) {
          const escaped = word.replace(".", "\\.");
          if (new RegExp(`(?<![\\w$.])${escaped}(?![\\w$])`).test(content)) {
            violations.push({ file: path, line: index + 1, rule: "raft-purity", detail: `mentions ${word}` });
          }
        }
      }
      if (/(?:[:<,|&(]\s*|\bas\s+)any\b(?![\w$])|\bany\s*\[\]/.test(content)) {
        violations.push({ file: path, line: index + 1, rule: "any", detail: "uses the type any" });
      }
    });
  }
  return violations;
}

/**
 * Rules across files: src/raft may import only util modules that are themselves pure (no node:
 * import and no package, transitively), so the core stays deterministic.
 */
export function checkRaftUtilPurity(files: ReadonlyMap<string, string>): Violation[] {
  const violations: Violation[] = [];
  const impure = new Map<string, string>();
  const isImpure = (path: string, seen: Set<string>): string | undefined => {
    if (impure.has(path)) return impure.get(path);
    if (seen.has(path)) return undefined;
    seen.add(path);
    const text = files.get(path);
    if (text === undefined) return undefined;
    for (const { specifier } of importsOf(text)) {
      if (!specifier.startsWith(".")) {
        impure.set(path, `${path} imports "${specifier}"`);
        return impure.get(path);
      }
      const reason = isImpure(resolveRelative(path, specifier), seen);
      if (reason !== undefined) {
        impure.set(path, reason);
        return reason;
      }
    }
    return undefined;
  };
  for (const [path, text] of files) {
    if (layerOf(path) !== "raft") continue;
    for (const { specifier, line } of importsOf(text)) {
      if (!specifier.startsWith(".")) continue;
      const target = resolveRelative(path, specifier);
      if (layerOf(target) !== "util") continue;
      const reason = isImpure(target, new Set());
      if (reason !== undefined) {
        violations.push({ file: path, line, rule: "raft-purity", detail: `impure util: ${reason}` });
      }
    }
  }
  return violations;
}
