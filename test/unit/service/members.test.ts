// The member registry never hands a node id out twice: a removed member's id stays retired (its
// certificate, named node-<id>, still authenticates it), a join after removing the highest id gets
// a fresh one, a retired id cannot be registered again, and a retired id outside the configuration
// is not a peer, so the transport refuses the removed node. Applied through envelopes, as the log
// applies them.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  listMembers,
  type MemberCommand,
  type MemberRecord,
  nextMemberId,
  reachableMembers,
} from "../../../src/service/cluster/members.js";
import { type ApplyOutcome, applyEnvelope } from "../../../src/service/command.js";
import { MemoryState } from "../../../src/service/state.js";

const member = (id: number): MemberRecord => ({ id, name: `n${id}`, peerAddress: `127.0.0.1:${7000 + id}` });

function apply(s: MemoryState, command: MemberCommand): ApplyOutcome {
  return applyEnvelope(s, { tsMs: 1, command: { service: "members", command } });
}

const refused = (outcome: ApplyOutcome): boolean => outcome.ok && !outcome.result.ok;

/** Four registered members; member 4 (the highest id) was then removed. */
function afterRemovingHighest(): MemoryState {
  const s = new MemoryState();
  for (const id of [1, 2, 3, 4]) apply(s, { type: "register", member: member(id) });
  apply(s, { type: "unregister", id: 4 });
  return s;
}

describe("member ids", () => {
  it("a join after removing the highest id gets a new id, not the removed one", () => {
    const s = afterRemovingHighest();
    assert.equal(nextMemberId(s, [1, 2, 3]), 5);
    assert.deepEqual(
      listMembers(s).map((m) => m.id),
      [1, 2, 3],
    );
  });

  it("a removed id is never registered again, under its old name or another", () => {
    const s = afterRemovingHighest();
    assert.ok(refused(apply(s, { type: "register", member: member(4) })));
    assert.ok(refused(apply(s, { type: "register", member: { ...member(4), name: "other" } })));
    // The name itself is free again, under a new id.
    assert.ok(!refused(apply(s, { type: "register", member: { ...member(5), name: "n4" } })));
  });

  it("two joins racing for one id: the second is refused, not written over the first", () => {
    const s = new MemoryState();
    apply(s, { type: "register", member: member(4) });
    assert.ok(refused(apply(s, { type: "register", member: { ...member(4), name: "n9" } })));
    assert.equal(listMembers(s)[0]?.name, "n4");
    // A retried join of the same member is answered as the first was.
    assert.ok(!refused(apply(s, { type: "register", member: member(4) })));
  });

  it("an id retired before it was ever registered (a bootstrap member) is not handed out either", () => {
    const s = new MemoryState();
    apply(s, { type: "unregister", id: 3 });
    assert.equal(nextMemberId(s, [1, 2]), 4);
    assert.ok(refused(apply(s, { type: "register", member: member(3) })));
  });

  it("a removed member stays reachable until its removal commits, then never again", () => {
    const s = afterRemovingHighest();
    const known = [1, 2, 3].map(member);
    const peers = (conf: number[]) => reachableMembers(s, new Set(conf), known).map((m) => m.id);
    assert.deepEqual(peers([1, 2, 3, 4]), [1, 2, 3, 4], "retired, but its removal is not in force yet");
    assert.deepEqual(peers([1, 2, 3]), [1, 2, 3], "a removed member is no peer: its certificate is refused");
  });
});
