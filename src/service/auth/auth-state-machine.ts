// The replicated auth state: whether authentication is on, roles (named lists of grants), tokens
// (id, role, salted hash of the secret, creation and expiry by leader time) and certificate
// bindings (a client certificate's name -> its role). Applied like every other state machine part,
// deterministically from the entry and its leader timestamp.
import { ByteReader, ByteWriter } from "../../util/index.js";
import type { Refusal } from "../errors.js";
import type { StateReader, StateWriter } from "../state.js";
import type { AuthCommand, TokenInput } from "./auth-command.js";
import {
  certNameBytesMax,
  certNamePattern,
  type RateLimit,
  readGrants,
  readRate,
  roleNameBytesMax,
  writeGrants,
  writeRate,
} from "./auth-command.js";
import { adminGrants, adminRoleName, type Grant } from "./permissions.js";

/** A token as stored (without any secret: only its salted hash). */
export interface TokenRecord {
  readonly id: string;
  readonly role: string;
  readonly salt: Uint8Array;
  readonly hash: Uint8Array;
  readonly createdAtMs: number;
  /** Leader time after which the token no longer works; 0: never. */
  readonly expiresAtMs: number;
}

/** A role as stored; `builtIn` for the admin role, which cannot change. */
export interface RoleRecord {
  readonly name: string;
  readonly grants: readonly Grant[];
  readonly builtIn: boolean;
  /** Requests per second a token of this role may make; absent: no limit. */
  readonly rate?: RateLimit;
}

/** The result of an auth command, tagged with its kind. */
export type AuthResult =
  | { readonly kind: "auth.role-put"; readonly ok: true; readonly created: boolean }
  | { readonly kind: "auth.role-delete"; readonly ok: true; readonly deleted: boolean }
  | { readonly kind: "auth.token-create"; readonly ok: true; readonly expiresAtMs: number }
  | { readonly kind: "auth.token-revoke"; readonly ok: true; readonly revoked: boolean }
  | { readonly kind: "auth.enable"; readonly ok: true; readonly expiresAtMs: number }
  | { readonly kind: "auth.disable"; readonly ok: true; readonly disabled: boolean }
  | { readonly kind: "auth.role-rate"; readonly ok: true }
  | { readonly kind: "auth.cert-bind"; readonly ok: true; readonly created: boolean }
  | { readonly kind: "auth.cert-unbind"; readonly ok: true; readonly unbound: boolean }
  | Refusal<"auth.cert-bind", "ERR_BAD_REQUEST">
  | Refusal<"auth.cert-bind", "ERR_NOT_FOUND">
  | Refusal<"auth.role-rate", "ERR_BAD_REQUEST">
  | Refusal<"auth.role-rate", "ERR_NOT_FOUND">
  | Refusal<"auth.role-put", "ERR_BAD_REQUEST">
  | Refusal<"auth.role-delete", "ERR_BAD_REQUEST">
  | Refusal<"auth.role-delete", "ERR_CONFLICT">
  | Refusal<"auth.token-create", "ERR_NOT_FOUND">
  | Refusal<"auth.token-create", "ERR_CONFLICT">
  | Refusal<"auth.enable", "ERR_CONFLICT">;

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const ENABLED_KEY = encoder.encode("enabled");
const ROLE_PREFIX = "role/";
const TOKEN_PREFIX = "token/";
const RATE_PREFIX = "rate/";
const CERT_PREFIX = "cert/";

const roleKey = (name: string) => encoder.encode(ROLE_PREFIX + name);
const tokenKey = (id: string) => encoder.encode(TOKEN_PREFIX + id);
const rateKey = (role: string) => encoder.encode(RATE_PREFIX + role);
const certKey = (name: string) => encoder.encode(CERT_PREFIX + name);

/** A certificate name bound to a role. */
export interface CertBinding {
  readonly name: string;
  readonly role: string;
}

/** The role a client certificate's name is bound to; undefined: unbound (it may do nothing). */
export function getCertBinding(state: StateReader, name: string): CertBinding | undefined {
  const bytes = state.get("auth", certKey(name));
  return bytes === undefined ? undefined : { name, role: decoder.decode(bytes) };
}

/** Every certificate binding, by name. */
export function listCertBindings(state: StateReader): CertBinding[] {
  return [...prefixRange(state, CERT_PREFIX)].map(([key, value]) => ({
    name: decoder.decode(key).slice(CERT_PREFIX.length),
    role: decoder.decode(value),
  }));
}

