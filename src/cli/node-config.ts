// The settings of one Cairn node, read from a TOML file, CAIRN_* environment variables and command
// line flags (flags win over the environment, which wins over the file). Every value is checked at
// start; a bad one stops the node with a message that names the setting, before anything is opened.
import { parse as parseToml } from "smol-toml";
import { defaultNodeSettings } from "../node-assembly/index.js";
import { type ClientCertMode, clientCertModes, defaultConnectionLimits } from "../server/http/index.js";
import { type TextFlavor, textFlavors } from "../server/text/index.js";
import { type LogLevel, logLevels } from "../util/index.js";
import { type LogFormat, logFormats } from "./logging.js";

/** A host and port to listen on or dial. */
export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** One member of the initial cluster: its name and its peer (Raft transport) address. */
export interface InitialMember {
  readonly name: string;
  readonly peer: HostPort;
}

/** What ends a node besides SIGINT and SIGTERM: nothing, or its standard input ending. */
export const stopOnChoices = ["signal", "stdin-end"] as const;

/** One of {@link stopOnChoices}. */
export type StopOn = (typeof stopOnChoices)[number];

/** Everything a node needs to start. */
export interface NodeConfig {
  readonly name: string;
  readonly dataDir: string;
  readonly peerListen: HostPort;
  readonly httpListen: HostPort;
  /** Where the HaToKuSe text protocol listens; not served when undefined. */
  readonly textListen: HostPort | undefined;
  /** The text protocol's greeting: Cairn's, or Tolerex's exact banner and prompt. */
  readonly textCompat: TextFlavor;
  /** Browser origins allowed to call the HTTP API ("*": any). */
  readonly corsOrigins: readonly string[];
  /** Where the Redis protocol is served; undefined: not served. */
  readonly redisListen: HostPort | undefined;
  /** Where the gRPC replicator's MessageService is served; undefined: not served. */
  readonly grpcListen: HostPort | undefined;
  readonly initialCluster: readonly InitialMember[];
  readonly join: string | undefined;
  readonly tlsCa: string | undefined;
  readonly tlsCert: string | undefined;
  readonly tlsKey: string | undefined;
  /** TLS on every client port: this certificate and key (PEM); plain text without them. */
  readonly clientTlsCert: string | undefined;
  readonly clientTlsKey: string | undefined;
  /** Clients must present a certificate this CA signed (or may: {@link clientTlsVerify}). */
  readonly clientTlsCa: string | undefined;
  /** With a client CA: whether a client certificate is required or optional (then tokens serve too). */
  readonly clientTlsVerify: ClientCertMode;
  readonly tickIntervalMs: number;
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  readonly keyBytesMax: number;
  readonly valueBytesMax: number;
  readonly segmentBytesMax: number;
  readonly snapshotEntries: number;
  readonly snapshotBytes: number;
  readonly snapshotLogBytesMax: number;
  readonly snapshotLogEntriesMax: number;
  /** Every replica hashes its state at each applied index that is a multiple of this (the state check). */
  readonly stateCheckEntries: number;
  /** Connections open at once on each client port (HTTP, Redis, text, gRPC). */
  readonly connectionsMax: number;
  /** Connections open at once from one address on each client port. */
  readonly connectionsPerAddressMax: number;
  /** Requests per second each client address may make without a token (0: no limit). */
  readonly addressRequestsPerSecond: number;
  /** The burst of that rate: requests an idle address may make at once. */
  readonly addressBurst: number;
  readonly entryCommandsMax: number;
  readonly entryBytesMax: number;
  /** Testing facility: dial these addresses instead of peers' member addresses (keyed `host:port`). */
  readonly peerDialOverrides: ReadonlyMap<string, HostPort>;
  /** Testing facility: a file holding the milliseconds every log write and sync waits (a slow disk). */
  readonly diskDelayFile: string | undefined;
  /**
   * `on`: once per data directory, turn authentication on if it is off; the node that does writes
   * the bootstrap admin token to `<data-dir>/admin-token` (mode 0600). docs/security.md.
   */
  readonly auth: "on" | "off";
  /**
   * "stdin-end": the node also stops, cleanly, when its standard input ends. A supervisor holds
   * the other end of a pipe, so the node dies with it however it dies (SIGKILL included).
   */
  readonly stopOn: StopOn;
  /** The URL peers and clients reach the HTTP API at, when not the listen address. */
  readonly advertiseHttp: string | undefined;
  /** Where peers reach this node's Raft transport, when not the listen address. */
  readonly advertisePeer: HostPort | undefined;
  /** Where clients reach each protocol, when not its listen address. */
  readonly advertiseRedis: HostPort | undefined;
  readonly advertiseText: HostPort | undefined;
  readonly advertiseGrpc: HostPort | undefined;
  /** The least serious entries written. */
  readonly logLevel: LogLevel;
  /** JSON lines, lines for people, or `auto` (people's on a terminal). */
  readonly logFormat: LogFormat;
}

