// Safety of the runtime around the core, one scripted member at a time: each test writes the exact
// interleaving of peer messages, held disk writes and clock ticks that a bug needed (see
// test/support/scripted-group.ts), so each fails deterministically without its fix.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { describe, it } from "node:test";
import { GroupSnapshots, snapshotChunkBytesMax } from "../../../src/node/group-snapshots.js";
import { NodeError } from "../../../src/node/node-error.js";
import { encodeSnapshotStream } from "../../../src/node/snapshot-stream.js";
import { logIndex, nodeId, type SnapshotMeta, term } from "../../../src/raft/index.js";
import { CairnError } from "../../../src/service/errors.js";
import { MemoryStateStore } from "../../../src/storage/memory-state-store.js";
import { SimFileSystem } from "../../../src/storage/sim-file-system.js";
import { SnapshotStore } from "../../../src/storage/snapshot-store.js";
import { AssertionError } from "../../../src/util/assert.js";
import { utf8 } from "../../../src/util/bytes.js";
import { Prng } from "../../../src/util/prng.js";
import {
  appendAck,
  electMember1,
  fromPeer,
  GatedStorage,
  heartbeat,
  openScripted,
  ScriptedStateMachine,
  scriptedGroupId,
  sentMessages,
  settled,
} from "../../support/scripted-group.js";
import { waitFor } from "../../support/wait-for.js";

describe("RaftGroup: snapshot messages never leave without their data", () => {
  it("streams a snapshot message the core held back until a term change was durable", async () => {
    // Member 1 restarts from a snapshot at index 5 (its log holds nothing below 6), so a follower
    // that has nothing needs the snapshot.
    const meta: SnapshotMeta = {
      index: logIndex(5),
      term: term(1),
      conf: { voters: [1, 2, 3].map(nodeId), learners: [] },
    };
    const snapshots = new GroupSnapshots(
      await SnapshotStore.open(new SimFileSystem(new Prng(7)), "/snapshots", {
        chunkBytesMax: snapshotChunkBytesMax,
      }),
      new MemoryStateStore(),
      scriptedGroupId,
    );
    await snapshots.store(meta, (async function* () {})());
    const storage = new GatedStorage();
    storage.hardState = { term: term(1), votedFor: null, commitIndex: logIndex(5) };
    storage.snapshot = meta;
    const member = await openScripted({
      storage,
      stateMachine: new ScriptedStateMachine(5),
      snapshots,
    });
    await electMember1(member, 2);
    assert.equal(member.group.softState.role, "leader");

    // While a write is on its way to disk, follower 3 says it holds nothing (the leader must send
    // the snapshot) and member 2 turns up in term 3 (the leader steps down): both land in the
    // next Ready, whose term change makes the core hold the snapshot message until it is durable.
    storage.hold();
    const write = member.group.propose(utf8("x")).catch(() => undefined);
    await settled();
    assert.equal(storage.waiting, 1, "the write is held at the disk");
    member.group.receive(
      fromPeer(3, 1, 2, {
        type: "append-response",
        reject: true,
        index: logIndex(5),
        hintIndex: logIndex(0),
        hintTerm: term(0),
        entriesLost: false,
      }),
    );
    member.group.receive(heartbeat(2, 1, 3, 6));
    storage.release();
    await settled();
    await write;

    assert.equal(member.group.softState.role, "follower");
    assert.deepEqual(
      sentMessages(member).filter((m) => m.type === "snapshot"),
      [],
      "no snapshot message went out without its data",
    );
    assert.deepEqual(
      member.snapshotsSent.map((m) => [m.to, m.snapshot.index]),
      [[3, 5]],
      "the snapshot went to follower 3 through the snapshot sender",
    );
  });
});

