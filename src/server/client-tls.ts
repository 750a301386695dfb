// TLS on the client ports: the certificate, key and (optional) CA read from files, one secure
// context shared by every port of a node, and a reload that re-reads the files and hands the new
// context to every listener, so a renewed certificate serves new connections without a restart
// (open connections keep the one they started with). With a CA, clients must present a
// certificate it signed (or, `optional`, may): a verified certificate names its holder by its
// subject CN, which authentication maps to a role (docs/security.md).
import { readFileSync } from "node:fs";
import {
  type PeerCertificate,
  type SecureContextOptions,
  TLSSocket,
  type Server as TlsServer,
} from "node:tls";

/** Whether clients must present a certificate the client CA signed, or may. */
export const clientCertModes = ["required", "optional"] as const;
/** One of {@link clientCertModes}. */
export type ClientCertMode = (typeof clientCertModes)[number];

/** Where a node's client TLS files are. */
export interface ClientTlsFiles {
  readonly cert: string;
  readonly key: string;
  /** Clients present certificates signed by this CA; absent: no client certificates. */
  readonly ca?: string;
  /**
   * With `ca`: `required` (the default) refuses a handshake without a signed certificate;
   * `optional` serves clients without one too (they authenticate by token). A certificate that
   * does not verify names no one either way.
   */
  readonly clientCerts?: ClientCertMode;
}

/**
 * The name a client's certificate gives it: the subject CN of a certificate the TLS layer verified
 * against the client CA; undefined without one, or with several CNs (fail closed: no guessing).
 */
export function certificateName(certificate: PeerCertificate | undefined): string | undefined {
  // Node reports no certificate as {}, and several CNs as an array, whatever its types say.
  const subject: unknown = certificate?.subject;
  if (typeof subject !== "object" || subject === null || !("CN" in subject)) return undefined;
  return typeof subject.CN === "string" && subject.CN !== "" ? subject.CN : undefined;
}

/**
 * Each verified connection's certificate name: `getPeerCertificate` builds an object of the whole
 * certificate on every call, and HTTP asks once per request of a keep-alive connection.
 */
const namesBySocket = new WeakMap<TLSSocket, string | null>();

/** The name of the verified client certificate on `socket` (see {@link certificateName}). */
export function peerCertificateName(socket: unknown): string | undefined {
  if (!(socket instanceof TLSSocket) || !socket.authorized) return undefined;
  let name = namesBySocket.get(socket);
  if (name === undefined) {
    name = certificateName(socket.getPeerCertificate()) ?? null;
    namesBySocket.set(socket, name);
  }
  return name ?? undefined;
}

/** One node's client TLS: the files' current context and the listeners that serve it. */
export class ClientTls {
  readonly #files: ClientTlsFiles;
  #context: SecureContextOptions;
  readonly #servers = new Set<TlsServer>();

  /** Reads the files; throws (ENOENT, a bad PEM) when they cannot be read. */
  constructor(files: ClientTlsFiles) {
    this.#files = files;
    this.#context = ClientTls.#read(files);
  }

  static #read(files: ClientTlsFiles): SecureContextOptions {
    return {
      cert: readFileSync(files.cert),
      key: readFileSync(files.key),
      ...(files.ca !== undefined ? { ca: readFileSync(files.ca) } : {}),
    };
  }

  /** Whether clients must present a certificate. */
  get requiresClientCert(): boolean {
    return this.#files.ca !== undefined && this.#files.clientCerts !== "optional";
  }

  /** Options for a TLS server of this node (the context, and client certificates if asked for). */
  serverOptions(): SecureContextOptions & { requestCert: boolean; rejectUnauthorized: boolean } {
    return {
      ...this.#context,
      requestCert: this.#files.ca !== undefined,
      rejectUnauthorized: this.requiresClientCert,
    };
  }

  /** Registers a listener to receive the context of every later reload. */
  serve(server: TlsServer): void {
    this.#servers.add(server);
    server.once("close", () => this.#servers.delete(server));
  }

  /**
   * Re-reads the files and gives every listener the new context. A file that cannot be read or a
   * certificate that does not match its key throws, and the old context stays in force.
   */
  reload(): void {
    const context = ClientTls.#read(this.#files);
    for (const server of this.#servers) server.setSecureContext(context);
    this.#context = context;
  }
}
