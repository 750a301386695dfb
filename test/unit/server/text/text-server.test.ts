// The text server over a real TCP socket, talked to as Tolerex's client does (wait for the prompt,
// send a line, read up to the next prompt), on one in-process replica: the exact Tolerex banner and
// prompt, the replies of every command, messages kept byte for byte under the documented key
// prefix, the unambiguous PROTO 2 mode, an over-long line, and an outage answered as unavailable.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { startTextServer, type TextServer } from "../../../../src/server/text/index.js";
import { CairnError, KvService } from "../../../../src/service/index.js";
import { lineLogger } from "../../../../src/util/index.js";
import { LocalReplication } from "../../../support/local-replication.js";
import { PromptClient } from "../../../support/prompt-client.js";

describe("text server", () => {
  const log = new LocalReplication();
  const kv = new KvService(log, { valueBytesMax: 1024 });
  let tolerex: TextServer;
  let cairn: TextServer;

  before(async () => {
    tolerex = await startTextServer({ host: "127.0.0.1", port: 0 }, { kv, flavor: "tolerex" });
    cairn = await startTextServer({ host: "127.0.0.1", port: 0 }, { kv, flavor: "cairn", lineBytesMax: 64 });
  });
  after(async () => {
    await tolerex.close();
    await cairn.close();
  });

  it("greets with Tolerex's 17-line banner and its prompt in compatibility mode", async () => {
    const { client, banner } = await PromptClient.connect("127.0.0.1", tolerex.address.port, "tolerex> ");
    const lines = banner.split("\r\n");
    assert.equal(lines.pop(), "", "every banner line ends CRLF");
    assert.equal(lines.length, 17);
    assert.equal(lines[0], "-".repeat(50));
    assert.equal(lines[1], "TOLEREX - Leader Node (Control Plane)");
    assert.equal(lines[5], "  SET <id> <message>        Store a message");
    assert.equal(await client.command("HELP"), `${banner.slice(0, -2)}`);
    client.close();
  });

  it("answers SET, GET, NOT_FOUND, errors, an empty line and QUIT as Tolerex did", async () => {
    const { client } = await PromptClient.connect("127.0.0.1", tolerex.address.port, "tolerex> ");
    assert.equal(await client.command("SET 10 HELLO"), "OK");
    assert.equal(await client.command("get 10"), "HELLO");
    assert.equal(await client.command("GET 11"), "NOT_FOUND");
    assert.equal(await client.command(""), "");
    assert.equal(await client.command("SET 10"), "ERROR: SET <id> <message>");
    assert.equal(await client.command("GET abc"), "ERROR: id must be numeric");
    assert.equal(await client.command("1000 SET HELLO"), "ERROR: unknown command");
    assert.equal(await client.command("quit"), "Bye");
    assert.ok(client.closed);
  });

  it("keeps the message byte for byte under hatokuse:<id>, 64-bit ids unwrapped", async () => {
    const { client } = await PromptClient.connect("127.0.0.1", tolerex.address.port, "tolerex> ");
    assert.equal(await client.command("SET 4294967297   two  spaces\tand tab "), "OK");
    assert.equal(await client.command("GET 1"), "NOT_FOUND", "4294967297 did not wrap to 1");
    assert.equal(await client.command("GET 4294967297"), "  two  spaces\tand tab ");
    const stored = await kv.get(new TextEncoder().encode("hatokuse:4294967297"));
    assert.equal(new TextDecoder().decode(stored.record?.value), "  two  spaces\tand tab ");
    const binary = Buffer.from([0x53, 0x45, 0x54, 0x20, 0x35, 0x20, 0xff, 0xfe, 0x00]);
    assert.equal((await client.sendRaw(binary, "\r\n")).toString("latin1"), "OK\r\n");
    assert.deepEqual([...(await client.sendRaw("GET 5"))], [0xff, 0xfe, 0x00, 0x0d, 0x0a]);
    client.close();
  });

  it("tells a message that reads OK or NOT_FOUND apart in PROTO 2", async () => {
    const { client, banner } = await PromptClient.connect("127.0.0.1", cairn.address.port, "cairn> ");
    assert.match(banner, /PROTO 2/);
    assert.equal(await client.command("SET 20 NOT_FOUND"), "OK");
    assert.equal(await client.command("PROTO 2"), "OK");
    assert.equal(await client.command("GET 20"), "VALUE 9\r\nNOT_FOUND");
    assert.equal(await client.command("GET 21"), "NOT_FOUND");
    assert.equal(await client.command("PROTO 1"), "OK");
    assert.equal(await client.command("GET 20"), "NOT_FOUND");
    client.close();
  });

  it("answers an over-long line with an error and keeps the connection usable", async () => {
    const { client } = await PromptClient.connect("127.0.0.1", cairn.address.port, "cairn> ");
    assert.equal(await client.command(`SET 1 ${"x".repeat(100)}`), "ERROR: line too long");
    assert.equal(await client.command("SET 1 short"), "OK");
    assert.equal(await client.command("GET 1"), "short");
    client.close();
  });

  it("answers pipelined lines in order", async () => {
    const { client } = await PromptClient.connect("127.0.0.1", cairn.address.port, "cairn> ");
    const many = Array.from({ length: 200 }, (_, i) => `SET ${i} m${i}\n`).join("");
    assert.equal(await client.command(`${many}GET 199`), "OK");
    for (let i = 1; i < 200; i++) assert.equal(await client.nextReply(), "OK");
    assert.equal(await client.nextReply(), "m199");
    client.close();
  });

  it("answers ERROR: unavailable, never NOT_FOUND, when the cluster cannot answer", async () => {
    const { client } = await PromptClient.connect("127.0.0.1", tolerex.address.port, "tolerex> ");
    assert.equal(await client.command("SET 900 kept"), "OK");
    log.failWith = new CairnError("ERR_UNAVAILABLE", "no leader is known");
    try {
      assert.equal(await client.command("GET 900"), "ERROR: unavailable");
      assert.equal(await client.command("SET 900 x"), "ERROR: unavailable");
    } finally {
      log.failWith = undefined;
    }
    assert.equal(await client.command("GET 900"), "kept");
    client.close();
  });

  it("answers a bug below it with ERROR: internal error, logs it once and keeps serving", async () => {
    const logged: string[] = [];
    const server = await startTextServer(
      { host: "127.0.0.1", port: 0 },
      { kv, flavor: "cairn", logger: lineLogger((line) => logged.push(line)) },
    );
    try {
      const { client } = await PromptClient.connect("127.0.0.1", server.address.port, "cairn> ");
      log.failWith = new TypeError("planted: not a CairnError");
      try {
        assert.equal(await client.command("SET 901 x"), "ERROR: internal error");
        assert.equal(await client.command("GET 901"), "ERROR: internal error");
      } finally {
        log.failWith = undefined;
      }
      assert.equal(logged.length, 1, "the same failure is logged once");
      assert.match(logged[0] ?? "", /^ERROR \[text\] internal error in /);
      assert.match(logged[0] ?? "", /TypeError: planted: not a CairnError\n\s+at /);
      assert.equal(await client.command("SET 901 y"), "OK");
      assert.equal(await client.command("GET 901"), "y");
      client.close();
    } finally {
      await server.close();
    }
  });
});