/** The rate limit of role `name`; undefined: none (the admin role never has one). */
export function getRoleRate(state: StateReader, name: string): RateLimit | undefined {
  const bytes = state.get("auth", rateKey(name));
  // Written by this module from a decoded command: a failure here is corrupt state.
  return bytes === undefined ? undefined : readRate(new ByteReader(bytes));
}

function prefixRange(state: StateReader, prefix: string): Iterable<readonly [Uint8Array, Uint8Array]> {
  // "/" + 1 is "0": the keys starting with the prefix end before the prefix with "0" for its slash.
  const start = encoder.encode(prefix);
  const end = encoder.encode(`${prefix.slice(0, -1)}0`);
  return state.range("auth", start, end, Number.MAX_SAFE_INTEGER);
}

/** Whether authentication is on: then every protocol asks for a token. */
export function authEnabled(state: StateReader): boolean {
  return state.get("auth", ENABLED_KEY)?.[0] === 1;
}

function encodeGrants(grants: readonly Grant[]): Uint8Array {
  return writeGrants(new ByteWriter(), grants).finish();
}

function decodeGrants(bytes: Uint8Array): Grant[] {
  // Written by this module from a decoded command: a failure here is corrupt state.
  return readGrants(new ByteReader(bytes));
}

/** A role by name; the admin role is built in. */
export function getRole(state: StateReader, name: string): RoleRecord | undefined {
  if (name === adminRoleName) return { name, grants: adminGrants, builtIn: true };
  const bytes = state.get("auth", roleKey(name));
  if (bytes === undefined) return undefined;
  const rate = getRoleRate(state, name);
  return { name, grants: decodeGrants(bytes), builtIn: false, ...(rate !== undefined ? { rate } : {}) };
}

/** Every role, the built-in admin role first. */
export function listRoles(state: StateReader): RoleRecord[] {
  const out: RoleRecord[] = [{ name: adminRoleName, grants: adminGrants, builtIn: true }];
  for (const [key, value] of prefixRange(state, ROLE_PREFIX)) {
    const name = decoder.decode(key).slice(ROLE_PREFIX.length);
    const rate = getRoleRate(state, name);
    out.push({ name, grants: decodeGrants(value), builtIn: false, ...(rate !== undefined ? { rate } : {}) });
  }
  return out;
}

function encodeToken(token: TokenRecord): Uint8Array {
  return new ByteWriter(128)
    .string(token.role)
    .bytes(token.salt)
    .bytes(token.hash)
    .u64(token.createdAtMs)
    .u64(token.expiresAtMs)
    .finish();
}

function decodeToken(id: string, bytes: Uint8Array): TokenRecord {
  const r = new ByteReader(bytes);
  return {
    id,
    role: r.string(),
    salt: r.bytes(),
    hash: r.bytes(),
    createdAtMs: r.u64(),
    expiresAtMs: r.u64(),
  };
}

/** A token by id (revoked tokens are gone). */
export function getToken(state: StateReader, id: string): TokenRecord | undefined {
  const bytes = state.get("auth", tokenKey(id));
  return bytes === undefined ? undefined : decodeToken(id, bytes);
}

/** Every token, by id. */
export function listTokens(state: StateReader): TokenRecord[] {
  return [...prefixRange(state, TOKEN_PREFIX)].map(([key, value]) =>
    decodeToken(decoder.decode(key).slice(TOKEN_PREFIX.length), value),
  );
}

function storeToken(state: StateWriter, token: TokenInput, tsMs: number): number {
  const expiresAtMs = token.ttlMs === 0 ? 0 : tsMs + token.ttlMs;
  state.put(
    "auth",
    tokenKey(token.id),
    encodeToken({
      id: token.id,
      role: token.role,
      salt: token.salt,
      hash: token.hash,
      createdAtMs: tsMs,
      expiresAtMs,
    }),
  );
  return expiresAtMs;
}

