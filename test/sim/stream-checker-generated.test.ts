// The stream checker on histories generated from a reference stream (producers retrying with the
// same message id, deduplicated; timeouts that did or did not land; readers at every offset): clean
// histories never report anything, and each planted fault reports its kind, for any seed.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { Prng } from "../../src/util/prng.js";
import { type AppendRecord, checkStream, type ReaderView, type StreamEntry } from "./stream-checker.js";

/** A reference run: appends as producers saw them, and readers' views of the resulting stream. */
function generate(seed: number): { appends: AppendRecord[]; readers: ReaderView[]; log: StreamEntry[] } {
  const prng = new Prng(seed);
  const log: StreamEntry[] = [];
  const seqOf = new Map<string, number>();
  const appends: AppendRecord[] = [];
  const messages = 5 + prng.below(40);
  for (let m = 0; m < messages; m++) {
    const messageId = `m${m}`;
    const payload = `p${prng.below(1000)}`;
    const clientId = prng.below(3);
    // Up to three attempts; the stream deduplicates by message id.
    for (let attempt = 0; attempt < 3; attempt++) {
      const lands = prng.chance(4, 5);
      if (lands && !seqOf.has(messageId)) {
        log.push({ seq: log.length + 1, messageId, payload });
        seqOf.set(messageId, log.length);
      }
      const seq = seqOf.get(messageId);
      const answered = prng.chance(3, 4);
      if (lands && answered && seq !== undefined) {
        appends.push({ clientId, messageId, payload, outcome: { kind: "acked", seq } });
        break;
      }
      // Not answered: the producer cannot tell whether it landed.
      if (!answered || lands) appends.push({ clientId, messageId, payload, outcome: { kind: "unknown" } });
      else appends.push({ clientId, messageId, payload, outcome: { kind: "rejected" } });
      if (!lands && !answered && prng.chance(1, 2)) break;
    }
  }
  const readers: ReaderView[] = [{ readerId: "final", complete: true, entries: log }];
  for (let r = 0; r < 3 && log.length > 0; r++) {
    const from = prng.below(log.length);
    const to = from + prng.below(log.length - from) + 1;
    readers.push({ readerId: `tail${r}`, complete: false, entries: log.slice(from, to) });
  }
  return { appends, readers, log };
}

const seedArb = fc.integer({ min: 0, max: 2 ** 31 - 1 });
const kinds = (appends: AppendRecord[], readers: ReaderView[]) =>
  new Set(checkStream(appends, readers).map((v) => v.kind));

describe("stream checker on generated histories", () => {
  it("reports nothing for a correct stream", () => {
    fc.assert(
      fc.property(seedArb, (seed) => {
        const { appends, readers } = generate(seed);
        assert.deepEqual(checkStream(appends, readers), []);
      }),
      { numRuns: 300 },
    );
  });

  it("reports an acknowledged message dropped from the stream as lost", () => {
    fc.assert(
      fc.property(seedArb, fc.nat(), (seed, pick) => {
        const { appends, log } = generate(seed);
        const acked = appends.filter((a) => a.outcome.kind === "acked");
        fc.pre(acked.length > 0);
        const victim = acked[pick % acked.length]?.messageId;
        const entries = log.filter((e) => e.messageId !== victim);
        const found = kinds(appends, [{ readerId: "final", complete: true, entries }]);
        assert.ok(found.has("lost"));
      }),
      { numRuns: 100 },
    );
  });

  it("reports a message appended twice as a duplicate", () => {
    fc.assert(
      fc.property(seedArb, fc.nat(), (seed, pick) => {
        const { appends, log } = generate(seed);
        fc.pre(log.length > 0);
        const again = log[pick % log.length];
        if (again === undefined) return;
        const entries = [...log, { ...again, seq: log.length + 1 }];
        assert.ok(kinds(appends, [{ readerId: "final", complete: true, entries }]).has("duplicate"));
      }),
      { numRuns: 100 },
    );
  });

  it("reports a reader that saw another payload as divergent", () => {
    fc.assert(
      fc.property(seedArb, fc.nat(), (seed, pick) => {
        const { appends, readers, log } = generate(seed);
        fc.pre(log.length > 0);
        const at = pick % log.length;
        const entries = log.map((e, i) => (i === at ? { ...e, payload: `${e.payload}-changed` } : e));
        const found = kinds(appends, [...readers, { readerId: "liar", complete: false, entries }]);
        assert.ok(found.has("divergent") && found.has("phantom"));
      }),
      { numRuns: 100 },
    );
  });
});
