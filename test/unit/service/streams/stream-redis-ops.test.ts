// Stream operations the Redis command list needs, as the state machine applies them: an append that
// creates its stream (XADD), claims of idle messages in flight (XCLAIM, XAUTOCLAIM), and reads by
// message id in either direction (XRANGE, XREVRANGE). Commands go through the real envelope codec.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MemoryState } from "../../../../src/service/state.js";
import {
  defaultStreamMachineLimits,
  getStreamMeta,
  type StreamCommand,
} from "../../../../src/service/streams/index.js";
import { ByteWriter, utf8 } from "../../../../src/util/bytes.js";
import { config, run } from "./helpers.js";

const T = 1_700_000_000_000;

const appendCreating = (name: string, payload: string, settings = config()): StreamCommand => ({
  type: "append",
  name,
  payload: utf8(payload),
  headers: [],
  createWith: settings,
});

describe("streams: an append that creates its stream", () => {
  it("creates a missing stream with the given settings and appends, in one entry", () => {
    const s = new MemoryState();
    const result = run(s, appendCreating("s", "a", config({ maxMessages: 5 })), T);
    assert.deepEqual(result, { kind: "streams.append", ok: true, seq: 1, id: `${T}-0`, duplicate: false });
    const meta = getStreamMeta(s, "s");
    assert.equal(meta?.config.maxMessages, 5);
    assert.equal(meta?.createdMs, T);
  });

  it("leaves an existing stream's settings alone", () => {
    const s = new MemoryState();
    run(s, { type: "create", name: "s", config: config({ maxMessages: 2 }) }, T);
    assert.equal(run(s, appendCreating("s", "a", config({ maxMessages: 9 })), T).ok, true);
    assert.equal(getStreamMeta(s, "s")?.config.maxMessages, 2);
    assert.equal(getStreamMeta(s, "s")?.lastSeq, 1);
  });

  it("without it, a missing stream is ERR_NOT_FOUND; at the stream limit, ERR_LIMIT and nothing changes", () => {
    const s = new MemoryState();
    const missing = run(s, { type: "append", name: "s", payload: utf8("a"), headers: [] }, T);
    assert.equal(!missing.ok && missing.code, "ERR_NOT_FOUND");
    // The cluster holds as many streams as it may (set directly: creating 10,000 proves nothing more).
    s.put(
      "meta",
      utf8("streams.count"),
      new ByteWriter(8).u64(defaultStreamMachineLimits.streamsMax).finish(),
    );
    const refused = run(s, appendCreating("t", "a"), T);
    assert.equal(refused.kind, "streams.append");
    assert.equal(!refused.ok && refused.code, "ERR_LIMIT");
    assert.equal(getStreamMeta(s, "t"), undefined);
  });
});