/** A setting that failed validation; `setting` is its flag name. Stable code ERR_CONFIG. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
  readonly code = "ERR_CONFIG";
  readonly setting: string;

  /** Creates an error naming the setting and what is wrong with it. */
  constructor(setting: string, problem: string) {
    super(`invalid setting ${setting}: ${problem}`);
    this.setting = setting;
  }
}

type Kind = "name" | "path" | "host-port" | "members" | "url" | "int" | "choice" | "origins" | "address-map";

interface Setting {
  readonly key: keyof NodeConfig;
  readonly flag: string;
  readonly kind: Kind;
  readonly description: string;
  readonly required?: boolean;
  readonly default?: string | number;
  readonly min?: number;
  readonly max?: number;
  /** The values a `choice` setting may take. */
  readonly choices?: readonly string[];
}

/** Every node setting: its flag (also its TOML key), its CAIRN_* variable, its type and default. */
export const nodeSettings: readonly Setting[] = [
  { key: "name", flag: "name", kind: "name", required: true, description: "this node's name, e.g. n1" },
  {
    key: "dataDir",
    flag: "data-dir",
    kind: "path",
    required: true,
    description: "directory for the log, snapshots and state",
  },
  {
    key: "peerListen",
    flag: "peer-listen",
    kind: "host-port",
    default: "127.0.0.1:7001",
    description: "address for Raft traffic from peers",
  },
  {
    key: "httpListen",
    flag: "http-listen",
    kind: "host-port",
    default: "127.0.0.1:8081",
    description: "address of the HTTP API",
  },
  {
    key: "textListen",
    flag: "text-listen",
    kind: "host-port",
    description: "address of the HaToKuSe text protocol (Tolerex's clients); not served if unset",
  },
  {
    key: "textCompat",
    flag: "text-compat",
    kind: "choice",
    choices: textFlavors,
    default: "cairn",
    description: "text protocol greeting: cairn, or tolerex (its exact banner and `tolerex> ` prompt)",
  },
  {
    key: "corsOrigins",
    flag: "cors-origins",
    kind: "origins",
    default: "",
    description: "browser origins (scheme://host:port, comma-separated, or *) allowed to call the HTTP API",
  },
  {
    key: "redisListen",
    flag: "redis-listen",
    kind: "host-port",
    description: "address of the Redis protocol server (not served when unset)",
  },
  {
    key: "grpcListen",
    flag: "grpc-listen",
    kind: "host-port",
    description: "address of the gRPC replicator's MessageService (not served when unset)",
  },
  {
    key: "initialCluster",
    flag: "initial-cluster",
    kind: "members",
    default: "",
    description: "bootstrap members as name=host:port,... (ignored once the node has data)",
  },
  {
    key: "join",
    flag: "join",
    kind: "url",
    description: "HTTP URL of any member, to join an existing cluster",
  },
  { key: "tlsCa", flag: "tls-ca", kind: "path", description: "PEM file of the cluster CA" },
  {
    key: "clientTlsCert",
    flag: "client-tls-cert",
    kind: "path",
    description: "PEM certificate for TLS on every client port (HTTP, Redis, text, gRPC); reloaded on SIGHUP",
  },
  { key: "clientTlsKey", flag: "client-tls-key", kind: "path", description: "PEM key of --client-tls-cert" },
  {
    key: "clientTlsCa",
    flag: "client-tls-ca",
    kind: "path",
    description:
      "PEM CA: clients must present a certificate it signed; its subject CN may be bound to a role",
  },
  {
    key: "clientTlsVerify",
    flag: "client-tls-verify",
    kind: "choice",
    choices: clientCertModes,
    default: "required",
    description:
      "with --client-tls-ca: required (no certificate, no connection) or optional (clients without one use tokens)",
  },
  { key: "tlsCert", flag: "tls-cert", kind: "path", description: "PEM file of this node's certificate" },
  { key: "tlsKey", flag: "tls-key", kind: "path", description: "PEM file of this node's private key" },
  {
    key: "tickIntervalMs",
    flag: "tick-interval-ms",
    kind: "int",
    default: defaultNodeSettings.tickIntervalMs,
    min: 1,
    max: 10_000,
    description: "Raft tick length",
  },
  {
    key: "electionTicks",
    flag: "election-ticks",
    kind: "int",
    default: defaultNodeSettings.electionTicks,
    min: 2,
    max: 1000,
    description: "ticks without a leader before an election",
  },
  {
    key: "heartbeatTicks",
    flag: "heartbeat-ticks",
    kind: "int",
    default: defaultNodeSettings.heartbeatTicks,
    min: 1,
    max: 100,
    description: "ticks between leader heartbeats",
  },
  {
    key: "keyBytesMax",
    flag: "key-bytes-max",
    kind: "int",
    default: defaultNodeSettings.keyBytesMax,
    min: 1,
    // The state store (lmdb) keys its records by the user key plus a few bytes of namespace.
    max: 1800,
    description: "largest key",
  },
  {
    key: "valueBytesMax",
    flag: "value-bytes-max",
    kind: "int",
    default: defaultNodeSettings.valueBytesMax,
    min: 1,
    max: 64 * 1024 * 1024,
    description: "largest value or message",
  },
  {
    key: "segmentBytesMax",
    flag: "segment-bytes-max",
    kind: "int",
    default: defaultNodeSettings.segmentBytesMax,
    min: 64 * 1024,
    max: 1024 * 1024 * 1024,
    description: "WAL segment size at which a new segment starts",
  },
  {
    key: "snapshotEntries",
    flag: "snapshot-entries",
    kind: "int",
    default: defaultNodeSettings.snapshotEntries,
    min: 100,
    max: 100_000_000,
    description: "applied entries between log compactions",
  },
  {
    key: "stateCheckEntries",
    flag: "state-check-entries",
    kind: "int",
    default: 10_000,
    min: 10,
    max: 1_000_000_000,
    description: "every replica hashes its state at each index that is a multiple of this; peers compare",
  },
  {
    key: "snapshotBytes",
    flag: "snapshot-bytes",
    kind: "int",
    default: defaultNodeSettings.snapshotBytes,
    min: 64 * 1024,
    max: 16 * 1024 * 1024 * 1024,
    description: "bytes of applied entry data between log compactions (whichever of the two comes first)",
  },
  {
    key: "snapshotLogBytesMax",
    flag: "snapshot-log-bytes-max",
    kind: "int",
    default: defaultNodeSettings.snapshotLogBytesMax,
    min: 64 * 1024,
    max: 16 * 1024 * 1024 * 1024,
    description:
      "a leader keeps the log a follower lacks until the log since the last compaction holds this many bytes of entry data",
  },
  {
    key: "snapshotLogEntriesMax",
    flag: "snapshot-log-entries-max",
    kind: "int",
    default: defaultNodeSettings.snapshotLogEntriesMax,
    min: 100,
    max: 100_000_000,
    description:
      "a leader keeps the log a follower lacks until the log since the last compaction holds this many entries",
  },
  {
    key: "connectionsMax",
    flag: "connections-max",
    kind: "int",
    default: defaultConnectionLimits.connectionsMax,
    min: 1,
    max: 1_000_000,
    description: "connections open at once on each client port (HTTP, Redis, text, gRPC)",
  },
  {
    key: "connectionsPerAddressMax",
    flag: "connections-per-address-max",
    kind: "int",
    default: defaultConnectionLimits.connectionsPerAddressMax,
    min: 1,
    max: 1_000_000,
    description: "connections open at once from one client address on each client port",
  },
  {
    key: "addressRequestsPerSecond",
    flag: "address-requests-per-second",
    kind: "int",
    default: 0,
    min: 0,
    max: 1_000_000,
    description:
      "rate limit of each client address without a token, over every protocol (0: none; docs/security.md)",
  },
  {
    key: "addressBurst",
    flag: "address-burst",
    kind: "int",
    default: 100,
    min: 1,
    max: 10_000_000,
    description: "requests an idle client address may make at once under --address-requests-per-second",
  },
  {
    key: "entryCommandsMax",
    flag: "entry-commands-max",
    kind: "int",
    default: defaultNodeSettings.entryCommandsMax,
    min: 1,
    max: 4096,
    description:
      "client commands one Raft entry carries at most (1: one entry per command, as older releases)",
  },
  {
    key: "entryBytesMax",
    flag: "entry-bytes-max",
    kind: "int",
    default: defaultNodeSettings.entryBytesMax,
    min: 4 * 1024,
    max: 64 * 1024 * 1024,
    description: "bytes of client commands one Raft entry carries at most (a larger command goes alone)",
  },
  {
    key: "auth",
    flag: "auth",
    kind: "choice",
    choices: ["off", "on"],
    default: "off",
    description:
      "on: a new cluster starts with authentication on, its admin token in <data-dir>/admin-token (docs/security.md)",
  },
  {
    key: "peerDialOverrides",
    flag: "peer-dial-override",
    kind: "address-map",
    default: "",
    description:
      "testing only: member=dialed address pairs (host:port=host:port,...): reach a peer through a proxy (docs/faults.md)",
  },
  {
    key: "stopOn",
    flag: "stop-on",
    kind: "choice",
    choices: stopOnChoices,
    default: "signal",
    description:
      "signal (SIGINT or SIGTERM), or stdin-end: also stop when standard input ends (cairn dev sets it, so its nodes die with it)",
  },
  {
    key: "advertiseHttp",
    flag: "advertise-http",
    kind: "url",
    description:
      "URL of the HTTP API as peers and clients reach it (default: from http-listen; required when it binds 0.0.0.0 or ::)",
  },
  {
    key: "advertisePeer",
    flag: "advertise-peer",
    kind: "host-port",
    description:
      "host:port of the Raft transport as peers reach it (default: peer-listen; required when it binds 0.0.0.0 or ::)",
  },
  {
    key: "advertiseRedis",
    flag: "advertise-redis",
    kind: "host-port",
    description: "host:port of the Redis protocol as clients reach it (default: redis-listen)",
  },
  {
    key: "advertiseText",
    flag: "advertise-text",
    kind: "host-port",
    description: "host:port of the text protocol as clients reach it (default: text-listen)",
  },
  {
    key: "advertiseGrpc",
    flag: "advertise-grpc",
    kind: "host-port",
    description: "host:port of the gRPC MessageService as clients reach it (default: grpc-listen)",
  },
  {
    key: "logLevel",
    flag: "log-level",
    kind: "choice",
    choices: logLevels,
    default: "info",
    description: "the least serious log entries written: debug, info, warn, error or fatal",
  },
  {
    key: "logFormat",
    flag: "log-format",
    kind: "choice",
    choices: logFormats,
    default: "auto",
    description: "json (one object per line), pretty (lines for people), or auto: pretty on a terminal",
  },
  {
    key: "diskDelayFile",
    flag: "disk-delay-file",
    kind: "path",
    description:
      "testing only: a file with the milliseconds each log write and sync waits in memory first, re-read when it changes (docs/faults.md)",
  },
];

