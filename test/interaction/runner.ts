// The interpreter for scripted interaction tests (test/interaction/*.txt). A script is a list of
// commands, each a line starting with "> ", followed by the output it printed; "#" lines are
// comments. Running a script re-executes every command on a fresh in-memory cluster and returns the
// script with the actual output, so a test compares texts and REWRITE=1 regenerates the file.
//
// Commands (ids are node numbers; a command without ids applies to every node):
//   new voters=1,2,3 [learners=4] [pre-vote] [check-quorum] [election=N] [heartbeat=N]
//       [append-bytes=N] [inflight=N] [seed=N]        a fresh cluster (bootstrap entries persisted)
//   add-node ID                  a new member with an empty configuration (joins via conf change)
//   set-log ID terms=T,T,.. term=N [commit=N]   crash ID and restart it with a crafted log
//   campaign ID..                start an election (pre-vote first when configured)
//   tick ID.. [n=N]              advance the logical clock (Readies wait for process-ready)
//   run [n=N] [quiet]            N rounds: every node ticks, then stabilize; quiet prints roles only
//   process-ready [ID..]         hand out and handle Ready batches (printed)
//   ready-hold ID / finish-ready ID   hand out a Ready and send its immediate messages, but hold
//                                its writes until finish-ready (a leader's disk write in flight)
//   deliver [F->T] [type=T] [n=N]   deliver matching queued messages (partitions drop them)
//   drop [F->T] [type=T] [n=N]   discard matching queued messages
//   pending                      list queued messages
//   stabilize                    process-ready + deliver until nothing moves
//   partition A B | C D, isolate ID, heal
//   propose ID DATA, propose-conf-change ID TYPE NODE, transfer-leadership ID TO,
//   read-index ID CTX, report-unreachable LEADER PEER, compact [ID..], crash ID.., restart ID..
//   status [ID..], log [ID..], applied [ID..]
import assert from "node:assert/strict";
import type { ConfChange, Message, NodeId, Ready } from "../../src/raft/index.js";
import { logIndex, nodeId } from "../../src/raft/index.js";
import { bytes } from "../raft-harness/cluster.js";
import { setLog } from "../raft-harness/fixtures.js";
import { Net } from "../raft-harness/net.js";
import { formatEntry, formatMessage, formatReady, formatStatus } from "./format.js";

/** A parsed command line: positional words and key=value options. */
interface Command {
  readonly name: string;
  readonly args: string[];
  readonly opts: Map<string, string>;
}

function parseCommand(line: string): Command {
  const words = line.trim().split(/\s+/);
  const [name = "", ...rest] = words;
  const args: string[] = [];
  const opts = new Map<string, string>();
  for (const w of rest) {
    const eq = w.indexOf("=");
    if (eq > 0) opts.set(w.slice(0, eq), w.slice(eq + 1));
    else args.push(w);
  }
  return { name, args, opts };
}

const ints = (s: string | undefined): number[] =>
  s === undefined || s === "" ? [] : s.split(",").map((x) => Number.parseInt(x, 10));

const int = (s: string | undefined, what: string): number => {
  const n = Number.parseInt(s ?? "", 10);
  assert.ok(Number.isSafeInteger(n), `expected a number for ${what}, got ${s}`);
  return n;
};

/** A filter like `1->2`, `->2` or `1->` (empty side = any), plus an optional message type. */
function messageFilter(cmd: Command): (m: Message) => boolean {
  const spec = cmd.args.find((a) => a.includes("->"));
  const [from, to] = spec === undefined ? ["", ""] : spec.split("->");
  const type = cmd.opts.get("type");
  return (m) =>
    (from === "" || from === undefined || m.from === Number(from)) &&
    (to === "" || to === undefined || m.to === Number(to)) &&
    (type === undefined || m.type === type);
}

/** Runs one script's commands; holds the cluster between them. */
class Interpreter {
  #net: Net | undefined;
  #out: string[] = [];
  #quiet = false;

  get net(): Net {
    assert.ok(this.#net !== undefined, "no cluster: start the script with `new`");
    return this.#net;
  }

  #onReady = (id: NodeId, rd: Ready): void => {
    if (!this.#quiet) this.#out.push(...formatReady(id, rd));
  };

  /** Executes one command and returns its output lines. */
  run(cmd: Command): string[] {
    this.#out = [];
    this.#exec(cmd);
    return this.#out;
  }

  #ids(cmd: Command): number[] {
    const ids = cmd.args.filter((a) => /^\d+$/.test(a)).map(Number);
    return ids.length > 0 ? ids : [...this.net.cluster.nodes.keys()];
  }

