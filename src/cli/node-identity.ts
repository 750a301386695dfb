// A node's identity file (node.json in its data directory): cluster id, node id, name and the
// members it started with. Written once, at bootstrap or join, through the file system seam, so
// the simulated disk can check that a power loss right after first boot keeps it.
import { createHash } from "node:crypto";
import type { NodeMembership } from "../node-assembly/index.js";
import {
  errnoOf,
  type FileSystem,
  joinPath,
  makeDirDurable,
  readWhole,
  writeFileAtomic,
} from "../storage/index.js";
import {
  advertisedAddresses,
  ConfigError,
  type InitialMember,
  type NodeConfig,
  parseHostPort,
} from "./node-config.js";

/** The identity file's name inside the data directory. */
export const identityFileName = "node.json";

/** What a node's data directory says about who it is (written once, at bootstrap or join): what the assembly starts a node as. */
export type NodeIdentity = NodeMembership;

/** Checks a node.json file's contents; anything malformed is a ConfigError naming the file. */
export function parseIdentity(text: string, path: string): NodeIdentity {
  const bad = (why: string) => new ConfigError("data-dir", `${path} is not a valid node identity: ${why}`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw bad("not JSON");
  }
  if (typeof parsed !== "object" || parsed === null) throw bad("not an object");
  const o = parsed as Record<string, unknown>;
  const positive = (v: unknown) => typeof v === "number" && Number.isSafeInteger(v) && v >= 1;
  if (typeof o["clusterId"] !== "string" || o["clusterId"] === "") throw bad("clusterId");
  if (!positive(o["id"])) throw bad("id");
  if (typeof o["name"] !== "string") throw bad("name");
  if (typeof o["bootstrapped"] !== "boolean") throw bad("bootstrapped");
  const voters = o["initialVoters"];
  if (!Array.isArray(voters) || !voters.every(positive)) throw bad("initialVoters");
  const members = o["members"];
  if (
    !Array.isArray(members) ||
    !members.every(
      (m: unknown) =>
        typeof m === "object" &&
        m !== null &&
        positive((m as Record<string, unknown>)["id"]) &&
        typeof (m as Record<string, unknown>)["name"] === "string" &&
        typeof (m as Record<string, unknown>)["peerAddress"] === "string",
    )
  ) {
    throw bad("members");
  }
  return parsed as NodeIdentity;
}

/**
 * Reads the node's identity from its data directory, or bootstraps it from --initial-cluster (or
 * `join`s the cluster named by --join). A node with existing data never bootstraps again (its
 * identity file wins over the flags). The data directory and node.json are made durable before
 * this returns: a power loss after first boot must not bring back an empty directory, which would
 * bootstrap or join a second time under a new identity while peers remember the old one.
 */
export async function loadOrBootstrap(
  fs: FileSystem,
  config: NodeConfig,
  join: (config: NodeConfig, url: string) => Promise<NodeIdentity>,
): Promise<NodeIdentity> {
  await makeDirDurable(fs, config.dataDir);
  const path = joinPath(config.dataDir, identityFileName);
  try {
    const identity = parseIdentity(new TextDecoder().decode(await readWhole(fs, path)), path);
    if (identity.name !== config.name) {
      throw new ConfigError(
        "name",
        `the data in ${config.dataDir} belongs to node ${identity.name}, not ${config.name}`,
      );
    }
    return identity;
  } catch (error) {
    if (errnoOf(error) !== "ENOENT") throw error;
  }
  let identity: NodeIdentity;
  if (config.join !== undefined) {
    identity = await join(config, config.join);
  } else {
    const initial =
      config.initialCluster.length > 0
        ? config.initialCluster
        : [{ name: config.name, peer: parseHostPort(advertisedAddresses(config).peer, "advertise-peer") }];
    identity = bootstrapIdentity(config.name, initial);
  }
  await writeIdentity(fs, config.dataDir, identity);
  return identity;
}

/**
 * The identity of member `name` of a cluster bootstrapped with `initial`: ids 1, 2, ... in the
 * list's order, and a cluster id every member derives alike (from `salt` too: a restore's names
 * its backup, so the new cluster's id differs from the old one's). ConfigError when `initial` does not
 * name `name`.
 */
export function bootstrapIdentity(name: string, initial: readonly InitialMember[], salt = ""): NodeIdentity {
  const members = initial.map((m, i) => ({
    id: i + 1,
    name: m.name,
    peerAddress: `${m.peer.host}:${m.peer.port}`,
  }));
  const self = members.find((m) => m.name === name);
  if (self === undefined) throw new ConfigError("initial-cluster", `does not name this node (${name})`);
  // Every member derives the same cluster id from the same initial cluster.
  const clusterId = createHash("sha256")
    .update(JSON.stringify(members) + salt)
    .digest("hex")
    .slice(0, 16);
  return {
    clusterId,
    id: self.id,
    name,
    bootstrapped: true,
    initialVoters: members.map((m) => m.id),
    members,
  };
}

/** Writes `identity` as the identity file of `dataDir`, atomically. */
export async function writeIdentity(fs: FileSystem, dataDir: string, identity: NodeIdentity): Promise<void> {
  const text = new TextEncoder().encode(`${JSON.stringify(identity, null, 2)}\n`);
  await writeFileAtomic(fs, joinPath(dataDir, identityFileName), (handle) => handle.write(text, 0));
}