/** The CAIRN_* environment variable of a flag: `data-dir` -> `CAIRN_DATA_DIR`. */
export function envNameOf(flag: string): string {
  return `CAIRN_${flag.toUpperCase().replace(/-/g, "_")}`;
}

/** Parses `host:port` (IPv6 as `[::1]:port`). */
export function parseHostPort(text: string, setting: string): HostPort {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(text.trim());
  const port = Number(match?.[3]);
  if (match === null || !(port >= 0 && port <= 65_535)) {
    throw new ConfigError(setting, `expected host:port, got ${JSON.stringify(text)}`);
  }
  return { host: match[1] ?? match[2] ?? "", port };
}

function parseValue(setting: Setting, raw: unknown): NodeConfig[keyof NodeConfig] {
  const where = setting.flag;
  if (setting.kind === "int") {
    const n =
      typeof raw === "number"
        ? raw
        : typeof raw === "string" && /^-?\d+$/.test(raw.trim())
          ? Number(raw)
          : Number.NaN;
    if (!Number.isSafeInteger(n))
      throw new ConfigError(where, `expected an integer, got ${JSON.stringify(raw)}`);
    if ((setting.min !== undefined && n < setting.min) || (setting.max !== undefined && n > setting.max)) {
      throw new ConfigError(where, `must be from ${setting.min} to ${setting.max}, got ${n}`);
    }
    return n;
  }
  if (typeof raw !== "string") throw new ConfigError(where, `expected a string, got ${JSON.stringify(raw)}`);
  switch (setting.kind) {
    case "name":
      if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(raw)) {
        throw new ConfigError(
          where,
          `expected lowercase letters, digits and dashes (1-63), got ${JSON.stringify(raw)}`,
        );
      }
      return raw;
    case "path":
      if (raw.trim() === "" || raw.includes("\0"))
        throw new ConfigError(where, "expected a file system path");
      return raw;
    case "host-port":
      return parseHostPort(raw, where);
    case "url": {
      let url: URL;
      try {
        url = new URL(raw);
      } catch {
        throw new ConfigError(where, `expected an http(s) URL, got ${JSON.stringify(raw)}`);
      }
      if (url.protocol !== "http:" && url.protocol !== "https:") {
        throw new ConfigError(where, `expected an http(s) URL, got ${JSON.stringify(raw)}`);
      }
      return raw;
    }
    case "members":
      return parseMembers(raw, where);
    case "address-map":
      return parseAddressMap(raw, where);
    case "origins": {
      const origins = raw
        .split(",")
        .map((o) => o.trim())
        .filter((o) => o !== "");
      for (const origin of origins) {
        if (origin !== "*" && !/^https?:\/\/[A-Za-z0-9.[\]:-]+$/.test(origin)) {
          throw new ConfigError(
            where,
            `expected origins like http://127.0.0.1:8080 or *, got ${JSON.stringify(origin)}`,
          );
        }
      }
      return origins;
    }
    case "choice":
      if (!(setting.choices ?? []).includes(raw)) {
        throw new ConfigError(
          where,
          `expected one of ${(setting.choices ?? []).join(", ")}, got ${JSON.stringify(raw)}`,
        );
      }
      return raw;
  }
}

