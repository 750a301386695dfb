// Auth commands as they travel in Raft entries: roles and tokens change only through the log, like
// every other state. A token's secret never enters the log: the node that creates a token hashes
// the secret (salted scrypt) and proposes the hash; only the caller who asked sees the secret.
import { type ByteReader, ByteWriter, DecodeError } from "../../util/index.js";
import {
  type Grant,
  grantPatternBytesMax,
  grantsPerRoleMax,
  type Permission,
  type ResourceKind,
} from "./permissions.js";

/** A token as proposed: its id, role, salted hash, and lifetime from the entry's leader time. */
export interface TokenInput {
  readonly id: string;
  readonly role: string;
  readonly salt: Uint8Array;
  readonly hash: Uint8Array;
  /** Milliseconds after the entry's leader time the token stops working; 0: never. */
  readonly ttlMs: number;
}

/**
 * A role's rate limit: a token bucket per token that refills `requestsPerSecond` and holds at most
 * `burst` requests. `requestsPerSecond` 0 means no limit.
 */
export interface RateLimit {
  readonly requestsPerSecond: number;
  readonly burst: number;
}

/** The largest rate a role may be given, requests per second, and the largest burst. */
export const requestsPerSecondMax = 1_000_000;
export const burstMax = 10_000_000;

/**
 * Auth commands. `enable` turns authentication on and creates its bootstrap token (role admin) in
 * the same entry, so whoever enables it holds a token that can do everything: no one is locked out.
 */
export type AuthCommand =
  | { readonly type: "role-put"; readonly name: string; readonly grants: readonly Grant[] }
  | { readonly type: "role-delete"; readonly name: string }
  | { readonly type: "token-create"; readonly token: TokenInput }
  | { readonly type: "token-revoke"; readonly id: string }
  | { readonly type: "enable"; readonly token: TokenInput }
  | { readonly type: "disable" }
  | { readonly type: "role-rate"; readonly name: string; readonly rate: RateLimit }
  | { readonly type: "cert-bind"; readonly name: string; readonly role: string }
  | { readonly type: "cert-unbind"; readonly name: string };

/** The longest role name, in bytes. */
export const roleNameBytesMax = 64;
/** The longest certificate name (a subject CN, at most 64 characters in X.509), in bytes. */
export const certNameBytesMax = 64;
/**
 * A certificate name that may be bound to a role: a subject CN of letters, digits and `_ . @ : -`
 * (host names, e-mail-like and service names). A CN outside it can never be bound, so it names no one.
 */
export const certNamePattern = /^[A-Za-z0-9][A-Za-z0-9_.@:-]{0,63}$/;
/** A token id: 16 lower-case hex digits. */
export const tokenIdPattern = /^[0-9a-f]{16}$/;

// Appended only: the index is the type's byte in the log.
const types = [
  "role-put",
  "role-delete",
  "token-create",
  "token-revoke",
  "enable",
  "disable",
  "role-rate",
  "cert-bind",
  "cert-unbind",
] as const;
const permissionCodes: readonly Permission[] = ["read", "write", "admin"];
const resourceCodes: readonly ResourceKind[] = ["key", "stream", "cluster"];

function writeToken(writer: ByteWriter, token: TokenInput): ByteWriter {
  return writer.string(token.id).string(token.role).bytes(token.salt).bytes(token.hash).u64(token.ttlMs);
}

function readToken(reader: ByteReader): TokenInput {
  return {
    id: reader.string(64),
    role: reader.string(roleNameBytesMax),
    salt: reader.bytes(64),
    hash: reader.bytes(128),
    ttlMs: reader.u64(),
  };
}

/** Writes grants (count, then permission, resource and pattern each): in commands and in state alike. */
export function writeGrants(writer: ByteWriter, grants: readonly Grant[]): ByteWriter {
  writer.varint(grants.length);
  for (const g of grants) {
    writer.u8(permissionCodes.indexOf(g.permission)).u8(resourceCodes.indexOf(g.resource)).string(g.pattern);
  }
  return writer;
}

/** Reads what {@link writeGrants} wrote; throws DecodeError on malformed bytes. */
export function readGrants(reader: ByteReader): Grant[] {
  const count = reader.varint();
  if (count > grantsPerRoleMax) throw new DecodeError(`a role with ${count} grants`);
  const grants: Grant[] = [];
  for (let i = 0; i < count; i++) {
    const permission = permissionCodes[reader.u8()];
    const resource = resourceCodes[reader.u8()];
    if (permission === undefined || resource === undefined) throw new DecodeError("unknown grant");
    grants.push({ permission, resource, pattern: reader.string(grantPatternBytesMax) });
  }
  return grants;
}

/** Writes a rate limit: in commands and in state alike. */
export function writeRate(writer: ByteWriter, rate: RateLimit): ByteWriter {
  return writer.varint(rate.requestsPerSecond).varint(rate.burst);
}

/** Reads what {@link writeRate} wrote; throws DecodeError on a rate out of bounds. */
export function readRate(reader: ByteReader): RateLimit {
  const requestsPerSecond = reader.varint();
  const burst = reader.varint();
  if (requestsPerSecond > requestsPerSecondMax || burst > burstMax)
    throw new DecodeError("rate out of bounds");
  return { requestsPerSecond, burst };
}

/** Encodes an auth command. */
export function encodeAuthCommand(command: AuthCommand, writer = new ByteWriter()): ByteWriter {
  writer.u8(types.indexOf(command.type));
  switch (command.type) {
    case "role-put":
      return writeGrants(writer.string(command.name), command.grants);
    case "role-delete":
      return writer.string(command.name);
    case "token-create":
    case "enable":
      return writeToken(writer, command.token);
    case "token-revoke":
      return writer.string(command.id);
    case "disable":
      return writer;
    case "role-rate":
      return writeRate(writer.string(command.name), command.rate);
    case "cert-bind":
      return writer.string(command.name).string(command.role);
    case "cert-unbind":
      return writer.string(command.name);
  }
}

/** Decodes an auth command; throws DecodeError on malformed bytes. */
export function decodeAuthCommand(reader: ByteReader): AuthCommand {
  const type = types[reader.u8()];
  switch (type) {
    case "role-put": {
      const name = reader.string(roleNameBytesMax);
      return { type, name, grants: readGrants(reader) };
    }
    case "role-delete":
      return { type, name: reader.string(roleNameBytesMax) };
    case "token-create":
    case "enable":
      return { type, token: readToken(reader) };
    case "token-revoke":
      return { type, id: reader.string(64) };
    case "disable":
      return { type };
    case "role-rate": {
      const name = reader.string(roleNameBytesMax);
      return { type, name, rate: readRate(reader) };
    }
    case "cert-bind": {
      const name = reader.string(certNameBytesMax);
      return { type, name, role: reader.string(roleNameBytesMax) };
    }
    case "cert-unbind":
      return { type, name: reader.string(certNameBytesMax) };
    default:
      throw new DecodeError("unknown auth command");
  }
}