describe("RaftGroup: retention never deletes a snapshot the group still needs", () => {
  const conf = { voters: [1, 2, 3].map(nodeId), learners: [] };
  const metaAt = (index: number): SnapshotMeta => ({ index: logIndex(index), term: term(1), conf });
  const empty = async function* (): AsyncGenerator<Uint8Array> {};

  it("keeps a received snapshot from retention until the core has installed it", async () => {
    const files = await SnapshotStore.open(new SimFileSystem(new Prng(7)), "/snapshots", { retainMax: 1 });
    const snapshots = new GroupSnapshots(files, new MemoryStateStore(), scriptedGroupId);
    const member = await openScripted({ snapshots });
    // Leader 2's first heartbeat changes the term: that write is held at the disk, so the ready
    // loop cannot take the next Ready (the one that installs the snapshot) yet.
    member.storage.hold();
    member.group.receive(heartbeat(2, 1, 1, 0));
    await settled();
    assert.equal(member.storage.waiting, 1, "the term change is held at the disk");
    const message = fromPeer(2, 1, 1, { type: "snapshot", snapshot: metaAt(10) });
    if (message.type !== "snapshot") throw new Error("unreachable");
    await member.group.receiveSnapshot(message, encodeSnapshotStream(empty()));
    assert.equal(member.group.status().snapshotIndex, 10, "the core took the snapshot");
    // Before the install, a newer snapshot is committed beside it (a second one received, or a
    // capture): with one file retained, retention would delete the one the core is waiting for.
    await new GroupSnapshots(files, new MemoryStateStore(), scriptedGroupId).store(metaAt(20), empty());
    member.storage.release();
    await settled();
    await waitFor("the install", () => member.group.status().appliedIndex === 10 || member.fatal.length > 0);
    assert.deepEqual(member.fatal, [], "the install found its file");
    assert.equal(member.group.status().appliedIndex, 10);
  });

  it("keeps the snapshot the log is compacted to, which lagging followers are sent", async () => {
    const files = await SnapshotStore.open(new SimFileSystem(new Prng(7)), "/snapshots", { retainMax: 1 });
    const snapshots = new GroupSnapshots(files, new MemoryStateStore(), scriptedGroupId);
    await snapshots.store(metaAt(5), empty());
    // Member 1 restarts from the snapshot at 5 with entries 6..8 committed after it.
    const storage = new GatedStorage();
    storage.hardState = { term: term(1), votedFor: null, commitIndex: logIndex(8) };
    storage.snapshot = metaAt(5);
    storage.entries = [6, 7, 8].map((index) => ({
      index: logIndex(index),
      term: term(1),
      kind: "normal" as const,
      data: utf8("x"),
    }));
    const member = await openScripted({ storage, stateMachine: new ScriptedStateMachine(8), snapshots });
    // A leader's snapshot at 7 arrives; the core already holds entry 7 and refuses it, but the file
    // was stored and is the newest: it must not push the base at 5 out of retention.
    const message = fromPeer(2, 1, 1, { type: "snapshot", snapshot: metaAt(7) });
    if (message.type !== "snapshot") throw new Error("unreachable");
    await member.group.receiveSnapshot(message, encodeSnapshotStream(empty()));
    assert.equal(member.group.status().snapshotIndex, 5, "the core refused the snapshot");
    await new GroupSnapshots(files, new MemoryStateStore(), scriptedGroupId).store(metaAt(7), empty());

    // Member 1 leads term 2; follower 3 holds nothing, so it needs the snapshot at 5.
    await electMember1(member, 2);
    member.group.receive(
      fromPeer(3, 1, 2, {
        type: "append-response",
        reject: true,
        index: logIndex(8),
        hintIndex: logIndex(0),
        hintTerm: term(0),
        entriesLost: false,
      }),
    );
    await waitFor("the snapshot send", () => member.snapshotsSent.length > 0 || member.fatal.length > 0);
    assert.deepEqual(
      member.snapshotsSent.map((m) => [m.to, m.snapshot.index]),
      [[3, 5]],
    );
  });
});