export function parseMembers(raw: string, where: string): InitialMember[] {
  if (raw.trim() === "") return [];
  const members = raw.split(",").map((part) => {
    const eq = part.indexOf("=");
    const name = part.slice(0, eq).trim();
    if (eq <= 0 || !/^[a-z0-9][a-z0-9-]{0,62}$/.test(name)) {
      throw new ConfigError(where, `expected name=host:port, got ${JSON.stringify(part)}`);
    }
    return { name, peer: parseHostPort(part.slice(eq + 1), where) };
  });
  const names = new Set(members.map((m) => m.name));
  if (names.size !== members.length) throw new ConfigError(where, "a member name appears twice");
  if (members.length > 7) throw new ConfigError(where, "at most 7 members");
  return members;
}

/** Parses `host:port=host:port,...` into a map keyed by the first address as written `host:port`. */
function parseAddressMap(raw: string, where: string): Map<string, HostPort> {
  const out = new Map<string, HostPort>();
  for (const part of raw.split(",")) {
    if (part.trim() === "") continue;
    const eq = part.indexOf("=");
    if (eq <= 0) throw new ConfigError(where, `expected host:port=host:port, got ${JSON.stringify(part)}`);
    const from = parseHostPort(part.slice(0, eq), where);
    const key = `${from.host}:${from.port}`;
    if (out.has(key)) throw new ConfigError(where, `${key} appears twice`);
    out.set(key, parseHostPort(part.slice(eq + 1), where));
  }
  return out;
}

