// After the heal: every Cairn node must reach the same applied index and hold the same state there.
// Each node's state is read from its own copy (consistency=stale): every key with its revisions,
// every stream's settings and messages, every consumer group's counters. Cairn has no state-hash
// endpoint yet, so the reads themselves are compared.
import { waitFor } from "../support/wait-for.js";
import { localRead, readWhole } from "./cairn-stream-target.js";
import { field } from "./http.js";

/** One node's applied and commit index. */
async function indexes(url: string): Promise<{ applied: number; commit: number } | undefined> {
  try {
    const body = await localRead(url, "/v1/cluster");
    const applied = field(body, "appliedIndex");
    const commit = field(body, "commitIndex");
    return typeof applied === "number" && typeof commit === "number" ? { applied, commit } : undefined;
  } catch {
    return undefined;
  }
}

/** Group fields that every replica must agree on (`consumers` holds overdue counts by local clock). */
const groupFields = [
  "name",
  "config",
  "nextSeq",
  "ackFloor",
  "pending",
  "delivered",
  "acked",
  "deadLettered",
];

/** Everything one node holds, read from its local state, as named sections of canonical JSON. */
async function stateOf(url: string): Promise<Map<string, string>> {
  const sections = new Map<string, string>();
  const items: unknown[] = [];
  let after: string | undefined;
  for (let page = 0; page < 1_000; page++) {
    const body = await localRead(
      url,
      `/v1/kv?prefix=&limit=1000&consistency=stale${after === undefined ? "" : `&after=${after}`}`,
    );
    const list = field(body, "items");
    if (Array.isArray(list)) items.push(...list);
    const next = field(body, "next");
    if (typeof next !== "string") break;
    after = next;
  }
  sections.set("keys", JSON.stringify(items));
  const streams = field(await localRead(url, "/v1/streams?consistency=stale"), "streams");
  sections.set("streams", JSON.stringify(streams));
  for (const stream of Array.isArray(streams) ? streams : []) {
    const name = String(field(stream, "name"));
    const messages = await readWhole(name, "stale", (path) => localRead(url, path));
    sections.set(`stream ${name}`, JSON.stringify(messages));
    const groups = field(await localRead(url, `/v1/streams/${name}/groups?consistency=stale`), "groups");
    const agreed = (Array.isArray(groups) ? groups : []).map((g) =>
      Object.fromEntries(groupFields.map((f) => [f, field(g, f)])),
    );
    sections.set(`groups of ${name}`, JSON.stringify(agreed));
  }
  return sections;
}

/**
 * Waits until every node applied the same index, the leader's commit index, then compares the
 * nodes' states. Returns the problems found (none when the nodes converged).
 */
export async function checkConvergence(urls: readonly string[]): Promise<string[]> {
  let lastSeen = "";
  for (let attempt = 0; attempt < 10; attempt++) {
    let applied: number | undefined;
    try {
      await waitFor(
        "every node to apply everything committed",
        async () => {
          const all = await Promise.all(urls.map(indexes));
          lastSeen = JSON.stringify(all);
          const first = all[0];
          if (first === undefined || all.some((x) => x === undefined)) return false;
          const maxCommit = Math.max(...all.map((x) => x?.commit ?? 0));
          if (!all.every((x) => x?.applied === first.applied) || first.applied !== maxCommit) return false;
          applied = first.applied;
          return true;
        },
        { timeoutMs: 60_000, intervalMs: 200 },
      );
    } catch {
      return [`the nodes did not converge to one applied index within a minute after the heal: ${lastSeen}`];
    }
    const states = await Promise.all(urls.map(stateOf));
    // Something may have been applied while the states were read (the leader's housekeeping): try again.
    const after = await Promise.all(urls.map(indexes));
    if (!after.every((x) => x?.applied === applied)) continue;
    const [first, ...rest] = states;
    const problems: string[] = [];
    rest.forEach((state, i) => {
      for (const [section, json] of first ?? []) {
        if (state.get(section) !== json) {
          problems.push(
            `node ${urls[i + 1]} differs from ${urls[0]} at applied index ${applied} in ${section}: ` +
              `${(state.get(section) ?? "(missing)").slice(0, 300)} vs ${json.slice(0, 300)}`,
          );
        }
      }
      for (const section of state.keys()) {
        if (!first?.has(section)) problems.push(`node ${urls[i + 1]} has ${section}, ${urls[0]} does not`);
      }
    });
    return problems;
  }
  return ["the nodes kept applying entries while their states were read (10 tries)"];
}
