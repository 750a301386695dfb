import type { PeerCertificate } from "node:tls";
import type { NodeId } from "../raft/index.js";

/**
 * The name a node's certificate must carry (as its subject CN or a DNS subjectAltName) to be
 * accepted as that node: `node-<id>`. The development certificates follow this; production
 * deployments can pass their own mapping through the transport options.
 */
export function defaultNodeIdentity(id: NodeId): string {
  return `node-${id}`;
}

/** Every name a certificate claims: its subject CN(s) and its DNS subjectAltNames. */
export function certificateNames(cert: PeerCertificate): string[] {
  const names: string[] = [];
  // Node types CN as a string, but a certificate with several CNs yields an array at run time.
  const cn: unknown = cert.subject?.CN;
  if (typeof cn === "string") names.push(cn);
  else if (Array.isArray(cn)) for (const c of cn) if (typeof c === "string") names.push(c);
  const san = cert.subjectaltname;
  if (typeof san === "string") {
    for (const entry of san.split(",")) {
      const trimmed = entry.trim();
      if (trimmed.startsWith("DNS:")) names.push(trimmed.slice(4));
    }
  }
  return names;
}
