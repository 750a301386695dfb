// The replicated member registry: each member's name and peer address by node id. Raft's
// configuration says who votes; this says where they are, so every node (a joining one included)
// can dial every member. Changed only through the log, like any state. A removed member's record is
// kept as retired rather than deleted: node ids are never reused, because a removed node's
// certificate (named node-<id>) still authenticates that id, and a new member given the same id
// would let the old node pose as it.
import { ByteReader, ByteWriter, DecodeError } from "../../util/index.js";
import type { Refusal } from "../errors.js";
import type { StateReader, StateWriter } from "../state.js";

/** A member as registered. */
export interface MemberRecord {
  readonly id: number;
  readonly name: string;
  /** host:port of its Raft transport. */
  readonly peerAddress: string;
}

/**
 * Registry commands. `unregister` retires the id for good (its record stays, marked retired), so
 * neither a join nor a late `register` can hand it out again.
 */
export type MemberCommand =
  | { readonly type: "register"; readonly member: MemberRecord }
  | { readonly type: "unregister"; readonly id: number };

/** A registry record with whether its id was retired (the member removed). */
export interface RegistryRecord extends MemberRecord {
  readonly retired: boolean;
}

/** The result of a registry command, tagged with its command's kind; a register may be refused. */
export type MemberResult =
  | { readonly kind: "members.register"; readonly ok: true }
  | { readonly kind: "members.unregister"; readonly ok: true }
  | Refusal<"members.register", "ERR_CONFLICT">;

const REGISTER = 1;
const UNREGISTER = 2;

function idKey(id: number): Uint8Array {
  return new ByteWriter(8).u64(id).finish();
}

/** Encodes a registry command. */
export function encodeMemberCommand(command: MemberCommand, writer = new ByteWriter()): ByteWriter {
  if (command.type === "register") {
    return writer
      .u8(REGISTER)
      .varint(command.member.id)
      .string(command.member.name)
      .string(command.member.peerAddress);
  }
  return writer.u8(UNREGISTER).varint(command.id);
}

/** Decodes a registry command. */
export function decodeMemberCommand(reader: ByteReader): MemberCommand {
  const type = reader.u8();
  if (type === REGISTER) {
    return {
      type: "register",
      member: { id: reader.varint(), name: reader.string(64), peerAddress: reader.string(256) },
    };
  }
  if (type === UNREGISTER) return { type: "unregister", id: reader.varint() };
  throw new DecodeError(`unknown member command ${type}`);
}

const RETIRED = 1;

function encodeRecord(name: string, peerAddress: string, retired: boolean): Uint8Array {
  const writer = new ByteWriter().string(name).string(peerAddress);
  // Records written before retirement existed end after the address: active.
  if (retired) writer.u8(RETIRED);
  return writer.finish();
}

/** Every record ever registered, retired ones included, by id. */
export function listRegistry(state: StateReader): RegistryRecord[] {
  const out: RegistryRecord[] = [];
  for (const [key, value] of state.range("members", new Uint8Array(0), undefined, Number.MAX_SAFE_INTEGER)) {
    const r = new ByteReader(value);
    const name = r.string(64);
    const peerAddress = r.string(256);
    const retired = r.remaining > 0 && r.u8() === RETIRED;
    out.push({ id: new ByteReader(key).u64(), name, peerAddress, retired });
  }
  return out;
}

/** Every registered member that was not removed, by id. */
export function listMembers(state: StateReader): MemberRecord[] {
  return listRegistry(state)
    .filter((m) => !m.retired)
    .map(({ id, name, peerAddress }) => ({ id, name, peerAddress }));
}

/**
 * The id for a new member: above every id in the configuration and every id ever registered
 * (retired ones included), so an id is never handed out twice.
 */
export function nextMemberId(state: StateReader, confIds: Iterable<number>): number {
  return Math.max(0, ...confIds, ...listRegistry(state).map((m) => m.id)) + 1;
}

/**
 * The members this node should talk to: registered ones, retired ones still in the configuration
 * (a member being removed must stay reachable until its removal commits, or a leader removing
 * itself could not replicate its own removal), and members known at start that are in the
 * configuration but not registered yet. A retired id outside the configuration is never a peer,
 * so the transport refuses its certificate.
 */
export function reachableMembers(
  state: StateReader,
  inConf: ReadonlySet<number>,
  known: readonly MemberRecord[],
): MemberRecord[] {
  const registry = listRegistry(state);
  const ids = new Set(registry.map((m) => m.id));
  const out: MemberRecord[] = registry
    .filter((m) => !m.retired || inConf.has(m.id))
    .map(({ id, name, peerAddress }) => ({ id, name, peerAddress }));
  for (const m of known) if (!ids.has(m.id) && inConf.has(m.id)) out.push(m);
  return out.sort((a, b) => a.id - b.id);
}

function conflict(message: string): MemberResult {
  return { kind: "members.register", ok: false, code: "ERR_CONFLICT", message, details: {} };
}

/**
 * Applies a registry command. Names are unique among members not removed; an id keeps its name
 * (two joins racing for one id: the second is refused); a retired id is never registered again.
 */
export function applyMemberCommand(state: StateWriter, command: MemberCommand): MemberResult {
  const registry = listRegistry(state);
  if (command.type === "unregister") {
    const record = registry.find((m) => m.id === command.id);
    state.put(
      "members",
      idKey(command.id),
      encodeRecord(record?.name ?? "", record?.peerAddress ?? "", true),
    );
    return { kind: "members.unregister", ok: true };
  }
  const { id, name, peerAddress } = command.member;
  const same = registry.find((m) => m.id === id);
  if (same?.retired === true) return conflict(`member id ${id} was removed; ids are never reused`);
  if (same !== undefined && same.name !== name) return conflict(`member id ${id} belongs to ${same.name}`);
  const clash = registry.find((m) => !m.retired && m.name === name && m.id !== id);
  if (clash !== undefined) return conflict(`name ${name} is taken by member ${clash.id}`);
  state.put("members", idKey(id), encodeRecord(name, peerAddress, false));
  return { kind: "members.register", ok: true };
}
