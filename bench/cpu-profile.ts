// Reads a V8 CPU profile (`--cpu-prof`) and says where a process's time went while a load point
// ran: per layer of the code (Node's HTTP server, fastify, Cairn's services, Raft, ...) and per
// function, as microseconds per operation. Only samples inside the measured window count; idle
// samples do not. The sampler runs on wall time: on a shared machine a process that waits for the
// CPU is charged to whatever it was running, so read the figures as shares, not as CPU time.

/** The parts of a `.cpuprofile` file this reads. */
interface CpuProfile {
  readonly nodes: readonly {
    readonly id: number;
    readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
    readonly children?: readonly number[];
  }[];
  readonly startTime: number;
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

/** Time per operation in one process, by layer and by function (self time: callees excluded). */
export interface ProfileSummary {
  /** Microseconds per operation the process was busy (idle excluded). */
  readonly busyMicrosPerOp: number;
  readonly layers: ReadonlyMap<string, number>;
  readonly functions: ReadonlyMap<string, number>;
}

/**
 * The layer a frame belongs to, by its script: Cairn's folders under dist/, the npm packages on
 * the request path grouped under "http framework", Node's HTTP and stream internals, and the
 * native frames (socket writes above all) by name.
 */
export function layerOf(functionName: string, url: string): string {
  if (url === "") {
    if (functionName === "(garbage collector)") return "garbage collection";
    if (functionName === "writev" || functionName === "writeBuffer" || functionName === "writeUtf8String")
      return "native: socket writes";
    if (functionName.startsWith("(")) return `V8 ${functionName}`;
    return "native: other";
  }
  const cairn = /\/dist\/([a-z-]+)\//.exec(url);
  if (cairn !== null) return `cairn ${cairn[1]}`;
  const npm = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (npm !== null) {
    const name = npm[1] ?? "";
    const framework = ["fastify", "find-my-way", "secure-json-parse", "fast-json-stringify", "typebox"];
    if (framework.includes(name) || name.startsWith("@fastify/")) return "http framework (fastify, typebox)";
    return `npm ${name}`;
  }
  if (/^node:(internal\/)?(_http|http)/.test(url)) return "node http";
  if (/^node:(internal\/)?(net|stream|streams|tls|_tls)/.test(url)) return "node net and streams";
  if (url.startsWith("node:")) return "node other";
  return "other";
}

/**
 * Sums the samples of `profile` taken between `fromMicros` and `toMicros` (the monotonic clock
 * that `process.hrtime` reads, which V8's profile timestamps use on Linux), per `ops` operations.
 */
export function summarizeProfile(
  profile: CpuProfile,
  window: { readonly fromMicros: number; readonly toMicros: number },
  ops: number,
): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const layers = new Map<string, number>();
  const functions = new Map<string, number>();
  let busy = 0;
  let at = profile.startTime;
  profile.samples.forEach((id, i) => {
    const delta = profile.timeDeltas[i] ?? 0;
    at += delta;
    const node = byId.get(id);
    if (node === undefined || at < window.fromMicros || at > window.toMicros) return;
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === "(idle)") return;
    busy += delta;
    const layer = layerOf(functionName, url);
    layers.set(layer, (layers.get(layer) ?? 0) + delta);
    const where = url === "" ? "" : ` ${url.replace(/^.*\/(dist|node_modules)\//, "")}:${lineNumber + 1}`;
    const name = `${functionName || "(anonymous)"}${where}`;
    functions.set(name, (functions.get(name) ?? 0) + delta);
  });
  const perOp = (m: Map<string, number>) =>
    new Map([...m].map(([k, v]) => [k, v / ops] as const).sort((a, b) => b[1] - a[1]));
  return { busyMicrosPerOp: busy / ops, layers: perOp(layers), functions: perOp(functions) };
}