describe("RaftGroup: a deposed leader answers what committed, and fails only what may not have", () => {
  it("resolves the removal of the leader itself, which deposes it in the step that commits it", async () => {
    const member = await openScripted();
    await electMember1(member, 1);
    member.group.receive(appendAck(2, 1, 1, 2));
    await settled();
    // Raft dissertation §4.2.2: the removed leader manages the cluster until its removal commits
    // (on a majority of the new configuration, 2 and 3), then steps down in that same step.
    const removal = member.group.proposeConfChange({ type: "remove", node: nodeId(1) });
    await settled();
    member.group.receive(appendAck(2, 1, 1, 3));
    member.group.receive(appendAck(3, 1, 1, 3));
    await settled();
    assert.equal(member.group.softState.role, "follower");
    await removal;
    assert.deepEqual(member.group.status().conf.voters, [2, 3]);
  });

  it("answers a write that committed in the step that deposed the leader, and times out the rest", async () => {
    const member = await openScripted();
    await electMember1(member, 1);
    member.group.receive(appendAck(2, 1, 1, 2));
    await settled();
    const committed = member.group.propose(utf8("x"));
    await settled();
    // While the next write is on its way to disk, member 2 acknowledges the first (it commits)
    // and member 3 leads term 2 (this one steps down): both reach one Ready.
    member.storage.hold();
    const uncommitted = member.group.propose(utf8("y")).then(
      () => undefined,
      (error: unknown) => error,
    );
    await settled();
    member.group.receive(appendAck(2, 1, 1, 3));
    member.group.receive(heartbeat(3, 1, 2, 3));
    member.storage.release();
    await settled();
    assert.equal(member.group.softState.role, "follower");
    assert.equal(await committed, "applied 3");
    const failure = await uncommitted;
    assert.ok(failure instanceof NodeError && failure.code === "ERR_TIMEOUT", "the write above the commit");
  });
});