  #processReady(ids: number[]): boolean {
    let any = false;
    for (const id of ids) any = this.net.cluster.processReady(nodeId(id)) || any;
    return any;
  }

  #deliver(filter: (m: Message) => boolean, max: number): void {
    const net = this.net;
    const keep = [];
    let n = 0;
    const batch = net.pending;
    net.pending = [];
    for (const env of batch) {
      if (n < max && filter(env.msg)) {
        n++;
        const dropsBefore = net.dropped.length;
        net.deliverOne(env);
        if (net.dropped.length > dropsBefore) this.#out.push(`dropped ${formatMessage(env.msg)}`);
      } else {
        keep.push(env);
      }
    }
    net.pending = [...keep, ...net.pending];
  }

  #exec(cmd: Command): void {
    const out = this.#out;
    switch (cmd.name) {
      case "new": {
        this.#net = new Net({
          seed: int(cmd.opts.get("seed") ?? "1", "seed"),
          voters: ints(cmd.opts.get("voters")),
          learners: ints(cmd.opts.get("learners")),
          preVote: cmd.args.includes("pre-vote"),
          checkQuorum: cmd.args.includes("check-quorum"),
          electionTimeoutTicks: int(cmd.opts.get("election") ?? "10", "election"),
          heartbeatTicks: int(cmd.opts.get("heartbeat") ?? "1", "heartbeat"),
          appendBytesMax: int(cmd.opts.get("append-bytes") ?? "65536", "append-bytes"),
          inflightAppendsMax: int(cmd.opts.get("inflight") ?? "8", "inflight"),
          onReady: this.#onReady,
        });
        // Every member persists and applies its bootstrap configuration entry; not worth printing.
        this.#quiet = true;
        this.#processReady(this.#ids({ ...cmd, args: [] }));
        this.#quiet = false;
        out.push("ok");
        return;
      }
      case "add-node":
        for (const id of this.#ids(cmd)) this.net.addEmptyNode(id);
        out.push("ok");
        return;
      case "set-log": {
        const [id] = this.#ids(cmd);
        assert.ok(id !== undefined);
        // The bootstrap entry (index 1) stays; `terms` describe the entries from index 2 on.
        const commit = int(cmd.opts.get("commit") ?? "1", "commit");
        setLog(this.net, id, ints(cmd.opts.get("terms")), int(cmd.opts.get("term"), "term"), commit, true);
        out.push(
          ...this.net.cluster
            .raw(id)
            .entries(1, 1_000_000)
            .map((e) => `${id}: ${formatEntry(e)}`),
        );
        return;
      }
      case "campaign":
        for (const id of this.#ids(cmd)) this.net.cluster.raw(id).campaign();
        return;
      case "tick": {
        const n = int(cmd.opts.get("n") ?? "1", "n");
        for (const id of this.#ids(cmd)) this.net.tick(id, n);
        return;
      }
      case "run": {
        // Advances time: every member that is up ticks once, then the cluster stabilizes; `n` rounds.
        // With `quiet`, only role changes are printed.
        const n = int(cmd.opts.get("n") ?? "1", "n");
        const quiet = cmd.args.includes("quiet");
        for (let round = 0; round < n; round++) {
          for (const id of this.net.cluster.upIds()) this.net.tick(id);
          const before = out.length;
          this.#exec({ name: "stabilize", args: [], opts: new Map() });
          if (quiet) {
            const kept = out.splice(before).filter((l) => / role /.test(l));
            out.push(...kept);
          }
        }
        return;
      }
      case "ready-hold":
        // Hands out one Ready and sends its immediate messages, but holds its writes.
        for (const id of this.#ids(cmd)) this.net.cluster.beginReady(nodeId(id));
        return;
      case "finish-ready":
        // Completes a held Ready: persist, send messagesAfterPersist, apply, advance.
        for (const id of this.#ids(cmd)) this.net.cluster.finishReady(nodeId(id));
        return;
      case "process-ready":
        this.#processReady(this.#ids(cmd));
        return;
      case "deliver":
        this.#deliver(messageFilter(cmd), int(cmd.opts.get("n") ?? `${Number.MAX_SAFE_INTEGER}`, "n"));
        return;
      case "drop": {
        const f = messageFilter(cmd);
        const max = int(cmd.opts.get("n") ?? `${Number.MAX_SAFE_INTEGER}`, "n");
        let n = 0;
        this.net.pending = this.net.pending.filter((env) => {
          if (n >= max || !f(env.msg)) return true;
          n++;
          out.push(`dropped ${formatMessage(env.msg)}`);
          if (env.msg.type === "snapshot")
            this.net.cluster.nodes
              .get(env.msg.from)
              ?.raw?.reportSnapshot(env.msg.to, false, env.msg.snapshot.index);
          return false;
        });
        return;
      }
      case "pending":
        for (const env of this.net.pending) out.push(formatMessage(env.msg));
        return;
      case "stabilize":
        for (let round = 0; round < 1000; round++) {
          const any = this.#processReady([...this.net.cluster.nodes.keys()]);
          if (!any && this.net.pending.length === 0) {
            this.net.cluster.checkLogMatching();
            return;
          }
          this.#deliver(() => true, Number.MAX_SAFE_INTEGER);
        }
        assert.fail("stabilize did not converge");
        break;
      case "partition": {
        const groups: number[][] = [[]];
        for (const a of cmd.args) {
          if (a === "|") groups.push([]);
          else groups.at(-1)?.push(int(a, "node"));
        }
        this.net.partition(...groups);
        out.push("ok");
        return;
      }
      case "isolate":
        for (const id of this.#ids(cmd)) this.net.isolate(id);
        out.push("ok");
        return;
      case "heal":
        this.net.heal();
        out.push("ok");
        return;
      case "propose": {
        const [idStr, data = ""] = cmd.args;
        const r = this.net.cluster.raw(int(idStr, "node")).propose(bytes(data));
        out.push(r.ok ? `ok index=${r.index} term=${r.term}` : `refused ${JSON.stringify(r)}`);
        return;
      }
      case "propose-conf-change": {
        const [idStr, type, node] = cmd.args;
        const change = { type, node: nodeId(int(node, "node")) } as ConfChange;
        const r = this.net.cluster.raw(int(idStr, "node")).proposeConfChange(change);
        out.push(r.ok ? `ok index=${r.index} term=${r.term}` : `refused ${JSON.stringify(r)}`);
        return;
      }
      case "transfer-leadership": {
        const [from, to] = cmd.args;
        const r = this.net.cluster.raw(int(from, "node")).transferLeadership(nodeId(int(to, "node")));
        out.push(r.ok ? "ok" : `refused ${JSON.stringify(r)}`);
        return;
      }
      case "read-index": {
        const [idStr, ctx = ""] = cmd.args;
        const r = this.net.cluster.raw(int(idStr, "node")).readIndex(ctx);
        out.push(r.ok ? "ok" : `refused ${JSON.stringify(r)}`);
        return;
      }
      case "report-unreachable": {
        const [leader, peer] = cmd.args;
        this.net.cluster.raw(int(leader, "node")).reportUnreachable(nodeId(int(peer, "node")));
        return;
      }
      case "compact": {
        for (const id of this.#ids(cmd)) {
          const applied = this.net.cluster.node(id).app.appliedIndex;
          const ok = this.net.cluster.compact(id, logIndex(applied));
          out.push(`${id}: ${ok ? `compacted to ${applied}` : "nothing to compact"}`);
        }
        return;
      }
      case "crash":
        for (const id of this.#ids(cmd)) this.net.cluster.crash(id);
        out.push("ok");
        return;
      case "restart":
        for (const id of this.#ids(cmd)) this.net.cluster.restart(id);
        out.push("ok");
        return;
      case "status":
        for (const id of this.#ids(cmd)) out.push(...formatStatus(this.net.cluster.raw(id).status()));
        return;
      case "log":
        for (const id of this.#ids(cmd)) {
          const s = this.net.cluster.raw(id).status();
          const entries = this.net.cluster.raw(id).entries(s.snapshotIndex + 1, s.lastIndex + 1);
          out.push(
            `${id}: snapshot=${s.snapshotIndex} ${entries.length === 0 ? "(no entries)" : ""}`.trimEnd(),
          );
          for (const e of entries) out.push(`${id}:   ${formatEntry(e)}`);
        }
        return;
      case "applied":
        for (const id of this.#ids(cmd)) {
          const app = this.net.cluster.node(id).app;
          out.push(`${id}: applied=${app.appliedIndex} values=${JSON.stringify([...app.values.values()])}`);
        }
        return;
      default:
        assert.fail(`unknown command: ${cmd.name}`);
    }
  }
}

/** Runs a script and returns it with every command's actual output in place of the recorded one. */
export function runScript(source: string): string {
  const interp = new Interpreter();
  const out: string[] = [];
  const lines = source.split("\n");
  if (lines.at(-1) === "") lines.pop();
  let k = 0;
  while (k < lines.length) {
    const line = lines[k] ?? "";
    k++;
    if (!line.startsWith("> ")) {
      if (line === "" || line.startsWith("#")) out.push(line);
      // Any other line is recorded output of the previous command: replaced below.
      continue;
    }
    out.push(line);
    let produced: string[];
    try {
      produced = interp.run(parseCommand(line.slice(2)));
    } catch (err) {
      produced = [`error: ${err instanceof Error ? err.message.split("\n")[0] : String(err)}`];
    }
    out.push(...produced);
  }
  return `${out.join("\n")}\n`;
}
