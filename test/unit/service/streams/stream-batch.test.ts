// Batch appends in the state machine: the command round-trips through entry bytes (random
// batches), each message of a batch is appended as it would be alone (sequence, deduplication,
// retention), and an atomic batch with one refused message leaves the state byte for byte as it was.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { MemoryState } from "../../../../src/service/state.js";
import {
  type BatchMessage,
  decodeStreamCommand,
  encodeStreamCommand,
  getStreamMeta,
  type StreamCommand,
} from "../../../../src/service/streams/index.js";
import { ByteReader, ByteWriter, utf8 } from "../../../../src/util/bytes.js";
import { append, config, dumpState, run } from "./helpers.js";

const T = 1_700_000_000_000;
const message = (payload: string, extra: Partial<BatchMessage> = {}): BatchMessage => ({
  payload: utf8(payload),
  headers: [],
  ...extra,
});

describe("append-batch command", () => {
  it("round-trips random batches through its encoding", () => {
    const arbitraryMessage = fc.record(
      {
        payload: fc.uint8Array({ maxLength: 32 }),
        headers: fc.array(fc.tuple(fc.string({ maxLength: 8 }), fc.string({ maxLength: 8 })), {
          maxLength: 3,
        }),
        key: fc.string({ maxLength: 8 }),
        msgId: fc.string({ minLength: 1, maxLength: 8 }),
        expectedLastSeq: fc.nat(),
      },
      { requiredKeys: ["payload", "headers"], noNullPrototype: true },
    );
    fc.assert(
      fc.property(
        fc.array(arbitraryMessage, { minLength: 1, maxLength: 20 }),
        fc.boolean(),
        (messages, atomic) => {
          const command: StreamCommand = {
            type: "append-batch",
            name: "s",
            messages,
            ...(atomic ? { atomic: true } : {}),
          };
          const bytes = encodeStreamCommand(command, new ByteWriter()).finish();
          const reader = new ByteReader(bytes);
          assert.deepEqual(decodeStreamCommand(reader), command);
          reader.end();
        },
      ),
    );
  });
});

describe("append-batch in the state machine", () => {
  it("appends each message as alone: own sequence, ids deduplicated within the batch, retention per message", () => {
    const s = new MemoryState();
    run(s, { type: "create", name: "s", config: config({ maxMessages: 3 }) }, T);
    run(s, append("s", "before", { msgId: "old" }), T);
    const result = run(
      s,
      {
        type: "append-batch",
        name: "s",
        messages: [
          message("a", { msgId: "x" }),
          message("b", { msgId: "old" }),
          message("c", { msgId: "x" }),
          message("d"),
          message("e", { expectedLastSeq: 3 }),
        ],
      },
      T + 1,
    );
    assert.equal(result.ok, true);
    const summary = result.ok
      ? result.results.map((r) => (r.ok ? `${r.seq}${r.duplicate ? " dup" : ""}` : r.code))
      : [];
    assert.deepEqual(summary, ["2", "1 dup", "2 dup", "3", "4"]);
    const meta = getStreamMeta(s, "s");
    assert.deepEqual(
      [meta?.firstSeq, meta?.lastSeq],
      [2, 4],
      "retention dropped the oldest as the fourth arrived",
    );
  });

  it("an atomic batch with one refused message changes nothing but the clock, and answers its code", () => {
    const s = new MemoryState();
    run(s, { type: "create", name: "s", config: config({ maxMessages: 2, discard: "new" }) }, T);
    run(s, append("s", "one", { msgId: "m1" }), T);
    const before = dumpState(s).filter((line) => !line.startsWith("meta "));
    const refused = run(
      s,
      {
        type: "append-batch",
        name: "s",
        atomic: true,
        messages: [message("two", { msgId: "m2" }), message("three", { msgId: "m3" })],
      },
      T + 1,
    );
    assert.equal(refused.ok, false);
    assert.equal(!refused.ok && refused.code, "ERR_STREAM_FULL");
    assert.deepEqual(
      dumpState(s).filter((line) => !line.startsWith("meta ")),
      before,
    );
    const missing = run(s, { type: "append-batch", name: "nope", messages: [message("x")] }, T + 2);
    assert.equal(!missing.ok && missing.code, "ERR_NOT_FOUND");
  });
});
