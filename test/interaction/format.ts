// Printing Raft values for interaction traces: one short line per message, entry and Ready part, so
// a trace reads like a protocol diagram and a behaviour change shows up as a small diff.
import {
  decodeConfChanges,
  type Entry,
  type Message,
  type RaftStatus,
  type Ready,
} from "../../src/raft/index.js";
import { text } from "../raft-harness/cluster.js";

/** An entry as `index/term` plus its payload: `"data"`, `""` (a no-op) or `conf(...)`. */
export function formatEntry(e: Entry): string {
  if (e.kind === "conf-change") {
    const d = decodeConfChanges(e.data);
    const body = d.ok ? d.changes.map((c) => `${c.type} ${c.node}`).join(", ") : `undecodable: ${d.reason}`;
    return `${e.index}/${e.term} conf(${body})`;
  }
  return `${e.index}/${e.term} ${JSON.stringify(text.decode(e.data))}`;
}

/** A message on one line: `from->to type tTERM details`. */
export function formatMessage(m: Message): string {
  const head = `${m.from}->${m.to} ${m.type} t${m.term}`;
  switch (m.type) {
    case "append": {
      const entries = m.entries.length === 0 ? "" : ` entries=[${m.entries.map(formatEntry).join(", ")}]`;
      return `${head} prev=${m.prevLogIndex}/${m.prevLogTerm} commit=${m.commitIndex}${entries}`;
    }
    case "append-response":
      return m.reject
        ? `${head} reject index=${m.index} hint=${m.hintIndex}/${m.hintTerm}`
        : `${head} index=${m.index}`;
    case "heartbeat":
      return `${head} commit=${m.commitIndex} read=${m.readRound}`;
    case "heartbeat-response":
      return `${head} read=${m.readRound}`;
    case "vote-request":
      return `${head}${m.preVote ? " pre" : ""}${m.transfer ? " transfer" : ""} last=${m.lastLogIndex}/${m.lastLogTerm}`;
    case "vote-response":
      return `${head}${m.preVote ? " pre" : ""} ${m.reject ? "rejected" : "granted"}`;
    case "snapshot": {
      const s = m.snapshot;
      return `${head} index=${s.index} term=${s.term} voters=${s.conf.voters.join(",")} learners=${s.conf.learners.join(",")}`;
    }
    case "timeout-now":
      return head;
    case "read-index":
      return `${head} ctx=${m.context}`;
    case "read-index-response":
      return `${head} ctx=${m.context} index=${m.index}`;
  }
}

/** A Ready batch, one line per item, each prefixed by the node id. */
export function formatReady(id: number, rd: Ready): string[] {
  const out: string[] = [];
  const p = `${id}:`;
  if (rd.softState !== undefined)
    out.push(`${p} role ${rd.softState.role} leader=${rd.softState.leaderId ?? "none"}`);
  if (rd.hardState !== undefined) {
    const h = rd.hardState;
    out.push(`${p} hard term=${h.term} vote=${h.votedFor ?? "none"} commit=${h.commitIndex}`);
  }
  if (rd.snapshot !== undefined)
    out.push(`${p} install snapshot index=${rd.snapshot.index} term=${rd.snapshot.term}`);
  for (const e of rd.entries) out.push(`${p} persist ${formatEntry(e)}`);
  for (const m of rd.messages) out.push(`${p} send ${formatMessage(m)}`);
  for (const m of rd.messagesAfterPersist) out.push(`${p} send-after-persist ${formatMessage(m)}`);
  for (const e of rd.committedEntries) out.push(`${p} apply ${formatEntry(e)}`);
  for (const r of rd.readStates) out.push(`${p} read-state ctx=${r.context} index=${r.index}`);
  return out;
}

/** A member's status: one summary line, then one line per peer (leaders only). */
export function formatStatus(s: RaftStatus): string[] {
  const out = [
    `${s.id}: ${s.role} term=${s.term} leader=${s.leaderId ?? "none"} vote=${s.votedFor ?? "none"} ` +
      `commit=${s.commitIndex} applied=${s.appliedIndex} last=${s.lastIndex} snapshot=${s.snapshotIndex} ` +
      `voters=${s.conf.voters.join(",")} learners=${s.conf.learners.join(",")}` +
      (s.leadTransferee === null ? "" : ` transferee=${s.leadTransferee}`),
  ];
  for (const p of s.peers) {
    out.push(
      `  peer ${p.id} ${p.voter ? "voter" : "learner"} match=${p.matchIndex} next=${p.nextIndex} ${p.state} ` +
        `inflight=${p.inflight} last-contact=${p.lastContactTick}`,
    );
  }
  return out;
}