/** Applies an auth command at leader time `tsMs`. */
export function applyAuth(state: StateWriter, command: AuthCommand, tsMs: number): AuthResult {
  switch (command.type) {
    case "role-put": {
      if (command.name === adminRoleName || Buffer.byteLength(command.name) > roleNameBytesMax) {
        return {
          kind: "auth.role-put",
          ok: false,
          code: "ERR_BAD_REQUEST",
          message: `role ${command.name} cannot be changed`,
          details: {},
        };
      }
      const created = state.get("auth", roleKey(command.name)) === undefined;
      state.put("auth", roleKey(command.name), encodeGrants(command.grants));
      return { kind: "auth.role-put", ok: true, created };
    }
    case "role-delete": {
      if (command.name === adminRoleName) {
        return {
          kind: "auth.role-delete",
          ok: false,
          code: "ERR_BAD_REQUEST",
          message: "the admin role is built in",
          details: {},
        };
      }
      const user = listTokens(state).find((t) => t.role === command.name);
      const bound = listCertBindings(state).find((b) => b.role === command.name);
      if (user !== undefined || bound !== undefined) {
        return {
          kind: "auth.role-delete",
          ok: false,
          code: "ERR_CONFLICT",
          message: `role ${command.name} is held by ${user !== undefined ? `token ${user.id}` : `certificate name ${bound?.name}`}`,
          details: {},
        };
      }
      const deleted = state.get("auth", roleKey(command.name)) !== undefined;
      if (deleted) state.delete("auth", roleKey(command.name));
      state.delete("auth", rateKey(command.name));
      return { kind: "auth.role-delete", ok: true, deleted };
    }
    case "token-create": {
      if (getRole(state, command.token.role) === undefined) {
        return {
          kind: "auth.token-create",
          ok: false,
          code: "ERR_NOT_FOUND",
          message: `role ${command.token.role} does not exist`,
          details: {},
        };
      }
      if (getToken(state, command.token.id) !== undefined) {
        return {
          kind: "auth.token-create",
          ok: false,
          code: "ERR_CONFLICT",
          message: `token ${command.token.id} exists`,
          details: {},
        };
      }
      return { kind: "auth.token-create", ok: true, expiresAtMs: storeToken(state, command.token, tsMs) };
    }
    case "token-revoke": {
      const revoked = getToken(state, command.id) !== undefined;
      if (revoked) state.delete("auth", tokenKey(command.id));
      return { kind: "auth.token-revoke", ok: true, revoked };
    }
    case "enable": {
      if (authEnabled(state))
        return {
          kind: "auth.enable",
          ok: false,
          code: "ERR_CONFLICT",
          message: "authentication is already enabled",
          details: {},
        };
      const expiresAtMs = storeToken(state, { ...command.token, role: adminRoleName }, tsMs);
      state.put("auth", ENABLED_KEY, Uint8Array.of(1));
      return { kind: "auth.enable", ok: true, expiresAtMs };
    }
    case "role-rate": {
      if (command.name === adminRoleName) {
        return {
          kind: "auth.role-rate",
          ok: false,
          code: "ERR_BAD_REQUEST",
          message: "the admin role is built in and has no rate limit",
          details: {},
        };
      }
      if (getRole(state, command.name) === undefined) {
        return {
          kind: "auth.role-rate",
          ok: false,
          code: "ERR_NOT_FOUND",
          message: `role ${command.name} does not exist`,
          details: {},
        };
      }
      if (command.rate.requestsPerSecond === 0) state.delete("auth", rateKey(command.name));
      else state.put("auth", rateKey(command.name), writeRate(new ByteWriter(), command.rate).finish());
      return { kind: "auth.role-rate", ok: true };
    }
    case "cert-bind": {
      // The service checked these; a command decoded from the log is checked again, as role-put is.
      if (!certNamePattern.test(command.name) || Buffer.byteLength(command.name) > certNameBytesMax) {
        return {
          kind: "auth.cert-bind",
          ok: false,
          code: "ERR_BAD_REQUEST",
          message: `certificate name ${command.name} cannot be bound`,
          details: {},
        };
      }
      if (getRole(state, command.role) === undefined) {
        return {
          kind: "auth.cert-bind",
          ok: false,
          code: "ERR_NOT_FOUND",
          message: `role ${command.role} does not exist`,
          details: {},
        };
      }
      const created = state.get("auth", certKey(command.name)) === undefined;
      state.put("auth", certKey(command.name), encoder.encode(command.role));
      return { kind: "auth.cert-bind", ok: true, created };
    }
    case "cert-unbind": {
      const unbound = state.get("auth", certKey(command.name)) !== undefined;
      if (unbound) state.delete("auth", certKey(command.name));
      return { kind: "auth.cert-unbind", ok: true, unbound };
    }
    case "disable": {
      const disabled = authEnabled(state);
      if (disabled) state.put("auth", ENABLED_KEY, Uint8Array.of(0));
      return { kind: "auth.disable", ok: true, disabled };
    }
  }
}
