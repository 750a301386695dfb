// TLS on the client ports: the certificate, key and (optional) CA read from files, one secure
// context shared by every port of a node, and a reload that re-reads the files and hands the new
// context to every listener, so a renewed certificate serves new connections without a restart
// (open connections keep the one they started with). With a CA, clients must present a
// certificate it signed.
import { readFileSync } from "node:fs";
import type { SecureContextOptions, Server as TlsServer } from "node:tls";

/** Where a node's client TLS files are. */
export interface ClientTlsFiles {
  readonly cert: string;
  readonly key: string;
  /** Clients must present a certificate signed by this CA; absent: no client certificates. */
  readonly ca?: string;
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
    return this.#files.ca !== undefined;
  }

  /** Options for a TLS server of this node (the context, and client certificates if required). */
  serverOptions(): SecureContextOptions & { requestCert: boolean; rejectUnauthorized: boolean } {
    return {
      ...this.#context,
      requestCert: this.requiresClientCert,
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
