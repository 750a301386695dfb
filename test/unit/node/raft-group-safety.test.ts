// Safety of the runtime around the core, one scripted member at a time: each test writes the exact
// interleaving of peer messages, held disk writes and clock ticks that a bug needed (see
// test/support/scripted-group.ts), so each fails deterministically without its fix.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { GroupSnapshots, snapshotChunkBytesMax } from "../../../src/node/group-snapshots.js";
import { logIndex, nodeId, type SnapshotMeta, term } from "../../../src/raft/index.js";
import { MemoryStateStore } from "../../../src/storage/memory-state-store.js";
import { SimFileSystem } from "../../../src/storage/sim-file-system.js";
import { SnapshotStore } from "../../../src/storage/snapshot-store.js";
import { utf8 } from "../../../src/util/bytes.js";
import { Prng } from "../../../src/util/prng.js";
import {
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