/** Where each raw value came from, lowest precedence first. */
export interface ConfigSources {
  /** The text of a TOML file, with its path for messages. */
  readonly file?: { readonly path: string; readonly text: string };
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Flag values by flag name (as commander gives them, camelCased or not). */
  readonly flags?: Readonly<Record<string, unknown>>;
}

/** Resolves and validates a node's configuration; throws ConfigError naming the first bad setting. */
export function resolveNodeConfig(sources: ConfigSources): NodeConfig {
  let fileValues: Record<string, unknown> = {};
  if (sources.file !== undefined) {
    try {
      fileValues = parseToml(sources.file.text);
    } catch (cause) {
      throw new ConfigError(
        "config",
        `${sources.file.path} is not valid TOML: ${(cause as Error).message.split("\n")[0]}`,
      );
    }
    const known = new Set(nodeSettings.map((s) => s.flag));
    for (const key of Object.keys(fileValues)) {
      if (!known.has(key)) throw new ConfigError(key, `unknown setting in ${sources.file.path}`);
    }
  }
  const out: Partial<Record<keyof NodeConfig, unknown>> = {};
  for (const setting of nodeSettings) {
    const camel = setting.flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    const raw =
      sources.flags?.[camel] ??
      sources.flags?.[setting.flag] ??
      sources.env?.[envNameOf(setting.flag)] ??
      fileValues[setting.flag] ??
      setting.default;
    if (raw === undefined) {
      if (setting.required === true) {
        throw new ConfigError(
          setting.flag,
          `required (--${setting.flag}, ${envNameOf(setting.flag)} or the config file)`,
        );
      }
      out[setting.key] = undefined;
      continue;
    }
    out[setting.key] = parseValue(setting, raw);
  }
  const config = out as NodeConfig;
  const tls = [config.tlsCa, config.tlsCert, config.tlsKey].filter((v) => v !== undefined).length;
  if (tls !== 0 && tls !== 3) throw new ConfigError("tls-ca", "give tls-ca, tls-cert and tls-key together");
  if ((config.clientTlsCert === undefined) !== (config.clientTlsKey === undefined)) {
    throw new ConfigError("client-tls-cert", "give client-tls-cert and client-tls-key together");
  }
  if (config.clientTlsCa !== undefined && config.clientTlsCert === undefined) {
    throw new ConfigError("client-tls-ca", "client certificates need client-tls-cert and client-tls-key");
  }
  if (config.heartbeatTicks >= config.electionTicks) {
    throw new ConfigError("heartbeat-ticks", "must be smaller than election-ticks");
  }
  if (config.initialCluster.length > 0 && !config.initialCluster.some((m) => m.name === config.name)) {
    throw new ConfigError("initial-cluster", `does not name this node (${config.name})`);
  }
  if (config.initialCluster.length > 0 && config.join !== undefined) {
    throw new ConfigError("join", "give either initial-cluster or join, not both");
  }
  advertisedAddresses(config);
  return config;
}