describe("RaftGroup: a broken invariant crashes; a storage failure stops the group", () => {
  /** Member 1 as the only voter, leading term 1 with its no-op applied. */
  async function soleLeader(stateMachine: ScriptedStateMachine) {
    const member = await openScripted({ voters: [1], stateMachine });
    member.group.campaign();
    await settled();
    assert.equal(member.group.softState.role, "leader");
    return member;
  }

  /** What a call answers: "ok", or the code of the error it threw or rejected with. */
  async function outcomeOf(call: () => unknown): Promise<string> {
    try {
      await call();
      return "ok";
    } catch (error) {
      return error instanceof NodeError || error instanceof CairnError ? error.code : String(error);
    }
  }

  it("hands an assertion from apply to the crash hook, never to onFatal as a storage failure", async () => {
    const stateMachine = new ScriptedStateMachine();
    const broken = new AssertionError("applied index moved backwards");
    stateMachine.onApply = (entry) => {
      if (new TextDecoder().decode(entry.data) === "boom") throw broken;
    };
    const member = await soleLeader(stateMachine);
    const write = outcomeOf(() => member.group.propose(utf8("boom")));
    await settled();
    assert.deepEqual(member.crashed, [broken], "the very AssertionError reached the crash hook");
    assert.deepEqual(member.fatal, [], "not reported as a storage failure");
    assert.equal(await write, "ERR_INTERNAL");
    assert.equal(await outcomeOf(() => member.group.propose(utf8("next"))), "ERR_INTERNAL");
    assert.equal(await outcomeOf(() => member.group.readBarrier()), "ERR_INTERNAL");
    assert.equal(await outcomeOf(() => member.group.staleness()), "ERR_INTERNAL", "no stale reads either");
  });

  it("crashes the process with the default crash hook", async () => {
    const child = spawn(process.execPath, ["--import", "tsx", "test/unit/node/fixtures/broken-apply.ts"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const [code] = (await once(child, "close")) as [number | null];
    assert.notEqual(code, 0, `the process died (stdout: ${stdout})`);
    assert.match(stderr, /AssertionError: applied index moved backwards/);
    assert.doesNotMatch(stdout, /survived/);
  });

  it("stops the group on a storage failure (fail-stop) and refuses stale reads from then on", async () => {
    const member = await soleLeader(new ScriptedStateMachine());
    const failure = Object.assign(new Error("fdatasync failed: EIO"), { code: "ERR_STORAGE_FAILED" });
    member.storage.failWith = failure;
    const write = outcomeOf(() => member.group.propose(utf8("x")));
    await settled();
    assert.deepEqual(member.fatal, [failure]);
    assert.deepEqual(member.crashed, []);
    assert.equal(await write, "ERR_STORAGE_FAILED");
    assert.equal(await outcomeOf(() => member.group.staleness()), "ERR_STORAGE_FAILED");
  });

  it("refuses stale reads once stopped", async () => {
    const member = await soleLeader(new ScriptedStateMachine());
    assert.equal(await outcomeOf(() => member.group.staleness()), "ok");
    await member.group.stop();
    assert.equal(await outcomeOf(() => member.group.staleness()), "ERR_SHUTTING_DOWN");
  });
});

describe("RaftGroup: ReadIndex contexts name the run of the group", () => {
  it("does not release a read after a restart with a late answer to a read from before it", async () => {
    const storage = new GatedStorage();
    const before = await openScripted({ storage, seed: 1 });
    before.group.receive(heartbeat(2, 1, 1, 1));
    await settled();
    const unanswered = before.group.readBarrier().catch(() => undefined);
    await settled();
    const oldRequest = sentMessages(before).find((m) => m.type === "read-index");
    assert.ok(oldRequest?.type === "read-index", "the follower asked its leader");
    await before.group.stop();
    await unanswered;

    const after = await openScripted({ storage, seed: 2 });
    after.group.receive(heartbeat(2, 1, 1, 1));
    await settled();
    let released = false;
    const read = after.group.readBarrier().then(() => {
      released = true;
    });
    await settled();
    const newRequest = sentMessages(after).find((m) => m.type === "read-index");
    assert.ok(newRequest?.type === "read-index");

    // The leader's answer to the old read arrives now, at an index this member has applied.
    const answer = (context: string) =>
      fromPeer(2, 1, 1, { type: "read-index-response", context, index: logIndex(1) });
    after.group.receive(answer(oldRequest.context));
    await settled();
    assert.equal(released, false, "an answer to another run's read proves nothing about this one");
    after.group.receive(answer(newRequest.context));
    await read;
    assert.equal(released, true);
  });
});

describe("RaftGroup: stale reads say how long ago a leader was in contact", () => {
  it("counts a leader's age from its last quorum acknowledgement, through and after check-quorum", async () => {
    const member = await openScripted({ checkQuorum: true });
    await electMember1(member, 1);
    assert.equal(member.group.leaderContactAgeMs(), 0, "just elected by a quorum");
    await member.env.advance(30);
    member.group.receive(fromPeer(2, 1, 1, { type: "heartbeat-response", readRound: 0 }));
    await member.env.advance(50);
    // Cut off since: still leader until check-quorum notices, but its answers are 50 ms old.
    assert.equal(member.group.softState.role, "leader");
    assert.equal(member.group.leaderContactAgeMs(), 50);
    assert.equal(member.group.staleness().leaderContactAgeMs, 50);
    // Check-quorum deposes it after an election timeout without a quorum (10 ticks of 10 ms).
    await member.env.advance(170);
    assert.equal(member.group.softState.role, "follower");
    assert.equal(member.group.leaderContactAgeMs(), 220, "deposed, it still counts from the quorum's answer");
    // A new leader's heartbeat is contact again.
    member.group.receive(heartbeat(3, 1, 2, 2));
    await settled();
    assert.equal(member.group.leaderContactAgeMs(), 0);
  });

  it("reports whole milliseconds, as the HTTP API's schema promises (found by the fault suite)", async () => {
    const member = await openScripted({ checkQuorum: true });
    await electMember1(member, 1);
    await member.env.advance(12.75);
    assert.equal(member.group.leaderContactAgeMs(), 12);
    member.group.receive(heartbeat(3, 1, 2, 2));
    await settled();
    await member.env.advance(0.5);
    assert.equal(member.group.staleness().leaderContactAgeMs, 0);
  });
});
