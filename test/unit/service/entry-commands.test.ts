// Many commands per Raft entry: the entry format (version 2) round-trips, an entry of one command
// stays the version-1 envelope every release wrote (so old WALs replay), malformed bytes fail only
// with DecodeError; the state machine applies an entry's commands one by one with a result each and
// ends in the same state as entries of one command each; and the batcher puts the commands of one
// turn of the event loop into one entry, within its limits, answering each with its own outcome.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import type { RaftGroup } from "../../../src/node/index.js";
import { type Entry, logIndex, term } from "../../../src/raft/index.js";
import {
  decodeEntryCommands,
  type EntryOutcome,
  type Envelope,
  encodeEntryCommands,
  encodeEnvelope,
} from "../../../src/service/command.js";
import { CommandBatcher } from "../../../src/service/command-batcher.js";
import { MemoryBackend, ServiceStateMachine } from "../../../src/service/state-machine.js";
import { DecodeError, utf8 } from "../../../src/util/bytes.js";
import { describeServiceState } from "../../sim/runtime-cluster.js";

const put = (key: string, value: string, tsMs: number, idempotencyKey?: string): Envelope => ({
  tsMs,
  ...(idempotencyKey !== undefined ? { idempotencyKey } : {}),
  command: { service: "kv", command: { type: "put", key: utf8(key), value: utf8(value) } },
});
const entry = (index: number, data: Uint8Array): Entry => ({
  index: logIndex(index),
  term: term(1),
  kind: "normal",
  data,
});
const dump = (backend: MemoryBackend) => describeServiceState(backend.reader);

describe("entry of several commands", () => {
  it("round-trips, in order", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(fc.string(), fc.option(fc.string({ minLength: 1, maxLength: 9 }), { nil: undefined })),
          {
            minLength: 1,
            maxLength: 20,
          },
        ),
        (items) => {
          const envelopes = items.map(([value, key], i) => put(`k${i}`, value, 1000 + i, key));
          const data = encodeEntryCommands(envelopes.map(encodeEnvelope));
          assert.deepEqual(decodeEntryCommands(data), envelopes);
        },
      ),
    );
  });

  it("of one command is the version-1 envelope itself, which old logs hold", () => {
    const one = encodeEnvelope(put("a", "1", 5));
    assert.equal(encodeEntryCommands([one]), one);
    assert.deepEqual(decodeEntryCommands(one), [put("a", "1", 5)]);
  });

  it("fails only with DecodeError on arbitrary bytes, and refuses an unknown version", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        try {
          decodeEntryCommands(bytes);
        } catch (error) {
          assert.ok(error instanceof DecodeError, String(error));
        }
      }),
    );
    assert.throws(() => decodeEntryCommands(new Uint8Array([3, 0, 0])), DecodeError);
    // A count the bytes cannot hold is refused before anything is read.
    assert.throws(() => decodeEntryCommands(new Uint8Array([2, 0xff, 0xff, 0x03, 1])), DecodeError);
  });

  it("applies each command with its own result, and ends in the state of one entry per command", async () => {
    const envelopes = [
      put("a", "1", 100, "k1"),
      put("b", "2", 101),
      put("a", "1", 102, "k1"), // a retry within the entry: answered from the table
      put("a", "3", 103, "k1"), // the same key for another command: refused on its own
    ];
    const batched = new MemoryBackend();
    const [outcomes] = await new ServiceStateMachine(batched).apply([
      entry(1, encodeEntryCommands(envelopes.map(encodeEnvelope))),
    ]);
    assert.ok(outcomes !== undefined && outcomes.length === 4);
    assert.deepEqual(
      outcomes.map((o) => (o.ok ? (o.duplicate ? "duplicate" : o.result.kind) : o.code)),
      ["kv.put", "kv.put", "duplicate", "ERR_IDEMPOTENCY_KEY_REUSED"],
    );
    const single = new MemoryBackend();
    const machine = new ServiceStateMachine(single);
    for (const [i, e] of envelopes.entries()) await machine.apply([entry(i + 1, encodeEnvelope(e))]);
    assert.equal(dump(batched), dump(single));
  });
});

