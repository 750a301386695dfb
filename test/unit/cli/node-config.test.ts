// Node configuration: flags beat environment beat file beat defaults, and every bad value is
// refused with a ConfigError whose message names the setting.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  advertisedAddresses,
  ConfigError,
  envNameOf,
  resolveNodeConfig,
} from "../../../src/cli/node-config.js";

const minimal = { flags: { name: "n1", dataDir: "/tmp/x" } };

function refuses(sources: Parameters<typeof resolveNodeConfig>[0], setting: string, pattern: RegExp) {
  assert.throws(
    () => resolveNodeConfig(sources),
    (error: unknown) =>
      error instanceof ConfigError &&
      error.setting === setting &&
      pattern.test(error.message) &&
      error.message.includes(setting),
  );
}

describe("node config", () => {
  it("fills defaults", () => {
    const config = resolveNodeConfig(minimal);
    assert.deepEqual(config.httpListen, { host: "127.0.0.1", port: 8081 });
    assert.equal(config.tickIntervalMs, 100);
    assert.deepEqual(config.initialCluster, []);
    assert.equal(config.join, undefined);
  });

  it("takes flags over environment over file", () => {
    const file = {
      path: "node.toml",
      text: 'name = "n1"\ndata-dir = "/file"\nelection-ticks = 20\ntick-interval-ms = 50\n',
    };
    const env = { CAIRN_DATA_DIR: "/env", CAIRN_ELECTION_TICKS: "30" };
    const config = resolveNodeConfig({ file, env, flags: { electionTicks: "40" } });
    assert.equal(config.dataDir, "/env");
    assert.equal(config.electionTicks, 40);
    assert.equal(config.tickIntervalMs, 50);
  });

  it("parses the initial cluster", () => {
    const config = resolveNodeConfig({
      flags: { ...minimal.flags, initialCluster: "n1=127.0.0.1:7001,n2=127.0.0.1:7002,n3=[::1]:7003" },
    });
    assert.deepEqual(config.initialCluster[2], { name: "n3", peer: { host: "::1", port: 7003 } });
  });

  it("serves gRPC only when grpc-listen is given, by flag, CAIRN_GRPC_LISTEN or the file", () => {
    assert.equal(resolveNodeConfig(minimal).grpcListen, undefined);
    const file = { path: "node.toml", text: 'name = "n1"\ndata-dir = "/x"\ngrpc-listen = "0.0.0.0:50052"\n' };
    assert.deepEqual(resolveNodeConfig({ file }).grpcListen, { host: "0.0.0.0", port: 50052 });
    const env = { CAIRN_GRPC_LISTEN: "127.0.0.1:50053" };
    assert.deepEqual(resolveNodeConfig({ file, env }).grpcListen, { host: "127.0.0.1", port: 50053 });
    refuses({ flags: { ...minimal.flags, grpcListen: "50052" } }, "grpc-listen", /host:port/);
  });

  it("stops on signals only by default, also at the end of stdin when asked, and refuses anything else", () => {
    assert.equal(resolveNodeConfig(minimal).stopOn, "signal");
    assert.equal(resolveNodeConfig({ flags: { ...minimal.flags, stopOn: "stdin-end" } }).stopOn, "stdin-end");
    refuses({ flags: { ...minimal.flags, stopOn: "parent" } }, "stop-on", /one of signal, stdin-end/);
  });

  it("requires client certificates with a client CA unless told they are optional, and refuses anything else", () => {
    assert.equal(resolveNodeConfig(minimal).clientTlsVerify, "required");
    const env = { CAIRN_CLIENT_TLS_VERIFY: "optional" };
    assert.equal(resolveNodeConfig({ ...minimal, env }).clientTlsVerify, "optional");
    refuses(
      { flags: { ...minimal.flags, clientTlsVerify: "maybe" } },
      "client-tls-verify",
      /one of required, optional/,
    );
  });

  it("parses peer dial overrides (a testing facility) and refuses malformed ones", () => {
    assert.equal(resolveNodeConfig(minimal).peerDialOverrides.size, 0);
    const config = resolveNodeConfig({
      ...minimal,
      env: { CAIRN_PEER_DIAL_OVERRIDE: "127.0.0.1:7002=127.0.0.1:17002, 127.0.0.1:7003=127.0.0.1:17003" },
    });
    assert.deepEqual(
      [...config.peerDialOverrides],
      [
        ["127.0.0.1:7002", { host: "127.0.0.1", port: 17002 }],
        ["127.0.0.1:7003", { host: "127.0.0.1", port: 17003 }],
      ],
    );
    refuses(
      { flags: { ...minimal.flags, peerDialOverride: "127.0.0.1:7002" } },
      "peer-dial-override",
      /host:port=host:port/,
    );
    refuses(
      { flags: { ...minimal.flags, peerDialOverride: "127.0.0.1:7002=1:2,127.0.0.1:7002=1:3" } },
      "peer-dial-override",
      /twice/,
    );
  });

  it("names CAIRN_ variables after flags", () => {
    assert.equal(envNameOf("segment-bytes-max"), "CAIRN_SEGMENT_BYTES_MAX");
  });

  it("refuses each bad value naming the setting", () => {
    refuses({ flags: { dataDir: "/x" } }, "name", /required/);
    refuses({ flags: { name: "N 1", dataDir: "/x" } }, "name", /lowercase/);
    refuses({ flags: { ...minimal.flags, httpListen: "nowhere" } }, "http-listen", /host:port/);
    refuses({ flags: { ...minimal.flags, peerListen: "127.0.0.1:99999" } }, "peer-listen", /host:port/);
    refuses({ flags: { ...minimal.flags, tickIntervalMs: "fast" } }, "tick-interval-ms", /integer/);
    refuses({ flags: { ...minimal.flags, electionTicks: "1" } }, "election-ticks", /from 2 to 1000/);
    refuses(
      { flags: { ...minimal.flags, heartbeatTicks: "10" } },
      "heartbeat-ticks",
      /smaller than election-ticks/,
    );
    refuses(
      { flags: { ...minimal.flags, initialCluster: "n1=127.0.0.1:1,n1=127.0.0.1:2" } },
      "initial-cluster",
      /twice/,
    );
    refuses(
      { flags: { ...minimal.flags, initialCluster: "n2=127.0.0.1:1" } },
      "initial-cluster",
      /does not name this node/,
    );
    refuses({ flags: { ...minimal.flags, initialCluster: "garbage" } }, "initial-cluster", /name=host:port/);
    refuses({ flags: { ...minimal.flags, join: "ftp://x" } }, "join", /http/);
    refuses({ flags: { ...minimal.flags, tlsCa: "/ca.pem" } }, "tls-ca", /together/);
    refuses(
      { env: { CAIRN_NAME: "n1", CAIRN_DATA_DIR: "/x", CAIRN_VALUE_BYTES_MAX: "0" } },
      "value-bytes-max",
      /from 1/,
    );
  });

  it("refuses invalid TOML and unknown keys in the file", () => {
    refuses({ file: { path: "node.toml", text: "name = " } }, "config", /node.toml is not valid TOML/);
    refuses(
      { file: { path: "node.toml", text: 'name = "n1"\ncolour = "red"\n' } },
      "colour",
      /unknown setting/,
    );
    refuses({ file: { path: "node.toml", text: "name = 5\n" } }, "name", /expected a string/);
  });

  it("announces the listen addresses unless told the advertised ones, by flag or CAIRN_ADVERTISE_*", () => {
    const listening = {
      flags: { ...minimal.flags, redisListen: "127.0.0.1:6381", grpcListen: "127.0.0.1:50052" },
    };
    assert.deepEqual(advertisedAddresses(resolveNodeConfig(listening)), {
      httpUrl: "http://127.0.0.1:8081",
      peer: "127.0.0.1:7001",
      redis: "127.0.0.1:6381",
      grpc: "127.0.0.1:50052",
    });
    const env = {
      CAIRN_ADVERTISE_HTTP: "http://n1.cairn.svc:8081/",
      CAIRN_ADVERTISE_PEER: "n1.cairn.svc:7001",
      CAIRN_ADVERTISE_REDIS: "redis.example.com:6379",
    };
    assert.deepEqual(advertisedAddresses(resolveNodeConfig({ ...listening, env })), {
      httpUrl: "http://n1.cairn.svc:8081",
      peer: "n1.cairn.svc:7001",
      redis: "redis.example.com:6379",
      grpc: "127.0.0.1:50052",
    });
  });

  it("requires advertise-http when HTTP binds every interface; the others then take its host", () => {
    const wild = {
      flags: {
        ...minimal.flags,
        httpListen: "0.0.0.0:8081",
        peerListen: "0.0.0.0:7001",
        textListen: "[::]:6661",
      },
    };
    refuses(wild, "advertise-http", /binds every interface \(0\.0\.0\.0\)/);
    const env = { CAIRN_ADVERTISE_HTTP: "http://10.0.0.5:8081" };
    assert.deepEqual(advertisedAddresses(resolveNodeConfig({ ...wild, env })), {
      httpUrl: "http://10.0.0.5:8081",
      peer: "10.0.0.5:7001",
      text: "10.0.0.5:6661",
    });
    refuses({ flags: { ...minimal.flags, advertisePeer: "nowhere" } }, "advertise-peer", /host:port/);
  });

  it("logs at info in the format that suits the output unless told otherwise", () => {
    const config = resolveNodeConfig(minimal);
    assert.equal(config.logLevel, "info");
    assert.equal(config.logFormat, "auto");
    const told = resolveNodeConfig({
      ...minimal,
      env: { CAIRN_LOG_LEVEL: "debug", CAIRN_LOG_FORMAT: "json" },
    });
    assert.deepEqual([told.logLevel, told.logFormat], ["debug", "json"]);
    refuses({ flags: { ...minimal.flags, logLevel: "loud" } }, "log-level", /one of debug, info, warn/);
  });
});