/** Where peers and clients reach a node: what it announces, as opposed to what it binds. */
export interface AdvertisedAddresses {
  readonly httpUrl: string;
  /** `host:port` of the Raft transport. */
  readonly peer: string;
  readonly redis?: string;
  readonly text?: string;
  readonly grpc?: string;
}

/** Whether `host` binds every interface, so it names no address another machine could dial. */
function isWildcard(host: string): boolean {
  return host === "0.0.0.0" || host === "::" || host === "";
}

/** `host:port`, IPv6 in brackets. */
function hostPortText(at: HostPort): string {
  return at.host.includes(":") ? `[${at.host}]:${at.port}` : `${at.host}:${at.port}`;
}

/**
 * The addresses a node announces: each `advertise-*` setting, or else its listen address. A listen
 * address that binds every interface (0.0.0.0, ::) names no address another machine can dial: the
 * HTTP API's then needs advertise-http (ConfigError otherwise), and the other listeners announce
 * advertise-http's host with their own port.
 */
export function advertisedAddresses(config: NodeConfig): AdvertisedAddresses {
  let httpUrl: string;
  if (config.advertiseHttp !== undefined) httpUrl = config.advertiseHttp.replace(/\/+$/, "");
  else if (isWildcard(config.httpListen.host)) {
    throw new ConfigError(
      "advertise-http",
      `http-listen binds every interface (${config.httpListen.host}); give the URL peers and clients reach this node at`,
    );
  } else {
    // With TLS on the client ports, peers and clients reach this node over HTTPS.
    const scheme = config.clientTlsCert !== undefined ? "https" : "http";
    httpUrl = `${scheme}://${hostPortText(config.httpListen)}`;
  }
  const httpHost = new URL(httpUrl).hostname.replace(/^\[(.*)\]$/, "$1");
  const pick = (advertised: HostPort | undefined, listen: HostPort): string =>
    hostPortText(advertised ?? (isWildcard(listen.host) ? { host: httpHost, port: listen.port } : listen));
  return {
    httpUrl,
    peer: pick(config.advertisePeer, config.peerListen),
    ...(config.redisListen && { redis: pick(config.advertiseRedis, config.redisListen) }),
    ...(config.textListen && { text: pick(config.advertiseText, config.textListen) }),
    ...(config.grpcListen && { grpc: pick(config.advertiseGrpc, config.grpcListen) }),
  };
}