/** A group that records what was proposed and applies nothing until told. */
function recordingGroup() {
  const proposed: Uint8Array[] = [];
  const answers: ((outcomes: EntryOutcome) => void)[] = [];
  const group = {
    proposeWithIndex(data: Uint8Array) {
      proposed.push(data);
      return new Promise<{ result: EntryOutcome; index: ReturnType<typeof logIndex> }>((resolve) => {
        const index = logIndex(proposed.length);
        answers.push((result) => resolve({ result, index }));
      });
    },
  } satisfies Pick<RaftGroup<EntryOutcome>, "proposeWithIndex">;
  return { group, proposed, answers };
}

const turn = () => new Promise((resolve) => setImmediate(resolve));

describe("CommandBatcher", () => {
  it("proposes the commands of one turn as one entry and answers each with its own outcome", async () => {
    const { group, proposed, answers } = recordingGroup();
    const batcher = new CommandBatcher(group, setImmediate);
    const waits = ["a", "b", "c"].map((k, i) => batcher.propose(encodeEnvelope(put(k, k, i))));
    await turn();
    assert.equal(proposed.length, 1);
    assert.deepEqual(
      decodeEntryCommands(proposed[0] ?? new Uint8Array()).map((e) => e.tsMs),
      [0, 1, 2],
    );
    const outcomes: EntryOutcome = [0, 1, 2].map(() => ({
      ok: false,
      code: "ERR_IDEMPOTENCY_KEY_REUSED",
      message: "m",
    }));
    answers[0]?.(outcomes);
    const answered = await Promise.all(waits);
    assert.deepEqual(
      answered.map((a) => [a.outcome, a.index]),
      outcomes.map((o) => [o, 1]),
    );
  });

  it("splits a turn at entryCommandsMax and entryBytesMax; one command is a plain envelope", async () => {
    const { group, proposed } = recordingGroup();
    const batcher = new CommandBatcher(group, setImmediate, {
      entryCommandsMax: 2,
      entryBytesMax: 1000,
      commandsPendingMax: 100,
    });
    for (let i = 0; i < 5; i++) void batcher.propose(encodeEnvelope(put(`k${i}`, "v", i)));
    await turn();
    assert.deepEqual(
      proposed.map((d) => decodeEntryCommands(d).length),
      [2, 2, 1],
    );
    assert.equal(proposed[2]?.[0], 1, "a lone command goes as a version-1 envelope");
    const big = "x".repeat(600);
    for (let i = 0; i < 3; i++) void batcher.propose(encodeEnvelope(put(`b${i}`, big, i)));
    await turn();
    assert.deepEqual(
      proposed.slice(3).map((d) => decodeEntryCommands(d).length),
      [1, 1, 1],
    );
  });

  it("refuses a command over commandsPendingMax with ERR_UNAVAILABLE, and fails an entry's commands together", async () => {
    const failing = {
      proposeWithIndex: () =>
        Promise.reject(Object.assign(new Error("not leader"), { code: "ERR_NOT_LEADER" })),
    };
    const batcher = new CommandBatcher(failing, setImmediate, {
      entryCommandsMax: 8,
      entryBytesMax: 1000,
      commandsPendingMax: 2,
    });
    const waits = [0, 1, 2].map((i) => batcher.propose(encodeEnvelope(put(`k${i}`, "v", i))));
    const settled = await Promise.allSettled(waits);
    assert.deepEqual(
      settled.map((s) => (s.status === "rejected" ? (s.reason as { code: string }).code : "ok")),
      ["ERR_NOT_LEADER", "ERR_NOT_LEADER", "ERR_UNAVAILABLE"],
    );
  });
});
