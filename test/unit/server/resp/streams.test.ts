// Redis stream commands as a client sees them, beyond what the differential test can compare with
// redis-server: blocking reads woken by a write from another connection while other clients go
// on, the end of a wait when its client leaves, ids from the leader's clock, the limits of Cairn's
// ids, the same streams seen through the service (as the HTTP API sees them) both ways, and the
// idle times XPENDING, XCLAIM and XINFO CONSUMERS report by the log's clock.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { fieldsHeader } from "../../../../src/server/resp/stream-fields.js";
import { RawConnection, startLocalRespServer } from "../../../support/resp-fixture.js";
import { waitFor } from "../../../support/wait-for.js";

/** Encodes a command as a RESP array of bulk strings. */
function encode(...args: (string | Buffer)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const bytes = typeof a === "string" ? Buffer.from(a) : a;
    parts.push(Buffer.from(`$${bytes.length}\r\n`), bytes, Buffer.from("\r\n"));
  }
  return Buffer.concat(parts);
}

describe("Redis streams", { timeout: 60_000 }, () => {
  let fixture: Awaited<ReturnType<typeof startLocalRespServer>>;
  before(async () => {
    fixture = await startLocalRespServer();
  });
  after(async () => {
    await fixture.server.close();
  });

  /** Sends one command on a fresh connection and answers its whole reply once `done` holds. */
  async function once(done: (s: string) => boolean, ...args: (string | Buffer)[]): Promise<string> {
    const c = await RawConnection.open(fixture.port);
    c.write(encode(...args));
    const reply = await c.until(done);
    c.close();
    return reply;
  }
  const blocked = async () => {
    const info = await once((s) => s.includes("blocked_clients"), "INFO", "clients");
    return Number(/blocked_clients:(\d+)/.exec(info)?.[1]);
  };

  it("XREAD BLOCK 0 $ wakes when another connection adds, and does not hold up other clients", async () => {
    const reader = await RawConnection.open(fixture.port);
    reader.write(encode("XREAD", "BLOCK", "0", "STREAMS", "wake", "$"));
    await waitFor("the reader to block", async () => (await blocked()) === 1);
    // Other connections are served while it waits.
    assert.equal(await once((s) => s.endsWith("\r\n"), "PING"), "+PONG\r\n");
    assert.equal(await once((s) => s.endsWith("\r\n"), "XADD", "wake", "5-1", "f", "v"), "$3\r\n5-1\r\n");
    const woken = await reader.until((s) => s.endsWith("v\r\n"));
    assert.equal(woken, "*1\r\n*2\r\n$4\r\nwake\r\n*1\r\n*2\r\n$3\r\n5-1\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n");
    assert.equal(await blocked(), 0);
    reader.close();
  });

  it("XREADGROUP BLOCK wakes on a new message; a timed BLOCK answers nil", async () => {
    await once((s) => s.endsWith("\r\n"), "XGROUP", "CREATE", "jobs", "g", "$", "MKSTREAM");
    const worker = await RawConnection.open(fixture.port);
    worker.write(encode("XREADGROUP", "GROUP", "g", "w1", "BLOCK", "0", "STREAMS", "jobs", ">"));
    await waitFor("the worker to block", async () => (await blocked()) === 1);
    await once((s) => s.endsWith("\r\n"), "XADD", "jobs", "7-0", "job", "1");
    assert.match(await worker.until((s) => s.endsWith("1\r\n")), /\$3\r\n7-0\r\n/);
    worker.write(encode("XREADGROUP", "GROUP", "g", "w1", "BLOCK", "20", "STREAMS", "jobs", ">"));
    assert.ok((await worker.until((s) => s.endsWith("*-1\r\n"))).endsWith("*-1\r\n"));
    worker.close();
  });

  it("a wait ends when its client leaves", async () => {
    const reader = await RawConnection.open(fixture.port);
    reader.write(encode("XREAD", "BLOCK", "0", "STREAMS", "nobody", "$"));
    await waitFor("the reader to block", async () => (await blocked()) === 1);
    reader.close();
    await waitFor("the wait to end", async () => (await blocked()) === 0);
  });

  it("gives ids from the leader's clock, and refuses ids Cairn cannot hold", async () => {
    const t = fixture.log.clockMs;
    const c = await RawConnection.open(fixture.port);
    c.write(encode("XADD", "clock", "*", "a", "1"));
    c.write(encode("XADD", "clock", "*", "a", "2"));
    c.write(encode("XADD", "clock", "9007199254740992-0", "a", "3"));
    c.write(encode("XRANGE", "clock", "-", "18446744073709551615", "COUNT", "1"));
    const replies = await c.until((s) => s.endsWith("1\r\n") && s.includes("*1\r\n"));
    assert.ok(replies.startsWith(`$15\r\n${t}-0\r\n$15\r\n${t}-1\r\n-ERR Cairn stream ids are at most`));
    assert.ok(replies.endsWith(`*1\r\n*2\r\n$15\r\n${t}-0\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n`));
    c.close();
  });

  it("is the stream the HTTP API serves: fields as headers, binary ones kept byte for byte", async () => {
    const binary = Buffer.from([0xff, 0x00, 0x0d, 0x0a, 0x80]);
    await once((s) => s.endsWith("\r\n"), "XADD", "shared", "1-0", "name", "alice", "age", "30");
    await once((s) => s.endsWith("\r\n"), "XADD", "shared", "2-0", "bin", binary);
    const page = await fixture.streams.read("shared", {});
    assert.deepEqual(
      page.messages.map((m) => ({
        id: m.id,
        headers: m.headers,
        payload: Buffer.from(m.payload).toString("latin1"),
      })),
      [
        {
          id: "1-0",
          headers: [
            ["name", "alice"],
            ["age", "30"],
          ],
          payload: "",
        },
        {
          id: "2-0",
          headers: [[fieldsHeader, "resp"]],
          payload: `*2\r\n$3\r\nbin\r\n$5\r\n${binary.toString("latin1")}\r\n`,
        },
      ],
    );
    // A message appended through the service shows its payload, headers and key as fields.
    await fixture.streams.append("shared", {
      payload: new TextEncoder().encode("hello"),
      headers: [["trace", "t1"]],
      key: "k1",
    });
    const range = await once((s) => s.endsWith("k1\r\n"), "XRANGE", "shared", "-", "+");
    assert.ok(range.includes(`$5\r\n${binary.toString("latin1")}\r\n`), "binary value back byte for byte");
    assert.ok(
      range.endsWith(
        "*6\r\n$7\r\npayload\r\n$5\r\nhello\r\n$5\r\ntrace\r\n$2\r\nt1\r\n$3\r\nkey\r\n$2\r\nk1\r\n",
      ),
    );
  });

  it("reports idle times by the log's clock: XPENDING, XCLAIM IDLE, XINFO CONSUMERS", async () => {
    const c = await RawConnection.open(fixture.port);
    const t = fixture.log.clockMs;
    c.write(encode("XADD", "idle", "1-0", "a", "1"));
    c.write(encode("XGROUP", "CREATE", "idle", "g", "0"));
    c.write(encode("XREADGROUP", "GROUP", "g", "c1", "STREAMS", "idle", ">"));
    await c.until((s) => s.endsWith("1\r\n") && s.includes("*1\r\n*2\r\n$4"));
    fixture.log.clockMs = t + 5000;
    await fixture.streams.append("idle", { payload: new Uint8Array(0) }); // moves the group's clock
    const pending = await once((s) => s.endsWith(":1\r\n"), "XPENDING", "idle", "g", "-", "+", "10");
    assert.equal(pending, "*1\r\n*4\r\n$3\r\n1-0\r\n$2\r\nc1\r\n:5000\r\n:1\r\n");
    const none = await once(
      (s) => s.endsWith("\r\n"),
      "XPENDING",
      "idle",
      "g",
      "IDLE",
      "6000",
      "-",
      "+",
      "10",
    );
    assert.equal(none, "*0\r\n");
    await once(
      (s) => s.endsWith("\r\n"),
      "XCLAIM",
      "idle",
      "g",
      "c2",
      "1000",
      "1-0",
      "IDLE",
      "700",
      "RETRYCOUNT",
      "9",
      "JUSTID",
    );
    const claimed = await once((s) => s.endsWith(":9\r\n"), "XPENDING", "idle", "g", "-", "+", "10");
    assert.equal(claimed, "*1\r\n*4\r\n$3\r\n1-0\r\n$2\r\nc2\r\n:700\r\n:9\r\n");
    const consumers = await once((s) => s.includes("c2"), "XINFO", "CONSUMERS", "idle", "g");
    assert.match(
      consumers,
      /\$2\r\nc1\r\n\$7\r\npending\r\n:0\r\n\$4\r\nidle\r\n:5000\r\n\$8\r\ninactive\r\n:5000\r\n/,
    );
    c.close();
  });

  it("inside MULTI, XADD and XACK join the transaction's one entry; stream reads run in place", async () => {
    const c = await RawConnection.open(fixture.port);
    c.write(encode("XADD", "tx", "1-0", "a", "1"));
    c.write(encode("XGROUP", "CREATE", "tx", "g", "0"));
    c.write(encode("XREADGROUP", "GROUP", "g", "c", "STREAMS", "tx", ">"));
    await c.until((s) => s.endsWith("1\r\n") && s.includes("*1\r\n*2\r\n$2"));
    const before = fixture.log.appliedIndex;
    c.write(encode("MULTI"));
    c.write(encode("XACK", "tx", "g", "1-0"));
    c.write(encode("XADD", "tx", "2-0", "a", "2"));
    c.write(encode("SET", "txk", "v"));
    c.write(encode("XADD", "tx", "1-5", "a", "3"));
    c.write(encode("XLEN", "tx"));
    c.write(encode("EXEC"));
    const replies = await c.until((s) => s.endsWith(":2\r\n"));
    assert.ok(
      replies.endsWith(
        "+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n*5\r\n:1\r\n$3\r\n2-0\r\n+OK\r\n" +
          "-ERR The ID specified in XADD is equal or smaller than the target stream top item\r\n:2\r\n",
      ),
      replies,
    );
    assert.equal(fixture.log.appliedIndex, before + 1, "one entry for the whole transaction");
    c.close();
  });

  it("a pipeline of XADDs costs a few entries, and wakes a blocked reader", async () => {
    const reader = await RawConnection.open(fixture.port);
    reader.write(encode("XREAD", "BLOCK", "0", "STREAMS", "piped", "$"));
    await waitFor("the reader to block", async () => (await blocked()) === 1);
    const c = await RawConnection.open(fixture.port);
    const before = fixture.log.appliedIndex;
    c.write(
      Buffer.concat(
        Array.from({ length: 100 }, (_, i) => encode("XADD", "piped", `${i + 1}-0`, "n", String(i))),
      ),
    );
    const replies = await c.until((s) => s.endsWith("$5\r\n100-0\r\n"));
    assert.equal((replies.match(/-0\r\n/g) ?? []).length, 100);
    assert.ok(fixture.log.appliedIndex - before < 10, `${fixture.log.appliedIndex - before} entries`);
    assert.match(await reader.until((s) => s.includes("1-0\r\n")), /^\*1\r\n\*2\r\n\$5\r\npiped\r\n/);
    reader.close();
    c.close();
  });
});
