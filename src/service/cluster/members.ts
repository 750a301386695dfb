// The replicated member registry: each member's name and peer address by node id. Raft's
// configuration says who votes; this says where they are, so every node (a joining one included)
// can dial every member. Changed only through the log, like any state.
import { ByteReader, ByteWriter, DecodeError } from "../../util/bytes.js";
import type { StateReader, StateWriter } from "../state.js";

/** A member as registered. */
export interface MemberRecord {
  readonly id: number;
  readonly name: string;
  /** host:port of its Raft transport. */
  readonly peerAddress: string;
}

/** Registry commands. */
export type MemberCommand =
  | { readonly type: "register"; readonly member: MemberRecord }
  | { readonly type: "unregister"; readonly id: number };

/** The result of a registry command. */
export type MemberResult =
  | { readonly ok: true }
  | {
      readonly ok: false;
      readonly code: "ERR_CONFLICT";
      readonly message: string;
      readonly currentRevision: null;
    };

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

/** Every registered member, by id. */
export function listMembers(state: StateReader): MemberRecord[] {
  const out: MemberRecord[] = [];
  for (const [key, value] of state.range("members", new Uint8Array(0), undefined, 1000)) {
    const r = new ByteReader(value);
    out.push({ id: new ByteReader(key).u64(), name: r.string(64), peerAddress: r.string(256) });
  }
  return out;
}

/** Applies a registry command: names are unique; re-registering an id replaces its record. */
export function applyMemberCommand(state: StateWriter, command: MemberCommand): MemberResult {
  if (command.type === "unregister") {
    state.delete("members", idKey(command.id));
    return { ok: true };
  }
  const clash = listMembers(state).find((m) => m.name === command.member.name && m.id !== command.member.id);
  if (clash !== undefined) {
    return {
      ok: false,
      code: "ERR_CONFLICT",
      message: `name ${command.member.name} is taken by member ${clash.id}`,
      currentRevision: null,
    };
  }
  state.put(
    "members",
    idKey(command.member.id),
    new ByteWriter().string(command.member.name).string(command.member.peerAddress).finish(),
  );
  return { ok: true };
}
