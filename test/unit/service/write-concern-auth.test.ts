// A write-concern view of the services keeps the authorization of the log it wraps: a token that
// may not write is refused whatever write concern it asks for, on keys and streams alike, and what
// it may do still works through the view. (Found by `npm run fuzz`: write concern "all" skipped
// every permission check.)
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Need } from "../../../src/service/auth/index.js";
import { CairnError } from "../../../src/service/errors.js";
import { KvService } from "../../../src/service/kv/kv-service.js";
import { StreamService } from "../../../src/service/streams/stream-service.js";
import { LocalReplication } from "../../support/local-replication.js";

/** A single replica whose principal may read everything and write nothing. */
class ReadOnlyReplication extends LocalReplication {
  authorize(needs: readonly Need[]): void {
    const denied = needs.find((n) => n.permission !== "read");
    if (denied !== undefined) throw new CairnError("ERR_FORBIDDEN", `missing ${denied.permission}`);
  }
}

const utf8 = (text: string) => new TextEncoder().encode(text);
const forbidden = (error: unknown) => error instanceof CairnError && error.code === "ERR_FORBIDDEN";

describe("write concern and authorization", () => {
  for (const writeConcern of ["majority", "all"] as const) {
    it(`refuses a write the principal may not make with write concern ${writeConcern}, and changes nothing`, async () => {
      const log = new ReadOnlyReplication();
      const kv = new KvService(log).withWriteConcern(writeConcern);
      const streams = new StreamService(log, log.applied).withWriteConcern(writeConcern);
      await assert.rejects(kv.put(utf8("k"), utf8("v")), forbidden);
      await assert.rejects(streams.append("s", { payload: utf8("m"), createIfMissing: {} }), forbidden);
      assert.equal(log.appliedIndex, 0);
      assert.equal((await kv.get(utf8("k"))).record, undefined);
    });
  }
});
